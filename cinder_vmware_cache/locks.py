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

"""Per-(backend, image) locks that hold across cinder-volume hosts.

They go through cinder's tooz coordinator, so ``[coordination] backend_url``
decides their reach: the default file backend serialises one host, a
redis/etcd backend the whole cluster. Fills and deletions take the lock
exclusively; clones take it shared where the backend supports shared locks,
exclusively otherwise. tooz's file driver shares a lock between the threads
of one process (the clones of one cinder-volume) only: between processes
it is exclusive; the redis and etcd drivers have no shared locks.

With the file backend each image leaves one small lock file. They are not
removed: a process waiting for a lock holds its file open, and removing the
file then lets the next process lock a new file of the same name, so two
processes would both hold the "exclusive" lock. The files are empty and
one per image ever cached.
"""

import contextlib
import time

from cinder import coordination
from oslo_log import log as logging
import tenacity
import tooz

from cinder_vmware_cache import exceptions

LOG = logging.getLogger(__name__)


class Deadline(object):
    """A request's total wait, shared by every lock it takes in turn.

    Without it each lock would wait up to image_cache_wait_timeout on its
    own, and a request behind several would wait a multiple of it.
    """

    def __init__(self, seconds):
        self._end = time.monotonic() + seconds

    def left(self):
        """Seconds still to wait (0: try once)."""
        return max(0.0, self._end - time.monotonic())


def lock_name(backend, image_id, ds_key=None):
    """The lock of an image, or of its copy on one datastore (seeds).

    The image's name is the previous release's, so hosts of both releases
    exclude each other during a rolling upgrade.
    """
    name = 'image-cache-%s-%s' % (backend, image_id)
    return '%s-ds-%s' % (name, ds_key) if ds_key else name


@contextlib.contextmanager
def held(name, blocking=True, shared=False, coordinator=None):
    """Hold lock ``name`` for the duration of the block.

    :param blocking: as for tooz and ``cinder.coordination.synchronized``:
        True waits until the lock is free, False does not wait, a number
        waits at most that many seconds.
    :param shared: take the lock shared where the tooz backend supports
        shared locks, exclusively where it does not.
    :param coordinator: default: cinder's started coordinator.
    :raises CacheWaitTimeout: the lock could not be had in time.

    A number is passed as ``blocking``, never as ``timeout``: tooz's etcd3gw
    driver reads ``timeout`` as the lease lifetime and its kubernetes driver
    rejects it. A wait that runs out returns False on the file, redis and
    zookeeper drivers and raises ``tenacity.RetryError`` on etcd3gw (and
    memcached, mysql, pgsql): both are a timeout here. A release that fails
    is logged, never raised into the request: the lock's session or lease
    frees it.
    """
    lock = (coordinator or coordination.COORDINATOR).get_lock(name)
    try:
        try:
            acquired = lock.acquire(blocking=blocking, shared=shared)
        except tooz.NotImplemented:
            acquired = lock.acquire(blocking=blocking)
    except tenacity.RetryError:
        acquired = False
    if not acquired:
        raise exceptions.CacheWaitTimeout(
            'lock %s is held by another request' % name)
    try:
        yield
    finally:
        try:
            lock.release()
        except Exception as exc:
            LOG.warning("Could not release lock %(name)s (%(exc)s); the "
                        "coordination backend frees it when the lock's "
                        "session ends.", {'name': name, 'exc': exc})
