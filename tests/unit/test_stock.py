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

from cinder.volume.drivers.vmware import vmdk
from cinder.volume.drivers.vmware import volumeops
import fixtures

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
