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


"""Cinder's own VMDK driver tests, run against our driver class."""

from unittest import mock

from cinder.tests.unit.volume.drivers.vmware import (
    test_vmware_vmdk as upstream)
from oslo_vmware import exceptions as vexc

from cinder_vmware_cache import cache
from cinder_vmware_cache import driver
from cinder_vmware_cache import exceptions
from cinder_vmware_cache import image_access
from cinder_vmware_cache import policy


def fake_cache():
    return mock.create_autospec(cache.ImageTemplateCache, instance=True)


class CacheDriverTestCase(upstream.VMwareVcVmdkDriverTestCase):
    """Every upstream VMDK driver test on our class, plus our hooks."""

    def setUp(self):
        super().setUp()
        self._driver = driver.VMwareVcVmdkCacheDriver(
            configuration=self._config)

    def test_options_are_listed(self):
        names = [o.name for o in self._driver.get_driver_options()]
        self.assertIn('enable_image_cache', names)
        self.assertIn('vmware_host_ip', names)

    def test_backend_name_falls_back_to_class_name(self):
        self._config.volume_backend_name = None
        self.assertEqual('VMwareVcVmdkCacheDriver', self._driver.backend_name)

    def test_invalid_option_stops_setup_before_vcenter(self):
        # What oslo.config raises when it reads a value out of bounds.
        bad = ValueError('image_cache_age_seconds: should be >= 1')
        read = self._config.safe_get

        def safe_get(name):
            if name == 'image_cache_age_seconds':
                raise bad
            return read(name)

        self._config.safe_get = safe_get
        with mock.patch.object(driver.vmdk.VMwareVcVmdkDriver,
                               'do_setup') as parent_setup:
            error = self.assertRaises(exceptions.InvalidCacheOption,
                                      self._driver.do_setup,
                                      mock.sentinel.ctx)
        parent_setup.assert_not_called()
        self.assertIn('image_cache_age_seconds', str(error))
        self.assertIn('should be >= 1', str(error))

    @mock.patch.object(driver.vmdk.VMwareVcVmdkDriver, 'do_setup')
    def test_setup_wires_glance_and_notifications(self, parent_setup):
        self._driver.do_setup(mock.sentinel.ctx)
        image_cache = self._driver.image_cache
        self.assertIsInstance(image_cache._images, image_access.GlanceImages)
        self.assertEqual(
            (self._driver.backend_name, self._driver.host),
            (image_cache._notifier.backend, image_cache._notifier.host))

    @mock.patch.object(driver.vmdk.VMwareVcVmdkDriver, 'do_setup')
    def test_setup_twice_stops_the_old_loop(self, parent_setup):
        self._driver.do_setup(mock.sentinel.ctx)
        first = self._driver._image_cache = fake_cache()
        self._driver.do_setup(mock.sentinel.ctx)
        first.stop.assert_called_once_with()
        self.assertIsNot(first, self._driver._image_cache)

    def clone_image(self, outcome, volume=None, result_metadata=True):
        self._driver._image_cache = fake_cache()
        self._driver._image_cache.policy = policy.CachePolicy(
            enabled=True, result_metadata=result_metadata)
        self._driver._image_cache.create_volume.return_value = outcome
        return self._driver.clone_image(
            mock.sentinel.ctx, volume or {'metadata': {'k': 'v'}}, None,
            {'id': 'img'}, mock.sentinel.svc)

    @mock.patch.object(driver.vmdk.VMwareVcVmdkDriver, 'copy_image_to_volume')
    def test_clone_image_served_by_cache(self, copy_image):
        self.assertEqual(
            ({'metadata': {'k': 'v', 'image_cache_result': 'hit'}}, True),
            self.clone_image(cache.Outcome(True, 'hit')))
        copy_image.assert_not_called()

    @mock.patch.object(driver.vmdk.VMwareVcVmdkDriver, 'copy_image_to_volume')
    def test_clone_image_falls_back_and_says_why(self, copy_image):
        copy_image.return_value = None
        volume = {'metadata': {}}
        self.assertEqual(
            ({'metadata': {'image_cache_result': 'not used: too large'}},
             True),
            self.clone_image(cache.Outcome(False, 'not used: too large'),
                             volume))
        copy_image.assert_called_once_with(mock.sentinel.ctx, volume,
                                           mock.sentinel.svc, 'img')

    @mock.patch.object(driver.vmdk.VMwareVcVmdkDriver, 'copy_image_to_volume')
    def test_clone_image_not_asked_is_the_stock_result(self, copy_image):
        self.assertEqual((copy_image.return_value, True),
                         self.clone_image(cache.Outcome(False)))
        copy_image.assert_called_once()

    @mock.patch.object(driver.vmdk.VMwareVcVmdkDriver, 'copy_image_to_volume')
    def test_clone_image_result_metadata_off(self, copy_image):
        self.assertEqual((None, True), self.clone_image(
            cache.Outcome(True, 'filled'), result_metadata=False))

    def test_stats_report_cache_size(self):
        self._driver._image_cache = fake_cache()
        self._driver._image_cache.provisioned_gb.return_value = 7
        self._config.vmware_enable_volume_stats = False
        stats = self._driver.get_volume_stats(refresh=True)
        self.assertEqual(7, stats['extra_provisioned_capacity_gb'])
        self.assertEqual('unknown', stats['total_capacity_gb'])

    def test_warns_when_stats_disabled(self):
        self._driver._image_cache = fake_cache()
        self._driver._image_cache.policy = policy.CachePolicy(enabled=True)
        self._config.vmware_enable_volume_stats = False
        with self.assertLogs(driver.LOG.logger, 'WARNING') as logs:
            self._driver.check_for_setup_error()
        self.assertIn('vmware_enable_volume_stats', logs.output[0])
        self._driver._image_cache.start.assert_called_once_with()

    def test_warns_when_the_last_use_field_cannot_be_defined(self):
        self._driver._image_cache = fake_cache()
        self._driver._image_cache.policy = policy.CachePolicy(enabled=True)
        self._config.vmware_enable_volume_stats = True
        inventory = self._driver._image_cache.inventory = mock.Mock()
        inventory.ensure_last_used_field.side_effect = (
            vexc.NoPermissionException('AddCustomFieldDef'))
        with self.assertLogs(driver.LOG.logger, 'WARNING') as logs:
            self._driver.check_for_setup_error()
        self.assertIn('Global.ManageCustomFields', logs.output[0])
        self._driver._image_cache.start.assert_called_once_with()
