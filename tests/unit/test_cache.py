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


import dataclasses
import datetime
import threading
from unittest import mock

from cinder import coordination
from cinder.image import glance
from cinder.volume.drivers.vmware import volumeops
import ddt
from oslo_utils import units
from oslo_vmware import exceptions as vexc
from oslo_vmware import vim_util
import tooz.locking

from cinder_vmware_cache import cache
from cinder_vmware_cache import exceptions
from cinder_vmware_cache import image_access
from cinder_vmware_cache import inventory
from cinder_vmware_cache import locks
from cinder_vmware_cache import notify
from cinder_vmware_cache import placement
from cinder_vmware_cache import policy
from cinder_vmware_cache import snapshot
from cinder_vmware_cache import stock
from cinder_vmware_cache import upkeep
from tests import common

IMAGE = 'f6a5c4e2-9bd0-4f7e-8a33-1c2d3e4f5a6b'
META = {'id': IMAGE, 'disk_format': 'vmdk', 'size': units.Mi,
        'virtual_size': 3 * units.Gi, 'properties': {}}


def entry(ready=True, ref='vm-1', size=3 * units.Gi, image_id=IMAGE,
          datastore='ds-1', name=None):
    return policy.CacheEntry(image_id=image_id,
                             name=name or inventory.template_name(image_id),
                             ref=ref, ready=ready, size_bytes=size,
                             datastore=datastore, folder='folder-1')


def retired(entry, when=None):
    """What inventory.retire makes of an entry."""
    when = when or datetime.datetime(2026, 1, 1)
    return dataclasses.replace(
        entry, name=inventory.retired_name(entry.name, when), ready=False,
        retired_at=when)


def summary(value, name, used_percent=50):
    found = mock.Mock(datastore=vim_util.get_moref(value, 'Datastore'),
                      capacity=100, freeSpace=100 - used_percent,
                      spec=['datastore', 'capacity', 'freeSpace', 'name'])
    found.name = name
    return found


class CacheFixtures(common.TestCase):
    """A cache over a mocked seam, inventory, Glance, locks and notifier."""

    def setUp(self):
        super().setUp()
        coordinator = mock.create_autospec(coordination.Coordinator,
                                           instance=True)
        self.lock = mock.create_autospec(tooz.locking.Lock, instance=True)
        self.lock.acquire.return_value = True
        coordinator.get_lock.return_value = self.lock
        self.useFixture_patch(locks.coordination, 'COORDINATOR', coordinator)
        self.coordinator = coordinator
        # Specs: a change of the seam's or cinder's signatures fails here.
        self.stock = mock.create_autospec(stock.StockDriver, instance=True)
        self.stock.volumeops = mock.create_autospec(
            volumeops.VMwareVolumeOps, instance=True)
        self.stock.snapshot = mock.create_autospec(snapshot.Snapshot,
                                                   instance=True)
        self.placement = placement.Placement(
            'host', 'rp', 'vol-folder', summary('ds-1', 'DS1'), 'dc')
        self.candidates = placement.Candidates({}, None)
        self.stock.candidates.return_value = self.candidates
        self.stock.place.return_value = self.placement
        self.stock.storage_profile_id.return_value = None
        self.stock.adapter_type.return_value = 'lsiLogic'
        self.stock.served_datastores.return_value = {'ds-1', 'ds-2'}
        self.stock.extra_config.return_value = {
            'cinder.volume.id': 'vol-id', 'instanceUuid': 'vol-id'}
        self.inventory = mock.create_autospec(inventory.TemplateInventory,
                                              instance=True)
        self.inventory.backend = 'vmw'
        self.inventory.folder_for.return_value = 'cache-folder'
        self.inventory.retire.side_effect = retired
        self.inventory.busy.return_value = set()
        self.policy = policy.CachePolicy(enabled=True, max_image_gb=10)
        self.glance = mock.create_autospec(image_access.GlanceImages,
                                           instance=True)
        self.glance.deleted.return_value = set()
        self.notifier = mock.create_autospec(notify.Notifier, instance=True)
        self.cache = cache.ImageTemplateCache(
            self.stock, self.policy, self.inventory, images=self.glance,
            notifier=self.notifier)
        # The retire protocol's waits (upkeep.Upkeep._delete).
        self.sleeps = []
        self.cache._sleep = self.sleeps.append
        self.volume = {'id': 'vol-id', 'name': 'volume-vol-id', 'size': 5,
                       'volume_type_id': None,
                       'metadata': {'use_image_cache': 'true'}}
        self.images = mock.create_autospec(glance.GlanceImageService,
                                           instance=True)
        self.images.show.return_value = dict(META)

    def useFixture_patch(self, target, name, value):
        patcher = mock.patch.object(target, name, value)
        patcher.start()
        self.addCleanup(patcher.stop)

    def create(self, volume=None):
        return self.cache.create_volume('ctx', volume or self.volume,
                                        dict(META), self.images)


