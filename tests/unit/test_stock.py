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

import contextlib
import sys
from unittest import mock

from cinder.volume import configuration
from cinder.volume.drivers.vmware import datastore
from cinder.volume.drivers.vmware import exceptions as vmdk_exceptions
from cinder.volume.drivers.vmware import vmdk
from cinder.volume.drivers.vmware import volumeops
import fixtures
from oslo_config import fixture as config_fixture
from oslo_utils import units
from oslo_vmware import vim_util

from cinder_vmware_cache import exceptions
from cinder_vmware_cache import hang
from cinder_vmware_cache import placement
from cinder_vmware_cache import stock
from tests import common


class StockDriverTestCase(common.TestCase):

    def setUp(self):
        super().setUp()
        self.driver = mock.create_autospec(vmdk.VMwareVcVmdkDriver,
                                           instance=True)
        self.driver.volumeops = mock.create_autospec(
            volumeops.VMwareVolumeOps, instance=True)
        # Set by the stock driver's do_setup.
        self.driver.ds_sel = mock.create_autospec(
            datastore.DatastoreSelector, instance=True)
        self.driver._clusters = None
        self.stock_select = self.driver._select_ds_for_volume
        self.stock = stock.StockDriver(self.driver)

    def test_candidates_are_the_stock_filtering(self):
        self.driver._clusters = ['cluster']
        self.driver._get_hosts.return_value = ['host-1']
        self.driver._get_storage_profile.return_value = 'gold'
        selector = self.driver.ds_sel
        found = self.stock.candidates({'size': 2})
        self.assertEqual(selector._filter_datastores.return_value,
                         found.datastores)
        self.assertEqual(['host-1'], found.hosts)
        selector._filter_datastores.assert_called_once_with(
            selector._get_datastores.return_value, 2 * units.Gi,
            selector.get_profile_id.return_value, None, None,
            valid_host_refs=['host-1'])
        selector.get_profile_id.assert_called_once_with('gold')

    def test_candidates_without_hosts_in_the_clusters(self):
        self.driver._clusters = ['cluster']
        self.driver._get_hosts.return_value = []
        self.assertRaises(vmdk_exceptions.NoValidHostException,
                          self.stock.candidates, {'size': 1})

    def test_served_datastores(self):
        ref = vim_util.get_moref('ds-7', 'Datastore')
        self.driver.ds_sel._filter_datastores.return_value = {ref: {}}
        self.assertEqual({'ds-7'}, self.stock.served_datastores())
        self.driver.ds_sel._filter_datastores.assert_called_once_with(
            self.driver.ds_sel._get_datastores.return_value, 0, None, None,
            None, valid_host_refs=None)

    def test_place_ranks_with_the_stock_selector(self):
        summary = mock.Mock()
        self.driver.ds_sel._select_best_datastore.return_value = (
            'host', 'rp', summary)
        candidates = placement.Candidates({'a': 1, 'b': 2}, ['host'])
        found = self.stock.place({'project_id': 'p'}, candidates, {'b': 2})
        self.driver.ds_sel._select_best_datastore.assert_called_once_with(
            {'b': 2}, valid_host_refs=['host'])
        self.driver._get_dc.assert_called_once_with('rp')
        dc = self.driver._get_dc.return_value
        self.driver._get_volume_group_folder.assert_called_once_with(dc, 'p')
        self.assertEqual(placement.Placement(
            'host', 'rp', self.driver._get_volume_group_folder.return_value,
            summary, dc), found)

    def test_place_without_a_usable_host(self):
        self.driver.ds_sel._select_best_datastore.return_value = None
        self.assertRaises(vmdk_exceptions.NoValidDatastoreException,
                          self.stock.place, {'project_id': 'p'},
                          placement.Candidates({}, None))

    def test_storage_profile_id(self):
        self.assertIs(self.driver._get_storage_profile_id.return_value,
                      self.stock.storage_profile_id(mock.sentinel.volume))

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

    def test_import_image_is_pinned_to_the_target(self):
        target = placement.Placement('host', 'rp', 'cache-folder',
                                     mock.sentinel.summary, 'dc')
        seen = []

        def copy_image_to_volume(ctx, volume, images, image_id):
            # The stock import selects the datastore itself.
            seen.append(self.driver._select_ds_for_volume(volume))
            seen.append(self.driver._select_ds_for_volume({'id': 'other'}))

        self.driver.copy_image_to_volume.side_effect = copy_image_to_volume
        self.stock.import_image(mock.sentinel.ctx, {'id': 'fill'},
                                mock.sentinel.images, 'image-1', target)
        self.assertEqual(('host', 'rp', 'cache-folder',
                          mock.sentinel.summary), seen[0])
        self.assertIs(self.stock_select.return_value, seen[1])
        self.stock_select.assert_called_once_with({'id': 'other'}, None,
                                                  None)
        # Unpinned afterwards, also when the import fails.
        self.driver.copy_image_to_volume.side_effect = RuntimeError('x')
        self.assertRaises(RuntimeError, self.stock.import_image,
                          mock.sentinel.ctx, {'id': 'fill'},
                          mock.sentinel.images, 'image-1', target)
        self.driver._select_ds_for_volume({'id': 'fill'})
        self.assertEqual(2, self.stock_select.call_count)

    def test_volumeops(self):
        self.assertIs(self.driver.volumeops, self.stock.volumeops)


