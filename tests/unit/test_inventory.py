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


import datetime
from unittest import mock

from cinder.volume.drivers.vmware import volumeops
import ddt
from oslo_utils import units
from oslo_vmware import api
from oslo_vmware import exceptions as vexc
from oslo_vmware import vim_util

from cinder_vmware_cache import inventory
from cinder_vmware_cache import placement
from cinder_vmware_cache import policy
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
        self.session = mock.create_autospec(api.VMwareAPISession,
                                            instance=True)
        self.vops = mock.create_autospec(volumeops.VMwareVolumeOps,
                                         instance=True)
        self.inv = inventory.TemplateInventory(self.session, self.vops,
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

    def markers(self, size='42', datastore='ds-1', adapter='lsiLogic'):
        return {inventory.MARKER_BACKEND: 'vmw',
                inventory.MARKER_IMAGE: IMAGE,
                inventory.MARKER_STATE: inventory.STATE_READY,
                inventory.MARKER_SIZE: size,
                inventory.MARKER_DATASTORE: datastore,
                inventory.MARKER_ADAPTER: adapter,
                inventory.VOLUME_ID_KEY: ''}

    def calls_in_order(self):
        order = mock.Mock()
        order.attach_mock(self.vops.update_backing_extra_config, 'markers')
        order.attach_mock(self.vops.clone_backing, 'clone')
        order.attach_mock(self.vops.rename_backing, 'rename')
        order.attach_mock(self.vops.mark_backing_as_template, 'template')
        order.attach_mock(self.vops.delete_backing, 'delete')
        order.attach_mock(self.session.invoke_api, 'invoke_api')
        self.inv._field_key = 5
        return order

    def set_field(self, vm):
        vim = self.session.vim
        return mock.call.invoke_api(
            vim, 'SetField', vim.service_content.customFieldsManager,
            entity=vm, key=5, value=mock.ANY)

    def test_publish_order_and_arguments(self):
        # Markers while still a VM (templates refuse ReconfigVM), then the
        # template flag, then the name that makes it findable, last use.
        order = self.calls_in_order()
        self.inv.publish('vm-1', IMAGE, 42, 'ds-1', 'image-x', 'lsiLogic')
        self.assertEqual([
            mock.call.markers('vm-1', self.markers()),
            mock.call.template('vm-1'),
            mock.call.rename('vm-1', 'image-x'),
            self.set_field('vm-1'),
        ], order.mock_calls)
        stamp = order.mock_calls[3].kwargs['value']
        self.assertRegex(stamp, r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')

    def target(self):
        summary = mock.Mock(datastore=vim_util.get_moref('ds-2',
                                                         'Datastore'))
        return placement.Placement('host', 'rp', 'cache-folder', summary,
                                   'dc')

    def test_seed_clones_under_a_partial_name_then_publishes(self):
        order = self.calls_in_order()
        source = policy.CacheEntry(IMAGE, inventory.template_name(IMAGE),
                                   'vm-src', True, size_bytes=7,
                                   adapter_type='paraVirtual')
        target = self.target()
        name = inventory.template_name(IMAGE, 'abcdef12')
        vm = self.inv.seed(source, name, target)
        clone = self.vops.clone_backing.return_value
        self.assertIs(clone, vm)
        partial = order.mock_calls[0][1][0]
        self.assertRegex(partial, r'^%s\.partial-[0-9a-f]{8}$' % name)
        self.assertEqual(IMAGE, inventory.parse_name(partial))
        self.assertEqual([
            mock.call.clone(partial, 'vm-src', None, volumeops.FULL_CLONE_TYPE,
                            target.summary.datastore, host='host',
                            resource_pool='rp',
                            extra_config=self.markers('7', 'ds-2',
                                                      'paraVirtual'),
                            folder='cache-folder'),
            mock.call.template(clone),
            mock.call.rename(clone, name),
            self.set_field(clone),
        ], order.mock_calls)

    def test_failed_publish_of_a_seed_deletes_it(self):
        self.vops.rename_backing.side_effect = RuntimeError('DuplicateName')
        source = policy.CacheEntry(IMAGE, inventory.template_name(IMAGE),
                                   'vm-src', True)
        with mock.patch.object(self.inv, 'reread', autospec=True) as reread:
            # Still under its partial name: not published.
            reread.return_value = policy.CacheEntry(
                IMAGE, 'image-x.partial-01234567', 'vm-new', False)
            self.assertRaises(RuntimeError, self.inv.seed, source,
                              'image-x', self.target())
        self.vops.delete_backing.assert_called_once_with(
            self.vops.clone_backing.return_value)

    def test_seed_published_when_the_answer_was_lost(self):
        self.vops.rename_backing.side_effect = vexc.VimConnectionException(
            'connection reset')
        source = policy.CacheEntry(IMAGE, inventory.template_name(IMAGE),
                                   'vm-src', True)
        with mock.patch.object(self.inv, 'reread', autospec=True) as reread:
            reread.return_value = policy.CacheEntry(IMAGE, 'image-x',
                                                    'vm-new', True)
            vm = self.inv.seed(source, 'image-x', self.target())
            self.assertIs(self.vops.clone_backing.return_value, vm)
            # vCenter cannot say: the VM is kept for the purge.
            reread.side_effect = vexc.VimConnectionException('down')
            self.assertRaises(vexc.VimConnectionException, self.inv.seed,
                              source, 'image-x', self.target())
        self.vops.delete_backing.assert_not_called()

    def test_failed_first_use_record_keeps_a_published_copy(self):
        self.session.invoke_api.side_effect = vexc.VimFaultException(
            ['InvalidArgument'], 'SetField refused')
        self.inv._field_key = 5
        with self.assertLogs(inventory.LOG.logger, 'WARNING'):
            self.inv.publish('vm-1', IMAGE, 42, 'ds-1', 'image-x', None)
        self.vops.rename_backing.assert_called_once_with('vm-1', 'image-x')
        self.vops.delete_backing.assert_not_called()

    @ddt.data(vexc.NoPermissionException('SetField'),
              vexc.VimConnectionException('connection lost'))
    def test_record_use_failure_is_logged_once_per_kind(self, exc):
        self.session.invoke_api.side_effect = exc
        self.inv._field_key = 5
        with self.assertLogs(inventory.LOG.logger, 'DEBUG') as logs:
            self.assertFalse(self.inv.record_use('vm-1', 'image-x'))
            self.assertFalse(self.inv.record_use('vm-2', 'image-y'))
        levels = [line.split(':')[0] for line in logs.output]
        self.assertEqual(['WARNING', 'DEBUG'], levels)
        self.assertIn('Global.SetCustomField', logs.output[0])

    def test_record_use_when_it_works(self):
        self.inv._field_key = 5
        self.assertTrue(self.inv.record_use('vm-1', 'image-x'))
        self.assertEqual('SetField', self.session.invoke_api.call_args[0][1])

    def test_copy_names(self):
        key = inventory.copy_key('datastore-1234')
        self.assertRegex(key, '^[0-9a-f]{8}$')
        self.assertNotEqual(key, inventory.copy_key('datastore-1235'))
        self.assertNotEqual(key, inventory.copy_key('datastore-1234',
                                                    'paraVirtual'))
        # A moref may hold characters a name should not: only the key shows.
        self.assertEqual(key, inventory.copy_key('datastore-1234'))
        name = inventory.template_name(IMAGE, key)
        self.assertEqual('image-%s.ds-%s' % (IMAGE, key), name)
        self.assertLessEqual(
            len(inventory.partial_name(IMAGE, 'abcdef01', key)), 80)
        self.assertEqual(IMAGE, inventory.parse_name(name))
        entry = self.inv._to_entry(vm_content(name))
        self.assertTrue(entry.ready)
        self.assertFalse(self.inv._to_entry(vm_content(
            inventory.partial_name(IMAGE, 'abcdef01', key))).ready)

    def test_entry_knows_its_folder_and_datastore(self):
        content = vm_content(inventory.template_name(IMAGE))
        content.propSet += [
            prop('parent', vim_util.get_moref('group-9', 'Folder')),
            prop('datastore', mock.Mock(ManagedObjectReference=[
                vim_util.get_moref('ds-3', 'Datastore')]))]
        entry = self.inv._to_entry(content)
        self.assertEqual(('group-9', 'ds-3'), (entry.folder, entry.datastore))
        self.assertIsNone(entry.adapter_type)
        self.assertEqual('paraVirtual', self.inv._to_entry(vm_content(
            inventory.template_name(IMAGE),
            **{inventory.MARKER_ADAPTER: 'paraVirtual'})).adapter_type)

    def test_promote_renames_another_ready_copy(self):
        keyed = inventory.template_name(IMAGE, 'abcdef12')
        gone = policy.CacheEntry(IMAGE, inventory.template_name(IMAGE),
                                 'vm-1', True, folder='group-9')
        with mock.patch.object(self.inv, 'copies', autospec=True) as copies:
            copies.return_value = [
                policy.CacheEntry(IMAGE, keyed + '.partial-00000000',
                                  'vm-2', False),
                policy.CacheEntry(IMAGE, keyed, 'vm-3', True)]
            promoted = self.inv.promote(gone)
        self.assertEqual(('vm-3', inventory.template_name(IMAGE)),
                         (promoted.ref, promoted.name))
        self.vops.rename_backing.assert_called_once_with(
            'vm-3', inventory.template_name(IMAGE))
        self.assertEqual('group-9', copies.call_args[0][0].value)

    def search_result(self, *files):
        """Make SearchDatastore_Task find ``files`` (name, size)."""
        self.vops.get_vmdk_path.return_value = '[ds1] vol-1/vol-1.vmdk'
        found = []
        for name, size in files:
            item = mock.Mock(fileSize=size)
            item.path = name
            found.append(item)
        self.session.wait_for_task.return_value.result = mock.Mock(
            file=found)

    @ddt.data(([('vol-1.vmdk', 600), ('vol-1-flat.vmdk', 0)], 0),
              ([('vol-1.vmdk', 600)], 0),
              ([], 0),
              ([('vol-1.vmdk', 600), ('vol-1-flat.vmdk', units.Mi)],
               units.Mi),
              ([('vol-1.vmdk', 2 * units.Mi)],
               2 * units.Mi - inventory.DESCRIPTOR_TEXT_MAX))
    @ddt.unpack
    def test_disk_bytes_counts_data_not_the_descriptor(self, files,
                                                       expected):
        self.search_result(*files)
        self.assertEqual(expected, self.inv.disk_bytes('vm-1'))
        search = self.session.invoke_api.call_args
        self.assertEqual('SearchDatastore_Task', search.args[1])
        self.assertEqual('[ds1] vol-1', search.kwargs['datastorePath'])
        self.assertEqual(['vol-1*'],
                         search.kwargs['searchSpec'].matchPattern)
        self.vops.get_datastore.assert_called_once_with('vm-1')

    def test_disk_bytes_on_a_known_datastore_reads_no_property(self):
        self.search_result(('vol-1-flat.vmdk', units.Mi))
        self.assertEqual(units.Mi, self.inv.disk_bytes('vm-1', 'ds-ref'))
        self.vops.get_datastore.assert_not_called()
        self.assertEqual('ds-ref', self.session.invoke_api.call_args_list[
            0].args[3])

    def test_retired_names(self):
        when = datetime.datetime(2026, 11, 30, 12, 0, 5)
        for name in (inventory.template_name(IMAGE),
                     inventory.template_name(IMAGE, 'abcdef12')):
            retired = inventory.retired_name(name, when)
            self.assertEqual(name + '.retired-1796040005', retired)
            self.assertEqual(IMAGE, inventory.parse_name(retired))
            self.assertLessEqual(len(retired), 80)
            entry = self.inv._to_entry(vm_content(retired))
            self.assertFalse(entry.ready)
            self.assertEqual(when, entry.retired_at)
        self.assertIsNone(self.inv._to_entry(vm_content(
            inventory.template_name(IMAGE))).retired_at)

    def test_retire_renames(self):
        copy = self.inv._to_entry(vm_content(inventory.template_name(IMAGE)))
        when = datetime.datetime(2026, 11, 30, 12, 0, 5)
        retired = self.inv.retire(copy, when)
        self.vops.rename_backing.assert_called_once_with(copy.ref,
                                                         retired.name)
        self.assertEqual((False, when), (retired.ready, retired.retired_at))

    def test_no_vms_no_question(self):
        self.assertEqual(set(), self.inv.busy([]))
        self.session.invoke_api.assert_not_called()

    @ddt.data(0, 7)
    def test_last_used_field_defined_once(self, key):
        # A field key of 0 is a key (the simulator's first field has it).
        field = mock.Mock(key=key)
        field.name = inventory.LAST_USED_FIELD
        self.session.invoke_api.return_value = mock.Mock(
            CustomFieldDef=[field])
        self.assertEqual(key, self.inv.ensure_last_used_field())
        self.assertEqual(key, self.inv.ensure_last_used_field())
        self.assertEqual(1, self.session.invoke_api.call_count)
        self.assertNotIn('AddCustomFieldDef', str(
            self.session.invoke_api.call_args_list))
