# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""A bound on vCenter work that may hang: a fill, a seed, a clone.

oslo.vmware waits for a task, and for an upload's answer, without a time
limit, so a stuck task would hold its request (and, for a fill, every
request waiting for the image) for good. Under cinder's eventlet patching
a greenthread can be interrupted wherever it waits; in cinder's threading
mode it cannot, and the bound is not applied (said once in the log).
"""

import contextlib
import time

import eventlet
from eventlet import patcher
from oslo_log import log as logging

from cinder_vmware_cache import exceptions

LOG = logging.getLogger(__name__)

# How long an abandoned clone is awaited for its cancellation.
ABANDON_WAIT_SECONDS = 60

_said = []


def interruptible():
    """Whether waits in this process can be cut short (eventlet)."""
    return patcher.is_monkey_patched('socket')


@contextlib.contextmanager
def bounded(seconds, what):
    """Raise TaskHung if the block has not ended after ``seconds``.

    :param seconds: the bound; 0 or None for none.
    :param what: what the block does, for the error.
    """
    if not seconds:
        yield
        return
    if not interruptible():
        if not _said:
            _said.append(True)
            LOG.warning("image_cache_task_timeout is not applied: this "
                        "process runs without eventlet, whose waits can be "
                        "cut short.")
        yield
        return
    # Raised where the work waits, as an Exception: cinder's and
    # oslo.vmware's clean-ups on the way out (a temporary VM, a partial
    # disk) run for it, as for any failure; an eventlet.Timeout, a
    # BaseException, would pass them by.
    # They may also wrap it in an error of their own: what leaves the block
    # once the bound has passed is the hang.
    hung = exceptions.TaskHung('%s did not end within %s s '
                               '(image_cache_task_timeout)' % (what, seconds))
    started = time.monotonic()
    timer = eventlet.Timeout(seconds, hung)
    try:
        yield
    except Exception as exc:
        if exc is hung or time.monotonic() - started < seconds:
            raise
        raise hung from exc
    finally:
        timer.cancel()


def wait_for_clone(session, task, timeout, name, delete):
    """The VM a clone task makes, abandoning it after ``timeout``.

    An abandoned clone is cancelled; vCenter cancels a running clone, the
    simulator cannot, so the task is then awaited (bounded) and a VM it
    made is deleted (``delete(vm)``): the normal path then creates the
    volume's own VM under the same name.

    :raises TaskHung: the clone was abandoned.
    """
    try:
        with bounded(timeout, 'the clone %s' % name):
            return session.wait_for_task(task).result
    except exceptions.TaskHung:
        _abandon(session, task, name, delete)
        raise


def _abandon(session, task, name, delete):
    try:
        session.invoke_api(session.vim, 'CancelTask', task)
    except Exception as exc:
        LOG.info("Could not cancel the clone task of %(name)s (%(exc)s); "
                 "waiting for its end.", {'name': name, 'exc': exc})
    try:
        with bounded(ABANDON_WAIT_SECONDS, 'the abandoned clone %s' % name):
            made = session.wait_for_task(task).result
    except Exception as exc:
        LOG.info("The abandoned clone %(name)s made nothing (%(exc)s).",
                 {'name': name, 'exc': exc})
        return
    LOG.warning("Deleting %s, made by a clone abandoned after "
                "image_cache_task_timeout.", name)
    delete(made)