@ddt.ddt
class CacheTestCase(CacheFixtures):

    def test_not_requested_is_silent_and_skips_glance(self):
        self.volume['metadata'] = {}
        self.assertEqual(cache.Outcome(False), self.create())
        self.images.show.assert_not_called()
        self.stock.candidates.assert_not_called()

    def test_refused_takes_normal_path(self):
        self.cache.policy = policy.CachePolicy(enabled=False)
        with self.assertLogs(cache.LOG.logger, 'INFO') as logs:
            self.assertEqual(cache.Outcome(False, 'not used: cache disabled'),
                             self.create())
        self.assertIn('disabled', logs.output[0])
        self.stock.candidates.assert_not_called()

    def test_access_check_with_users_context_propagates(self):
        self.images.show.side_effect = RuntimeError('image not found')
        self.assertRaises(RuntimeError, self.create)
        self.images.show.assert_called_once_with('ctx', IMAGE)
        self.stock.clone_template.assert_not_called()

    def test_hit_clones_with_volume_identity(self):
        self.inventory.copies.return_value = [entry()]
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        self.inventory.copies.assert_called_once_with('cache-folder', IMAGE)
        self.coordinator.get_lock.assert_not_called()
        # Never recorded before: recorded now, after the request.
        self.cache.wait_background()
        self.inventory.record_use.assert_called_once_with('vm-1',
                                                          entry().name)
        vops = self.stock.volumeops
        expected_extra = {'cinder.volume.id': 'vol-id',
                          'instanceUuid': 'vol-id'}
        expected_extra.update({k: '' for k in inventory.MARKERS})
        self.stock.clone_template.assert_called_once_with(
            'volume-vol-id', 'vm-1', self.placement,
            self.stock.disk_type.return_value, expected_extra,
            timeout=self.policy.task_timeout)
        clone = self.stock.clone_template.return_value
        vops.update_backing_disk_uuid.assert_called_once_with(clone, 'vol-id')
        self.stock.extend.assert_called_once_with(
            clone, 5, self.stock.disk_type.return_value)
        self.stock.import_image.assert_not_called()

    def test_hit_no_extend_when_template_as_large(self):
        self.inventory.copies.return_value = [entry(size=5 * units.Gi)]
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        self.stock.extend.assert_not_called()

    def test_miss_fills_once_then_clones(self):
        template = entry()
        self.inventory.copies.side_effect = [[], []]
        self.inventory.disk_size.return_value = 3 * units.Gi
        self.inventory.list_entries.return_value = [template]
        self.assertEqual(cache.Outcome(True, 'filled'), self.create())
        fill = self.stock.import_image.call_args[0][1]
        self.assertEqual(IMAGE, inventory.parse_name(fill['name']))
        self.assertEqual('vmw_image_cache', fill['project_id'])
        self.assertEqual(3, fill['size'])
        self.assertEqual({}, fill['metadata'])
        self.assertNotEqual('vol-id', fill['id'])
        backing = self.stock.volumeops.get_backing.return_value
        self.inventory.publish.assert_called_once_with(
            backing, IMAGE, 3 * units.Gi, 'ds-1',
            inventory.template_name(IMAGE), 'lsiLogic')
        self.stock.adapter_type.assert_called_once_with(self.volume, META)
        # The fill is pinned to the request's datastore, in the cache folder.
        self.assertEqual(
            dataclasses.replace(self.placement, folder='cache-folder'),
            self.stock.import_image.call_args[0][4])
        self.stock.clone_template.assert_called_once()
        self.assertEqual(backing,
                         self.stock.clone_template.call_args[0][1])
        # The fill, only, under the image's lock: exclusive, waiting for
        # what is left of the request's wait.
        self.lock.acquire.assert_called_once_with(blocking=mock.ANY,
                                                  shared=False)
        waited = self.lock.acquire.call_args.kwargs['blocking']
        self.assertLessEqual(waited, self.policy.wait_timeout)
        self.assertGreater(waited, self.policy.wait_timeout - 5)

    def test_a_fill_is_placed_from_fresh_reads(self):
        self.inventory.copies.return_value = []
        self.inventory.disk_size.return_value = units.Gi
        fresh = dataclasses.replace(self.placement, host='host-fresh')
        self.stock.place.side_effect = [self.placement, fresh]
        self.assertEqual(cache.Outcome(True, 'filled'), self.create())
        self.stock.snapshot.clear.assert_called()
        self.assertEqual('host-fresh',
                         self.stock.import_image.call_args[0][4].host)

    def test_caps_failure_after_fill_keeps_the_volume(self):
        self.cache.policy = policy.CachePolicy(enabled=True, max_count=1)
        self.inventory.copies.return_value = []
        self.inventory.disk_size.return_value = units.Gi
        self.inventory.list_entries.side_effect = vexc.VimException('down')
        self.assertEqual(cache.Outcome(True, 'filled'), self.create())
        self.cache.wait_background()
        self.inventory.list_entries.assert_called_once_with()
        self.stock.volumeops.delete_backing.assert_not_called()

    def test_without_caps_a_fill_lists_nothing_after(self):
        self.inventory.copies.return_value = []
        self.inventory.disk_size.return_value = units.Gi
        self.assertEqual(cache.Outcome(True, 'filled'), self.create())
        self.cache.wait_background()
        self.inventory.list_entries.assert_not_called()

    def test_request_never_waits_for_the_eviction(self):
        self.cache.policy = policy.CachePolicy(enabled=True, max_count=1)
        self.inventory.copies.return_value = []
        self.inventory.disk_size.return_value = units.Gi
        listing = threading.Event()
        self.addCleanup(listing.set)
        self.inventory.list_entries.side_effect = lambda *a: (
            listing.wait(30), [])[1]
        self.assertEqual(cache.Outcome(True, 'filled'), self.create())
        # The eviction is still waiting for its listing.
        self.inventory.delete.assert_not_called()
        listing.set()
        self.cache.wait_background()
        self.inventory.list_entries.assert_called_once_with()

    def test_miss_removes_unready_template_first(self):
        broken = entry(ready=False, ref='vm-9')
        self.inventory.copies.side_effect = [[broken], [broken]]
        self.inventory.disk_size.return_value = units.Gi
        self.inventory.list_entries.return_value = []
        self.assertEqual(cache.Outcome(True, 'filled'), self.create())
        self.inventory.delete.assert_called_once_with('vm-9')

    def test_fill_failure_falls_back_and_leaves_nothing(self):
        self.inventory.copies.return_value = []
        self.inventory.publish.side_effect = vexc.VimException('boom')
        self.assertEqual(cache.Outcome(False, 'not used: cache error'),
                         self.create())
        vops = self.stock.volumeops
        # The partial template and any backing of the volume are removed.
        self.assertEqual(2, vops.delete_backing.call_count)
        self.stock.clone_template.assert_not_called()

    def test_empty_import_is_never_published(self):
        # A refused upload leaves a VM whose disk holds no data.
        self.inventory.copies.return_value = []
        self.inventory.disk_bytes.return_value = 0
        self.assertEqual(cache.Outcome(False, 'not used: cache error'),
                         self.create())
        self.inventory.publish.assert_not_called()
        self.stock.clone_template.assert_not_called()
        self.stock.volumeops.delete_backing.assert_any_call(
            self.stock.volumeops.get_backing.return_value)

    def test_eviction_after_fill_waits_for_clones_in_the_background(self):
        self.cache.policy = policy.CachePolicy(enabled=True, max_count=1,
                                               wait_timeout=30)
        old = policy.CacheEntry('old', 'image-old', 'vm-old', True,
                                size_bytes=units.Gi,
                                last_used=datetime.datetime(2020, 1, 1))
        self.inventory.copies.return_value = []
        self.inventory.disk_size.return_value = units.Gi
        self.inventory.list_entries.return_value = [
            old, dataclasses.replace(entry(ref='vm-new', size=units.Gi),
                                     last_used=datetime.datetime.now())]
        self.assertEqual(cache.Outcome(True, 'filled'), self.create())
        self.cache.wait_background()
        self.inventory.delete.assert_called_once_with('vm-old')
        last = self.lock.acquire.call_args
        self.assertFalse(last.kwargs['shared'])
        self.assertGreater(last.kwargs['blocking'], 25)
        self.assertLessEqual(last.kwargs['blocking'], 30)

    @ddt.data(vexc.FileNotFoundException('disk gone'),
              vexc.VimFaultException(['FileNotFound'], 'disk gone'))
    def test_clone_of_a_broken_template_drops_it_and_falls_back(self, exc):
        self.inventory.copies.return_value = [entry()]
        self.inventory.reread.return_value = entry()
        self.stock.clone_template.side_effect = exc
        self.assertEqual(cache.Outcome(False, 'not used: cache error'),
                         self.create())
        self.cache.wait_background()
        self.inventory.delete.assert_called_once_with('vm-1')
        self.stock.volumeops.delete_backing.assert_called_once_with(
            self.stock.volumeops.get_backing.return_value)

    def test_clone_of_a_vanished_template_drops_it(self):
        self.inventory.copies.return_value = [entry()]
        self.inventory.reread.return_value = None
        self.stock.clone_template.side_effect = (
            vexc.ManagedObjectNotFoundException('gone'))
        self.assertEqual(cache.Outcome(False, 'not used: cache error'),
                         self.create())
        self.cache.wait_background()
        self.inventory.delete.assert_called_once_with('vm-1')

    @ddt.data(vexc.NoDiskSpaceException('datastore full'),
              vexc.VimFaultException(['InvalidArgument'], 'bad spec'),
              vexc.ManagedObjectNotFoundException('host gone'),
              vexc.VimConnectionException('connection lost'))
    def test_target_side_clone_failure_keeps_the_template(self, exc):
        self.inventory.copies.return_value = [entry()]
        self.inventory.reread.return_value = entry()
        self.stock.clone_template.side_effect = exc
        self.assertEqual(cache.Outcome(False, 'not used: cache error'),
                         self.create())
        self.cache.wait_background()
        self.inventory.delete.assert_not_called()
        self.assertEqual([entry().key],
                         [e.key for e in self.cache.entries()])
        # The partial clone of the request is removed.
        self.stock.volumeops.delete_backing.assert_called_once_with(
            self.stock.volumeops.get_backing.return_value)

    def test_a_hung_clone_falls_back_and_keeps_the_template(self):
        self.inventory.copies.return_value = [entry()]
        self.stock.clone_template.side_effect = exceptions.TaskHung(
            'the clone volume-vol-id did not end within 3600 s')
        with self.assertLogs(cache.LOG.logger, 'WARNING') as logs:
            self.assertEqual(cache.Outcome(False, 'not used: task timeout'),
                             self.create())
        self.assertNotIn('Traceback', '\n'.join(logs.output))
        self.cache.wait_background()
        self.inventory.delete.assert_not_called()

    def test_template_kept_when_it_cannot_be_reread(self):
        self.inventory.copies.return_value = [entry()]
        self.inventory.reread.side_effect = vexc.VimConnectionException('x')
        self.stock.clone_template.side_effect = (
            vexc.NoDiskSpaceException('datastore full'))
        self.create()
        self.cache.wait_background()
        self.inventory.delete.assert_not_called()

    def test_recent_recorded_use_is_not_rewritten(self):
        recent = dataclasses.replace(
            entry(), last_used=datetime.datetime.utcnow() -
            datetime.timedelta(seconds=5))
        self.inventory.copies.return_value = [recent]
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        self.cache.wait_background()
        self.inventory.record_use.assert_not_called()
        # This process counts the use all the same.
        [known] = self.cache._known([recent])
        self.assertGreater(known.last_used, recent.last_used)

    def test_old_recorded_use_is_rewritten_once_at_a_time(self):
        old = dataclasses.replace(
            entry(), last_used=datetime.datetime.utcnow() -
            datetime.timedelta(seconds=self.policy.use_record_seconds + 1))
        writing, release = threading.Event(), threading.Event()

        def slow_write(*_args):
            writing.set()
            release.wait(10)
            return True
        self.inventory.record_use.side_effect = slow_write
        self.cache._record_use(old)
        self.assertTrue(writing.wait(10))
        self.cache._record_use(old)
        self.cache._record_use(old)
        release.set()
        self.cache.wait_background()
        self.inventory.record_use.assert_called_once_with('vm-1', old.name)
        self.cache._record_use(old)
        self.cache.wait_background()
        self.assertEqual(2, self.inventory.record_use.call_count)

    def test_failed_last_use_record_still_clones(self):
        # record_use never raises (inventory's own tests); the hit goes on.
        self.inventory.copies.return_value = [entry()]
        self.inventory.record_use.return_value = False
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        self.inventory.delete.assert_not_called()

    def test_lock_timeout_of_a_fill_falls_back(self):
        self.inventory.copies.return_value = []
        self.lock.acquire.return_value = False
        self.assertEqual(cache.Outcome(False, 'not used: wait timeout'),
                         self.create())
        self.stock.import_image.assert_not_called()

    def test_a_hit_takes_no_lock(self):
        self.inventory.copies.return_value = [entry()]
        self.lock.acquire.return_value = False
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        self.coordinator.get_lock.assert_not_called()

    def test_hit_and_miss_are_notified_with_the_requests_context(self):
        self.inventory.copies.return_value = [entry()]
        self.create()
        self.notifier.emit.assert_called_once_with(
            notify.HIT, entry(), 'ctx', mock.ANY, volume_id='vol-id',
            trigger=notify.TRIGGER_REQUEST)
        self.notifier.reset_mock()
        self.inventory.copies.return_value = []
        self.inventory.disk_size.return_value = units.Gi
        self.inventory.list_entries.return_value = []
        self.create()
        action, filled = self.notifier.emit.call_args[0][:2]
        self.assertEqual(notify.MISS, action)
        self.assertEqual(IMAGE, filled.image_id)
        self.assertEqual('ds-1', filled.datastore)

    def test_invalid_request_value_is_reported(self):
        self.volume['metadata'] = {'use_image_cache': 'perhaps'}
        self.assertEqual(
            cache.Outcome(False, 'not used: invalid use_image_cache value'),
            self.create())
        self.images.show.assert_not_called()

    def test_warm_fills_with_the_default_type(self):
        self.inventory.copies.return_value = []
        self.inventory.disk_size.return_value = 3 * units.Gi
        self.inventory.list_entries.return_value = []
        [(filled, added)] = self.cache.warm('svc-ctx', self.images, IMAGE)
        self.assertEqual(cache.ADDED_FILLED, added)
        self.assertEqual(IMAGE, filled.image_id)
        self.images.show.assert_called_once_with('svc-ctx', IMAGE)
        placed = self.stock.candidates.call_args[0][0]
        self.assertIsNone(placed['volume_type_id'])
        fill = self.stock.import_image.call_args[0][1]
        self.assertIsNone(fill['volume_type_id'])
        self.assertEqual(placed['size'], fill['size'])
        self.stock.clone_template.assert_not_called()
        self.assertFalse(self.lock.acquire.call_args.kwargs['shared'])
        self.notifier.emit.assert_called_once_with(
            notify.MISS, filled, 'svc-ctx', mock.ANY,
            trigger=notify.TRIGGER_COMMAND)

    def test_warm_of_a_cached_image_refreshes_its_last_use(self):
        self.inventory.copies.return_value = [entry()]
        self.assertEqual([(entry(), None)],
                         self.cache.warm('svc-ctx', self.images, IMAGE))
        self.inventory.record_use.assert_called_once_with('vm-1',
                                                          entry().name)
        self.stock.import_image.assert_not_called()
        self.notifier.emit.assert_not_called()

    def test_warm_refused_by_policy(self):
        self.images.show.return_value = dict(META, disk_format='qcow2')
        error = self.assertRaises(exceptions.ImageNotCacheable,
                                  self.cache.warm, 'ctx', self.images, IMAGE)
        self.assertIn("'qcow2', not vmdk", str(error))
        self.stock.candidates.assert_not_called()

    def test_keep_warm_fills_listed_images_not_cached(self):
        self.cache.policy = policy.CachePolicy(
            enabled=True, warm_images=(IMAGE, 'cached', 'broken'))
        self.cache._refresh([entry(ref='vm-c', image_id='cached')])
        self.glance.context.return_value = 'svc-ctx'
        self.glance.service = self.images
        with mock.patch.object(self.cache, 'warm', autospec=True) as warm:
            warm.side_effect = [[(entry(), cache.ADDED_FILLED)],
                                RuntimeError('no such')]
            with self.assertLogs(upkeep.LOG.logger, 'WARNING') as logs:
                self.assertEqual([IMAGE], self.cache.keep_warm())
            warm.assert_has_calls([
                mock.call('svc-ctx', self.images, IMAGE,
                          trigger=notify.TRIGGER_PERIODIC),
                mock.call('svc-ctx', self.images, 'broken',
                          trigger=notify.TRIGGER_PERIODIC)])
            self.assertIn('Could not warm image broken', logs.output[0])
            # The same failure is not repeated as a warning.
            warm.side_effect = [[(entry(), None)], RuntimeError('no such')]
            with self.assertLogs(upkeep.LOG.logger, 'DEBUG') as logs:
                self.cache.keep_warm()
            self.assertNotIn('WARNING', ' '.join(logs.output))

    def test_keep_warm_without_credentials_does_nothing(self):
        self.cache.policy = policy.CachePolicy(enabled=True,
                                               warm_images=(IMAGE,))
        self.glance.context.return_value = None
        self.assertEqual([], self.cache.keep_warm())
        self.stock.candidates.assert_not_called()