class SnapshotSelectorTestCase(common.TestCase):
    """The cache's selector reads through a snapshot; the driver's not."""

    def setUp(self):
        super().setUp()
        self.reads = {name: self.useFixture(fixtures.MockPatchObject(
            datastore.DatastoreSelector, name, autospec=True)).mock
            for name in ('_get_datastores', '_get_host_properties',
                         '_get_resource_pool')}
        self.reads['_get_datastores'].return_value = {}
        self.driver = mock.create_autospec(vmdk.VMwareVcVmdkDriver,
                                           instance=True)
        self.driver.ds_sel = datastore.DatastoreSelector(
            mock.Mock(), mock.Mock(), 10)
        self.driver._clusters = None
        self.driver._get_storage_profile.return_value = None
        self.stock = stock.StockDriver(self.driver)

    def test_a_burst_reads_the_datastores_once(self):
        for _ in range(3):
            self.stock.candidates({'size': 1})
        self.assertEqual(1, self.reads['_get_datastores'].call_count)
        # The stock path's own selection still reads afresh.
        self.driver.ds_sel._get_datastores()
        self.assertEqual(2, self.reads['_get_datastores'].call_count)

    def test_a_cleared_snapshot_reads_again(self):
        self.stock.candidates({'size': 1})
        self.stock.snapshot.clear()
        self.stock.candidates({'size': 1})
        self.assertEqual(2, self.reads['_get_datastores'].call_count)

    def test_hosts_and_resource_pools_once_per_object(self):
        selector = self.stock._selector
        host_1, host_2 = (vim_util.get_moref('host-%d' % i, 'HostSystem')
                          for i in (1, 2))
        for host in (host_1, host_2, host_1):
            selector._get_host_properties(host)
        self.assertEqual(2, self.reads['_get_host_properties'].call_count)
        cluster = vim_util.get_moref('domain-c1', 'ClusterComputeResource')
        selector._get_resource_pool(cluster)
        selector._get_resource_pool(cluster)
        self.assertEqual(1, self.reads['_get_resource_pool'].call_count)

    def test_a_clone_takes_space_from_the_snapshot(self):
        summary = mock.Mock(freeSpace=10 * units.Gi)
        target = placement.Placement('h', 'rp', 'f', summary, 'dc')
        self.stock.took_space(target, 3 * units.Gi)
        self.assertEqual(7 * units.Gi, summary.freeSpace)
        self.stock.took_space(target, 30 * units.Gi)
        self.assertEqual(0, summary.freeSpace)


