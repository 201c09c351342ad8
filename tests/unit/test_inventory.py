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


from unittest import mock

import ddt
from oslo_utils import units

from cinder_vmware_cache import inventory
from tests import common

IMAGE = '0b4f6a7e-5c3d-4e2f-9a1b-8c7d6e5f4a3b'


def prop(name, val):
    result = mock.Mock(val=val)
    result.name = name  # Mock(name=...) would name the mock instead
    return result


def option(value):
    return mock.Mock(value=value)


def vm_content(name, template=True, **markers):
    values = {inventory.MARKER_BACKEND: 'vmw',
              inventory.MARKER_IMAGE: IMAGE,
              inventory.MARKER_STATE: inventory.STATE_READY,
              inventory.MARKER_SIZE: str(2 * units.Gi)}
    values.update(markers)
    props = [prop('name', name), prop('config.template', template)]
    props += [prop('config.extraConfig["%s"]' % k, option(v))
              for k, v in values.items() if v is not None]
    return mock.Mock(obj=mock.Mock(value='vm-7'), propSet=props)


@ddt.ddt
class InventoryTestCase(common.TestCase):

    def setUp(self):
        super().setUp()
        self.inv = inventory.TemplateInventory(mock.Mock(), mock.Mock(),
                                               'vmw', 'Volumes')

    def test_names(self):
        self.assertEqual(IMAGE, inventory.parse_name(
            inventory.template_name(IMAGE)))
        self.assertEqual(IMAGE, inventory.parse_name(
            inventory.partial_name(IMAGE, 'deadbeef')))
        self.assertIsNone(inventory.parse_name('volume-%s' % IMAGE))
        self.assertIsNone(inventory.parse_name(None))
        self.assertEqual('OpenStack/Project (vmw_image_cache)/Volumes',
                         self.inv.folder_path)

    def test_ready_entry(self):
        entry = self.inv._to_entry(vm_content(inventory.template_name(IMAGE)))
        self.assertTrue(entry.ready)
        self.assertEqual(2 * units.Gi, entry.size_bytes)
        self.assertEqual(IMAGE, entry.image_id)

    @ddt.data({'template': False},
              {inventory.MARKER_BACKEND: 'other-backend'},
              {inventory.MARKER_IMAGE: 'another-image'},
              {inventory.MARKER_STATE: None},
              {inventory.MARKER_STATE: 'filling'})
    def test_not_ready(self, change):
        template = change.pop('template', True)
        entry = self.inv._to_entry(vm_content(
            inventory.template_name(IMAGE), template, **change))
        self.assertFalse(entry.ready)

    def test_partial_name_is_never_ready(self):
        entry = self.inv._to_entry(vm_content(
            inventory.partial_name(IMAGE, 'abcdef01')))
        self.assertFalse(entry.ready)

    def test_foreign_vm_is_ignored(self):
        self.assertIsNone(self.inv._to_entry(vm_content('my-own-vm')))

    def test_bad_size_marker_counts_zero(self):
        entry = self.inv._to_entry(vm_content(
            inventory.template_name(IMAGE),
            **{inventory.MARKER_SIZE: 'lots'}))
        self.assertEqual(0, entry.size_bytes)

    def test_publish_order(self):
        calls = mock.Mock()
        self.inv._vops = calls
        self.inv._field_key = 5
        self.inv._session = mock.Mock()
        self.inv.publish('vm-1', IMAGE, 42)
        self.assertEqual(['update_backing_extra_config', 'rename_backing',
                          'mark_backing_as_template'],
                         [c[0] for c in calls.method_calls])
        markers = calls.update_backing_extra_config.call_args[0][1]
        self.assertEqual('', markers[inventory.VOLUME_ID_KEY])
        self.assertEqual('42', markers[inventory.MARKER_SIZE])
        self.inv._session.invoke_api.assert_called_once()
        self.assertEqual('SetField',
                         self.inv._session.invoke_api.call_args[0][1])
