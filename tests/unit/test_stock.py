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

"""The seam against the installed cinder's stock driver.

The stock driver is an autospec of the installed cinder's class, so a
private method that a cinder release renames, drops or calls differently
fails here, in the tox env of that release.
"""

import sys
from unittest import mock

from cinder.volume import configuration
from cinder.volume.drivers.vmware import vmdk
from cinder.volume.drivers.vmware import volumeops
import fixtures
from oslo_config import fixture as config_fixture

from cinder_vmware_cache import stock
from tests import common


class StockDriverTestCase(common.TestCase):

    def setUp(self):
        super().setUp()
        self.driver = mock.create_autospec(vmdk.VMwareVcVmdkDriver,
                                           instance=True)
        self.driver.volumeops = mock.create_autospec(
            volumeops.VMwareVolumeOps, instance=True)
        self.stock = stock.StockDriver(self.driver)

    def test_placement(self):
        result = self.stock.placement(mock.sentinel.volume)
        self.driver._select_ds_for_volume.assert_called_once_with(
            mock.sentinel.volume)
        self.assertIs(self.driver._select_ds_for_volume.return_value, result)

    def test_datacenter(self):
        self.assertIs(self.driver._get_dc.return_value,
                      self.stock.datacenter(mock.sentinel.rp))
        self.driver._get_dc.assert_called_once_with(mock.sentinel.rp)

    def test_disk_type_and_extra_config(self):
        self.assertIs(self.driver._get_disk_type.return_value,
                      self.stock.disk_type(mock.sentinel.volume))
        self.assertIs(self.driver._get_extra_config.return_value,
                      self.stock.extra_config(mock.sentinel.volume))
        self.driver._get_disk_type.assert_called_once_with(
            mock.sentinel.volume)
        self.driver._get_extra_config.assert_called_once_with(
            mock.sentinel.volume)

    def test_extend(self):
        self.stock.extend(mock.sentinel.backing, 5, 'thin')
        self.driver._extend_backing.assert_called_once_with(
            mock.sentinel.backing, 5, 'thin')

    def test_import_image(self):
        self.stock.import_image(mock.sentinel.ctx, mock.sentinel.volume,
                                mock.sentinel.images, 'image-1')
        self.driver.copy_image_to_volume.assert_called_once_with(
            mock.sentinel.ctx, mock.sentinel.volume, mock.sentinel.images,
            'image-1')

    def test_volumeops(self):
        self.assertIs(self.driver.volumeops, self.stock.volumeops)


class OpenVolumeopsTestCase(common.TestCase):
    """A session and volumeops as do_setup builds them, and nothing else."""

    def setUp(self):
        super().setUp()
        self.conf = configuration.Configuration(vmdk.vmdk_opts,
                                                config_group='stock-test')
        self.useFixture(config_fixture.Config()).config(
            vmware_max_objects_retrieval=42, group='stock-test')
        self.create_session = self.autospec(
            vmdk.VMwareVcVmdkDriver, '_create_session')
        self.volumeops_class = self.autospec(volumeops, 'VMwareVolumeOps')
        self.do_setup = self.autospec(vmdk.VMwareVcVmdkDriver, 'do_setup')
        self.register = self.autospec(
            vmdk.VMwareVcVmdkDriver, '_register_extension')

    def autospec(self, obj, name):
        return self.useFixture(fixtures.MockPatchObject(
            obj, name, autospec=True)).mock

    def test_session_and_volumeops(self):
        session, vops = stock.open_volumeops(self.conf)
        self.assertIs(self.create_session.return_value, session)
        self.assertIs(self.volumeops_class.return_value, vops)
        # The stock driver's own session, for this configuration.
        [driver] = self.create_session.call_args[0]
        self.assertIsInstance(driver, vmdk.VMwareVcVmdkDriver)
        self.assertIs(self.conf, driver.configuration)
        self.volumeops_class.assert_called_once_with(
            session, 42, vmdk.EXTENSION_KEY, vmdk.EXTENSION_TYPE)

    def test_no_setup_no_extension(self):
        stock.open_volumeops(self.conf)
        self.do_setup.assert_not_called()
        self.register.assert_not_called()
        vops = self.volumeops_class.return_value
        vops.build_backing_ref_cache.assert_not_called()


class MonkeyPatchTestCase(common.TestCase):

    def setUp(self):
        super().setUp()
        self.eventlet_patch = self.useFixture(fixtures.MockPatch(
            'eventlet.monkey_patch')).mock

    def test_cinder_29_patches_through_cinder(self):
        cinder_patch = self.useFixture(fixtures.MockPatch(
            'cinder.monkey_patch', create=True)).mock
        stock.monkey_patch()
        cinder_patch.patch.assert_called_once_with()
        self.eventlet_patch.assert_not_called()

    def test_older_cinder_patches_eventlet(self):
        # cinder 26 to 28 have no cinder.monkey_patch module.
        self.useFixture(fixtures.MonkeyPatch('cinder.monkey_patch',
                                             fixtures.MonkeyPatch.delete))
        modules = mock.patch.dict(sys.modules, {'cinder.monkey_patch': None})
        modules.start()
        self.addCleanup(modules.stop)
        stock.monkey_patch()
        self.eventlet_patch.assert_called_once_with()