class CopiesTestCase(CacheFixtures):
    """Copies per datastore: placement, seeding, names, accounting."""

    def setUp(self):
        super().setUp()
        self.first = self.placement
        self.second = placement.Placement(
            'host-2', 'rp-2', 'vol-folder', summary('ds-2', 'DS2'), 'dc')
        self.candidates = placement.Candidates(
            {self.first.summary.datastore: {'summary': self.first.summary},
             self.second.summary.datastore: {'summary': self.second.summary}},
            None)
        self.stock.candidates.return_value = self.candidates

        def place(volume, candidates, datastores=None):
            values = {r.value for r in (datastores or candidates.datastores)}
            return self.first if 'ds-1' in values else self.second
        self.stock.place.side_effect = place
        self.seeded = mock.sentinel.seeded_vm
        self.inventory.seed.return_value = self.seeded
        self.inventory.list_entries.return_value = []

    def cloned_to(self):
        return self.stock.clone_template.call_args

    def cloned_ds(self):
        """The datastore moref value the clone went to."""
        return self.cloned_to()[0][2].summary.datastore.value

    def test_prefers_the_datastore_holding_a_copy(self):
        self.inventory.copies.return_value = [entry(datastore='ds-2')]
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        target = self.cloned_to()[0][2]
        self.assertEqual('ds-2', target.summary.datastore.value)
        self.assertEqual('host-2', target.host)
        self.inventory.seed.assert_not_called()

    def test_busy_cached_datastore_is_not_preferred(self):
        self.cache.policy = policy.CachePolicy(
            enabled=True, placement_max_utilization=80)
        self.second.summary.freeSpace = 10
        self.inventory.copies.return_value = [entry(datastore='ds-2')]
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        # The stock choice (50 % used) gets a copy seeded from ds-2.
        self.assertEqual('ds-1', self.cloned_ds())
        source, name, target = self.inventory.seed.call_args[0]
        self.assertEqual('ds-2', source.datastore)
        self.assertEqual(inventory.template_name(
            IMAGE, inventory.copy_key('ds-1')), name)
        self.assertEqual('cache-folder', target.folder)
        self.assertEqual('ds-1', target.datastore)

    def test_stock_placement_seeds_and_clones_the_new_copy(self):
        self.cache.policy = policy.CachePolicy(enabled=True,
                                               placement='stock')
        self.inventory.copies.return_value = [entry(datastore='ds-2')]
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        self.assertEqual(self.seeded, self.cloned_to()[0][1])
        self.assertEqual('ds-1', self.cloned_ds())
        # The seed holds its datastore's lock only.
        self.assertEqual(
            [mock.call('image-cache-vmw-%s-ds-%s' % (
                IMAGE, inventory.copy_key('ds-1')))],
            self.coordinator.get_lock.call_args_list)
        action, seeded = self.notifier.emit.call_args_list[0][0][:2]
        self.assertEqual(notify.SEED, action)
        self.assertEqual('ds-1', seeded.datastore)
        self.assertEqual('image-%s' % IMAGE,
                         self.notifier.emit.call_args_list[0].kwargs[
                             'source_template'])
        self.stock.import_image.assert_not_called()

    def test_a_seed_by_another_request_is_used(self):
        self.cache.policy = policy.CachePolicy(enabled=True,
                                               placement='stock')
        theirs = entry(ref='vm-theirs', datastore='ds-1')
        self.inventory.copies.side_effect = [[entry(datastore='ds-2')],
                                             [entry(datastore='ds-2'),
                                              theirs]]
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        self.inventory.seed.assert_not_called()
        self.assertEqual('vm-theirs', self.cloned_to()[0][1])

    def test_failed_seed_falls_back_and_keeps_the_source(self):
        self.cache.policy = policy.CachePolicy(enabled=True,
                                               placement='stock')
        self.inventory.copies.return_value = [entry(datastore='ds-2')]
        self.inventory.seed.side_effect = vexc.VimException('no space')
        with self.assertLogs(cache.LOG.logger, 'WARNING') as logs:
            self.assertEqual(cache.Outcome(False, 'not used: cache error'),
                             self.create())
        self.assertIn('seeding a copy of image %s on datastore DS1 failed'
                      % IMAGE, logs.output[0])
        self.inventory.delete.assert_not_called()
        self.stock.clone_template.assert_not_called()

    def test_copy_bound_clones_across_datastores(self):
        self.cache.policy = policy.CachePolicy(
            enabled=True, placement='stock', max_copies_per_image=1)
        self.inventory.copies.return_value = [entry(datastore='ds-2')]
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        self.inventory.seed.assert_not_called()
        self.assertEqual('vm-1', self.cloned_to()[0][1])
        self.assertEqual('ds-1', self.cloned_ds())

    def test_warm_on_named_datastores(self):
        self.inventory.copies.side_effect = [[], [], [entry()], [entry()]]
        self.inventory.disk_size.return_value = units.Gi
        done = self.cache.warm('ctx', self.images, IMAGE,
                               datastores=['DS1', 'DS2'])
        self.assertEqual([cache.ADDED_FILLED, cache.ADDED_SEEDED],
                         [added for _entry, added in done])
        self.assertEqual('ds-1',
                         self.stock.import_image.call_args[0][4].datastore)
        self.assertEqual('ds-2', self.inventory.seed.call_args[0][2]
                         .datastore)

    def test_warm_on_an_unknown_or_ambiguous_datastore(self):
        error = self.assertRaises(exceptions.DatastoreNotEligible,
                                  self.cache.warm, 'ctx', self.images,
                                  IMAGE, datastores=['nope'])
        self.assertIn('datastore nope is not one this backend', str(error))
        twin = summary('ds-3', 'DS1')
        self.candidates.datastores[twin.datastore] = {'summary': twin}
        error = self.assertRaises(exceptions.DatastoreNotEligible,
                                  self.cache.warm, 'ctx', self.images,
                                  IMAGE, datastores=['DS1'])
        self.assertIn('ambiguous', str(error))
        self.stock.import_image.assert_not_called()

    def test_clone_gets_the_volume_types_storage_profile(self):
        self.inventory.copies.return_value = [entry()]
        self.stock.storage_profile_id.return_value = 'gold-id'
        self.create()
        self.stock.volumeops.change_backing_profile.assert_called_once_with(
            self.stock.clone_template.return_value, 'gold-id')

    def test_a_copy_seen_lately_is_used_as_known(self):
        known = dataclasses.replace(entry(datastore='ds-2'),
                                    folder='cache-folder')
        self.cache._refresh([known])
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        self.inventory.reread.assert_not_called()
        self.inventory.copies.assert_not_called()
        self.assertEqual('vm-1', self.cloned_to()[0][1])

    def test_a_known_copy_is_reread_not_listed(self):
        known = dataclasses.replace(entry(datastore='ds-2'),
                                    folder='cache-folder')
        self.cache.policy = dataclasses.replace(self.policy,
                                                known_copy_seconds=0)
        self.cache._refresh([known])
        self.inventory.reread.return_value = known
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        self.inventory.reread.assert_called_once_with('vm-1')
        self.inventory.copies.assert_not_called()
        self.assertEqual('ds-2', self.cloned_ds())

    def test_a_known_copy_that_is_gone_sends_to_the_listing(self):
        gone = dataclasses.replace(entry(ref='vm-gone', datastore='ds-2'),
                                   folder='cache-folder')
        self.cache.policy = dataclasses.replace(self.policy,
                                                known_copy_seconds=0)
        self.cache._refresh([gone])
        self.inventory.reread.return_value = None
        theirs = dataclasses.replace(entry(ref='vm-new', datastore='ds-2'),
                                     folder='cache-folder')
        self.inventory.copies.return_value = [theirs]
        self.assertEqual(cache.Outcome(True, 'hit'), self.create())
        self.assertEqual('vm-new', self.cloned_to()[0][1])
        self.assertEqual(['vm-new'], [e.ref for e in self.cache.entries()])
