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

"""The backend's vCenter and locks, as the commands use them.

Every login is bounded and its failures become exit codes; the locks are
cinder-volume's, so the commands and requests exclude each other.
"""

import contextlib
import socket

from cinder import context as cinder_context
from cinder import coordination
from cinder import exception as cinder_exception
import eventlet
from oslo_config import cfg
from oslo_log import log as logging
from oslo_vmware import exceptions as vexc

from cinder_vmware_cache import cache
from cinder_vmware_cache.cli import errors
from cinder_vmware_cache import driver as cache_driver
from cinder_vmware_cache import exceptions
from cinder_vmware_cache import inventory
from cinder_vmware_cache import policy
from cinder_vmware_cache import stock

LOG = logging.getLogger(__name__)


class _LoginTimeout(Exception):
    """vCenter did not let us log in in time."""


def _probe(host, port, timeout):
    """Fail fast when nothing listens: the session would retry forever."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise errors.CommandError('vCenter %s:%s is unreachable: %s' %
                                  (host, port, exc), errors.EXIT_VCENTER)
    sock.close()


def _login(backend, conf, timeout, login, *args):
    """Run ``login(*args)``, which logs in to vCenter, within ``timeout``.

    oslo.vmware retries connection faults of a login forever, so the whole
    call is bounded; its errors become exit codes.
    """
    host, port = conf.vmware_host_ip, conf.vmware_host_port
    _probe(host, port, timeout)
    timer = eventlet.Timeout(timeout, _LoginTimeout())
    try:
        return login(*args)
    except _LoginTimeout:
        raise errors.CommandError(
            'vCenter %s:%s did not answer within %d seconds '
            '(--vcenter-timeout)' % (host, port, timeout),
            errors.EXIT_VCENTER)
    except (exceptions.InvalidCacheOption, cinder_exception.InvalidInput,
            cfg.Error) as exc:
        raise errors.CommandError('backend %s: %s' % (backend, exc),
                                  errors.EXIT_USAGE)
    except (vexc.VMwareDriverException, OSError) as exc:
        raise errors.CommandError('cannot log in to vCenter %s:%s: %s' %
                                  (host, port, exc), errors.EXIT_VCENTER)
    finally:
        timer.cancel()


def _logout(session):
    if session is None:
        return
    try:
        session.logout()
    except Exception:
        LOG.debug('Logout from vCenter failed.', exc_info=True)


@contextlib.contextmanager
def cache_session(backend, conf, timeout, **cache_args):
    """(cache, session): the backend's cache over a bare vCenter session.

    Listing and deleting need only the cache folder, so this skips what
    the driver's do_setup does besides logging in (the vCenter extension
    registration, the scan of every VM); the cache has no stock driver.
    """
    # As VMwareVcVmdkCacheDriver.backend_name: it names the cache folder.
    name = (conf.safe_get('volume_backend_name') or
            cache_driver.VMwareVcVmdkCacheDriver.__name__)
    cache_policy = policy.CachePolicy.from_configuration(conf, backend)
    session, volumeops = _login(backend, conf, timeout,
                                stock.open_volumeops, conf)
    try:
        templates = inventory.TemplateInventory(
            session, volumeops, name, conf.vmware_volume_folder,
            conf.vmware_max_objects_retrieval)
        yield cache.ImageTemplateCache(None, cache_policy, templates,
                                       **cache_args), session
    finally:
        _logout(session)


@contextlib.contextmanager
def set_up_driver(backend, conf, timeout):
    """The backend's driver, set up as cinder-volume sets it up.

    Without check_for_setup_error: it would start the periodic purge.
    """
    drv = cache_driver.VMwareVcVmdkCacheDriver(configuration=conf)
    _login(backend, conf, timeout, drv.do_setup,
           cinder_context.get_admin_context())
    try:
        yield drv
    finally:
        _logout(drv.session)


@contextlib.contextmanager
def lock_coordinator():
    """The lock backend cinder-volume uses, so we and requests agree.

    Started (from [coordination] backend_url) unless already running, and
    then stopped again.
    """
    coordinator = coordination.COORDINATOR
    started = coordinator.started
    if not started:
        try:
            coordinator.start()
        except Exception as exc:
            raise errors.CommandError(
                'cannot start the lock coordinator of [coordination] '
                'backend_url: %s' % exc, errors.EXIT_USAGE)
    try:
        yield coordinator
    finally:
        if not started:
            try:
                coordinator.stop()
            except Exception:
                LOG.debug('Stopping the lock coordinator failed.',
                          exc_info=True)
