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

"""What the tests of the operator command share.

Most of them run main() in this process with vCenter, the cache and the
driver mocked (autospec): MainTestBase.
"""

import datetime
import io
import json
from unittest import mock

from cinder import coordination
import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture
from oslo_utils import units
from oslo_vmware import api

from cinder_vmware_cache import cache
from cinder_vmware_cache.cli import config
from cinder_vmware_cache.cli import vcenter
from cinder_vmware_cache.cmd import image_cache
from cinder_vmware_cache import driver
from cinder_vmware_cache import image_access
from cinder_vmware_cache import inventory
from cinder_vmware_cache import notify
from cinder_vmware_cache import policy
from cinder_vmware_cache import stock
from tests import common

CONF = cfg.CONF
SECRET = 'Sup3r-S3cret-Passw0rd'
URL_SECRET = 'R3dis-S3cret'
IMAGE_A = '11111111-2222-3333-4444-555555555555'
IMAGE_B = '66666666-7777-8888-9999-000000000000'
CREATED = datetime.datetime(2024, 5, 1, 10, 0, 0, 123456)
USED = datetime.datetime(2024, 5, 2, 11, 30, 0)

READY = policy.CacheEntry(
    image_id=IMAGE_A, name='image-%s' % IMAGE_A, ref='vm-101', ready=True,
    size_bytes=2 * units.Gi + 1, datastore='datastore-11',
    created_at=CREATED, last_used=USED, folder='group-1')
PARTIAL = policy.CacheEntry(
    image_id=IMAGE_B, name='image-%s.partial-0a1b2c3d' % IMAGE_B,
    ref='vm-102', ready=False, size_bytes=0, datastore='datastore-11',
    created_at=CREATED, last_used=None, folder='group-1')
OTHER_READY = policy.CacheEntry(
    image_id=IMAGE_B, name='image-%s' % IMAGE_B, ref='vm-103', ready=True,
    size_bytes=units.Gi, datastore='datastore-12', created_at=CREATED,
    last_used=USED, folder='group-2')
DATACENTERS = {'group-1': 'DC0', 'group-2': 'DC1'}
CACHE_POLICY = policy.CachePolicy(enabled=True, age_seconds=3600,
                                  leftover_grace_seconds=600)

READY_RECORD = {
    'image_id': IMAGE_A,
    'template': 'image-%s' % IMAGE_A,
    'state': 'ready',
    'datastore': 'ds-gold',
    'datastore_ref': 'datastore-11',
    'datacenter': 'DC0',
    'size_gb': 3,
    'size_bytes': 2 * units.Gi + 1,
    'created_at': '2024-05-01T10:00:00Z',
    'last_used': '2024-05-02T11:30:00Z',
    'purge_after': '2024-05-02T12:30:00Z',
    'ref': 'vm-101',
}
PARTIAL_RECORD = {
    'image_id': IMAGE_B,
    'template': PARTIAL.name,
    'state': 'partial',
    'datastore': 'ds-gold',
    'datastore_ref': 'datastore-11',
    'datacenter': 'DC0',
    'size_gb': None,
    'size_bytes': 0,
    'created_at': '2024-05-01T10:00:00Z',
    'last_used': None,
    'purge_after': '2024-05-01T10:10:00Z',
    'ref': 'vm-102',
}


def credentials(**overrides):
    values = {'volume_driver': config.DRIVER_PATH,
              'volume_backend_name': 'cache-be1',
              'vmware_host_ip': '192.0.2.10',
              'vmware_host_username': 'administrator@vsphere.local',
              'vmware_host_password': SECRET,
              'image_cache_age_seconds': 4321}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def table(text):
    """The rows of cliff's table output (header first), as lists of cells."""
    return [[cell.strip() for cell in line.strip().strip('|').split('|')]
            for line in text.splitlines() if line.startswith('|')]


def fake_session():
    session = mock.create_autospec(api.VMwareAPISession, instance=True)
    session.invoke_api.side_effect = (
        lambda module, func, vim, ref, prop: {
            'datastore-11': 'ds-gold', 'datastore-12': 'ds-silver'}[
                ref.value])
    return session


class GlobalConf(fixtures.Fixture):
    """Lets main() parse the process-wide CONF, and forgets it afterwards."""

    def _setUp(self):
        CONF.clear()
        self.addCleanup(CONF.clear)
        # cinder's own test base, run by other tests of this process,
        # registers keystoneauth's required [keystone_authtoken] auth_url
        # and gives it a default in its fixture; so does this one.
        defaults = self.useFixture(config_fixture.Config(CONF))
        try:
            defaults.set_default('auth_url', 'fake',
                                 group='keystone_authtoken')
        except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
            pass


class MainTestBase(common.TestCase):
    """main() in this process: vCenter, cache, locks and logging mocked."""

    def setUp(self):
        super().setUp()
        self.useFixture(GlobalConf())
        self.confdir = self.useFixture(common.ConfigDir())
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', self.stdout))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', self.stderr))
        self.setup_logging = self.autospec(config, 'setup_logging')
        self.coordinator = mock.create_autospec(coordination.Coordinator,
                                                instance=True)
        self.coordinator.started = False
        self.useFixture(fixtures.MockPatchObject(
            coordination, 'COORDINATOR', self.coordinator))
        self.probe = self.autospec(vcenter, '_probe')
        self.session = fake_session()
        self.vops = mock.sentinel.volumeops
        self.open_volumeops = self.autospec(stock, 'open_volumeops')
        self.open_volumeops.return_value = (self.session, self.vops)
        self.inventory_class = self.autospec(inventory, 'TemplateInventory')
        self.cache_class = self.autospec(cache, 'ImageTemplateCache')
        self.cache = self.cache_class.return_value
        self.cache.policy = CACHE_POLICY
        # Set in the constructor, so not in the autospec.
        self.cache.inventory = self.inventory_class.return_value
        self.cache.inventory.datacenter_names = DATACENTERS
        self.cache.list_all.return_value = [READY, PARTIAL]
        self.cache.purge.return_value = []
        self.cache.entries.return_value = []
        self.notify_setup = self.autospec(notify, 'setup')
        self.glance_images = self.autospec(image_access, 'GlanceImages')
        self.do_setup = self.autospec(
            driver.VMwareVcVmdkCacheDriver, 'do_setup')

    def autospec(self, obj, name):
        return self.useFixture(fixtures.MockPatchObject(
            obj, name, autospec=True)).mock

    def conf(self, **overrides):
        return self.confdir.cinder_conf(
            sections={'be1': credentials(**overrides)})

    def main(self, *args, conf=None):
        argv = ['--config-file', conf or self.conf()] + list(args)
        return image_cache.main(argv)

    def output(self):
        return self.stdout.getvalue() + self.stderr.getvalue()

    def json_out(self):
        return json.loads(self.stdout.getvalue())