class TemplateCloneTestCase(common.TestCase):
    """Clones of a template: the stock spec, one disk read, a bound."""

    def setUp(self):
        super().setUp()
        self.read_device = self.useFixture(fixtures.MockPatchObject(
            volumeops.VMwareVolumeOps, '_get_disk_device',
            autospec=True)).mock
        self.session = mock.Mock()
        self.driver = mock.create_autospec(vmdk.VMwareVcVmdkDriver,
                                           instance=True)
        self.driver.session = self.session
        self.driver.volumeops = volumeops.VMwareVolumeOps(
            self.session, 10, 'key', 'type')
        self.stock = stock.StockDriver(self.driver)
        self.target = placement.Placement(
            'host', 'rp', 'folder', mock.Mock(datastore='ds'), 'dc')

    def clone(self, **kwargs):
        return self.stock.clone_template('volume-1', 'tmpl', self.target,
                                         'thin', {'k': 'v'}, **kwargs)

    def test_clone_is_the_stock_full_clone(self):
        with mock.patch.object(volumeops.VMwareVolumeOps, '_get_clone_spec',
                               autospec=True) as spec:
            vm = self.clone()
        self.assertEqual(self.session.wait_for_task.return_value.result, vm)
        vops, *args = spec.call_args[0]
        self.assertIsNot(self.driver.volumeops, vops)
        self.assertEqual(['ds', 'moveAllDiskBackingsAndDisallowSharing',
                          None, 'tmpl', 'thin'], args)
        self.assertEqual({'host': 'host', 'resource_pool': 'rp',
                          'extra_config': {'k': 'v'}}, spec.call_args.kwargs)
        self.session.invoke_api.assert_called_once_with(
            self.session.vim, 'CloneVM_Task', 'tmpl', folder='folder',
            name='volume-1', spec=spec.return_value)
        self.session.wait_for_task.assert_called_once_with(
            self.session.invoke_api.return_value)

    def test_template_disk_device_read_once(self):
        template = vim_util.get_moref('vm-1', 'VirtualMachine')
        for _ in range(3):
            self.stock.clone_template('volume-1', template, self.target,
                                      'thin', {})
        self.assertEqual(1, self.read_device.call_count)
        # The driver's own volumeops reads afresh.
        self.driver.volumeops._get_disk_device(template)
        self.assertEqual(2, self.read_device.call_count)

    def hangs_once(self):
        """The clone's wait hangs; the wait for its cancellation not."""
        waits = []

        @contextlib.contextmanager
        def bounded(seconds, what):
            waits.append((seconds, what))
            yield
            if len(waits) == 1:
                raise exceptions.TaskHung(what)
        self.useFixture(fixtures.MockPatchObject(hang, 'bounded', bounded))
        return waits

    def test_a_hung_clone_is_cancelled_and_what_it_made_removed(self):
        waits = self.hangs_once()
        made = self.session.wait_for_task.return_value.result
        with mock.patch.object(self.driver.volumeops,
                               'delete_backing') as delete:
            self.assertRaises(exceptions.TaskHung, self.clone, timeout=7)
        task = self.session.invoke_api.return_value
        self.session.invoke_api.assert_called_with(self.session.vim,
                                                   'CancelTask', task)
        self.assertEqual([7, 60], [seconds for seconds, _what in waits])
        delete.assert_called_once_with(made)

    def test_an_abandoned_clone_that_ends_in_error_leaves_nothing(self):
        self.hangs_once()
        self.session.wait_for_task.side_effect = [
            mock.Mock(), RuntimeError('cancelled')]
        with mock.patch.object(self.driver.volumeops,
                               'delete_backing') as delete:
            self.assertRaises(exceptions.TaskHung, self.clone, timeout=7)
        delete.assert_not_called()


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
