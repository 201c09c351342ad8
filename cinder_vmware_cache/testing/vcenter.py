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

"""Build a configured driver against the vCenter named by the environment.

The same code drives the local simulator and a real vCenter; the
variables are those of ``endpoint``.
"""

import atexit
import dataclasses
import re
import shutil
import tempfile
import warnings

from cinder import context as cinder_context
from cinder import coordination
from cinder import objects
from cinder.volume import configuration
from cinder.volume import driver as base_driver
from cinder.volume.drivers.vmware import vmdk
from oslo_config import cfg
from oslo_utils import uuidutils
from urllib3 import exceptions as urllib3_exc

from cinder_vmware_cache import driver as cache_driver
from cinder_vmware_cache import opts
from cinder_vmware_cache.testing import endpoint as cvc_endpoint

CONF = cfg.CONF
ENV_HOST = cvc_endpoint.ENV_HOST
# The lock folder start_coordination made (None: none).
_lock_dir = None


def endpoint():
    """The vCenter settings from the environment, or None."""
    settings = cvc_endpoint.from_env()
    if settings and settings['vmware_insecure']:
        trust_insecure_endpoint(settings['vmware_host_ip'])
    return settings


def required_endpoint():
    """The vCenter settings; without them, fail with the cause and the fix.

    A suite that needs a vCenter fails rather than skips, so that a run
    without one cannot pass unnoticed.
    """
    settings = endpoint()
    if settings is None:
        raise RuntimeError(
            'no vCenter: %s is unset; fix: run the tests with tools/test.sh '
            '(it starts the simulator), or set %s and VCENTER_PORT, '
            'VCENTER_USER, VCENTER_PASSWORD' % (ENV_HOST, ENV_HOST))
    return settings


def trust_insecure_endpoint(host):
    """Silence urllib3's warning for this one host, known to be insecure.

    The simulator has a self-signed certificate, and every request to it
    would otherwise print an InsecureRequestWarning; requests to any other
    host keep the warning.
    """
    warnings.filterwarnings(
        'ignore', category=urllib3_exc.InsecureRequestWarning,
        message=r"Unverified HTTPS request is being made to host '%s'" %
        re.escape(host))


def start_coordination():
    """Locks need a started coordinator, as in cinder-volume.

    Unless one is started already, start one on a lock folder of its own.
    """
    global _lock_dir
    if not coordination.COORDINATOR.started:
        _lock_dir = tempfile.mkdtemp(prefix='cvc-locks-')
        atexit.register(stop_coordination)
        CONF.set_override('backend_url', 'file://%s' % _lock_dir,
                          group='coordination')
        coordination.COORDINATOR.start()


def stop_coordination():
    """Stop the coordinator; remove the lock folder start_coordination made.

    A lock folder the configuration named otherwise is never removed.
    """
    global _lock_dir
    if coordination.COORDINATOR.started:
        coordination.COORDINATOR.stop()
    if _lock_dir is not None:
        shutil.rmtree(_lock_dir, ignore_errors=True)
        _lock_dir = None


# The hit/deletion protocol's timings (policy.CachePolicy), shortened with
# their order kept, so that a purge in a suite waits 1 s, not 10 s.
QUICK_PROTOCOL = {'known_copy_seconds': 0.2, 'clone_start_seconds': 0.5,
                  'retire_grace_seconds': 1.0}


def make_driver(backend, driver_class=cache_driver.VMwareVcVmdkCacheDriver,
                setup=True, **overrides):
    """A driver for config group ``backend``, set up against the endpoint."""
    objects.register_all()
    start_coordination()
    conf = configuration.Configuration(vmdk.vmdk_opts, config_group=backend)
    conf.append_config_values(base_driver.volume_opts)
    conf.append_config_values(opts.image_cache_opts)
    values = dict(endpoint() or {}, volume_backend_name=backend,
                  vmware_enable_volume_stats=True, vmware_api_retry_count=2,
                  vmware_task_poll_interval=0.1)
    values.update(overrides)
    for name, value in values.items():
        CONF.set_override(name, value, group=backend)
    drv = driver_class(configuration=conf)
    if setup:
        drv.do_setup(admin_context())
        cache = getattr(drv, 'image_cache', None)
        if cache is not None:
            cache.policy = dataclasses.replace(cache.policy,
                                               **QUICK_PROTOCOL)
        drv.check_for_setup_error()
    return drv


def admin_context():
    return cinder_context.get_admin_context()


def user_context(project_id):
    # is_admin given: no policy file is consulted (there is no cinder.conf).
    return cinder_context.RequestContext(user_id='user-' + project_id,
                                         project_id=project_id,
                                         is_admin=False)


def new_volume(ctx, size_gb, metadata=None, project_id=None):
    """A Volume object as the manager hands it to the driver (no DB)."""
    volume = objects.Volume(
        context=ctx, id=uuidutils.generate_uuid(), size=size_gb,
        project_id=project_id or ctx.project_id or 'demo-project',
        user_id='user', host='localhost@vcsim#vcsim', status='creating',
        volume_type_id=None, display_name='demo', attach_status='detached',
        _name_id=None)
    volume.metadata = dict(metadata or {})
    volume.obj_reset_changes()
    return volume
