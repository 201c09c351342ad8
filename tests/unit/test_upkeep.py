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

"""Counting, deleting and the periodic purge (upkeep.Upkeep)."""

import dataclasses
import datetime
import threading
from unittest import mock

from oslo_vmware import exceptions as vexc

from cinder_vmware_cache import inventory
from cinder_vmware_cache import notify
from cinder_vmware_cache import policy
from cinder_vmware_cache import upkeep
from tests.unit import test_cache
from tests.unit.test_cache import entry
from tests.unit.test_cache import IMAGE


class UpkeepTestCase(test_cache.CacheFixtures):

    def test_purge_expired_rechecks_under_lock(self):
        old = entry()
        self.inventory.list_entries.return_value = [old]
        self.cache.policy = policy.CachePolicy(enabled=True, age_seconds=1)
        with mock.patch.object(self.cache.policy.__class__, 'is_expired',
                               return_value=True):
            self.inventory.reread.return_value = old
            self.assertEqual([old], self.cache.purge())
        self.inventory.delete.assert_called_once_with('vm-1')
        self.notifier.emit.assert_called_once_with(
            notify.EXPIRE, old, reason='expired',
            trigger=notify.TRIGGER_COMMAND)
        self.lock.acquire.assert_called_with(blocking=False, shared=False)
        self.assertEqual(0, self.cache.provisioned_gb())

    def test_purge_skips_entry_whose_image_a_fill_locks(self):
        self.inventory.list_entries.return_value = [entry()]
        self.lock.acquire.return_value = False
        self.assertEqual([], self.cache.purge(expired_only=False))
        self.inventory.delete.assert_not_called()
        self.assertEqual(3, self.cache.provisioned_gb())

    def test_purge_image_filter(self):
        other = entry(ref='vm-2', image_id='other')
        self.inventory.list_entries.return_value = [entry(), other]
        self.assertEqual([other], self.cache.purge(expired_only=False,
                                                   image_id='other'))

    def test_purge_survives_vim_errors_per_entry(self):
        a, b = entry(ref='vm-a'), entry(ref='vm-b', image_id='b')
        self.inventory.list_entries.return_value = [a, b]
        self.inventory.delete.side_effect = [vexc.VimException('x'), None]
        self.assertEqual([b], self.cache.purge(expired_only=False))

    def test_caps_count_uses_vcenter_has_not_recorded_yet(self):
        now = datetime.datetime.utcnow()
        a = dataclasses.replace(entry(ref='vm-a', image_id='a'),
                                last_used=now - datetime.timedelta(hours=2))
        b = dataclasses.replace(entry(ref='vm-b', image_id='b'),
                                last_used=now - datetime.timedelta(hours=1))
        self.inventory.list_entries.return_value = [a, b]
        self.cache.policy = policy.CachePolicy(enabled=True, max_count=1)
        # a was used a moment ago; vCenter still says two hours.
        self.cache._uses[a.key] = now
        self.cache._enforce_caps(notify.TRIGGER_REQUEST)
        self.inventory.delete.assert_called_once_with('vm-b')

    def test_expiry_counts_uses_vcenter_has_not_recorded_yet(self):
        now = datetime.datetime.utcnow()
        old = dataclasses.replace(entry(), last_used=now - datetime.timedelta(
            seconds=100))
        self.inventory.list_entries.return_value = [old]
        self.inventory.reread.return_value = old
        self.cache.policy = policy.CachePolicy(enabled=True, age_seconds=60)
        self.cache._uses[old.key] = now
        self.assertEqual([], self.cache.purge())
        self.inventory.delete.assert_not_called()

    def test_purge_survives_any_error_per_entry(self):
        a, b, c = (entry(ref='vm-a'), entry(ref='vm-b', image_id='b'),
                   entry(ref='vm-c', image_id='c'))
        self.inventory.list_entries.return_value = [a, b, c]
        self.inventory.delete.side_effect = [
            vexc.VimConnectionException('connection lost'),
            vexc.VimSessionOverLoadException('too many sessions'), None]
        self.assertEqual([c], self.cache.purge(expired_only=False))

    def test_purge_survives_lock_errors_per_entry(self):
        a, b = entry(ref='vm-a'), entry(ref='vm-b', image_id='b')
        self.inventory.list_entries.return_value = [a, b]
        self.lock.acquire.side_effect = [RuntimeError('backend down'), True]
        self.assertEqual([b], self.cache.purge(expired_only=False))

    def test_caps_after_a_request_run_in_the_background_once(self):
        listed = threading.Event()
        release = threading.Event()

        def slow_listing(*_args):
            listed.set()
            release.wait(10)
            return []
        self.inventory.list_entries.side_effect = slow_listing
        self.cache._enforce_caps_soon(notify.TRIGGER_REQUEST)
        self.assertTrue(listed.wait(10))
        # Two more additions while the first run lists: one more run.
        self.cache._enforce_caps_soon(notify.TRIGGER_REQUEST)
        self.cache._enforce_caps_soon(notify.TRIGGER_REQUEST)
        release.set()
        self.cache.wait_background()
        self.assertEqual(2, self.inventory.list_entries.call_count)
        self.cache._enforce_caps_soon(notify.TRIGGER_REQUEST)
        self.cache.wait_background()
        self.assertEqual(3, self.inventory.list_entries.call_count)

    def test_background_errors_are_logged(self):
        with self.assertLogs(upkeep.LOG.logger, 'WARNING') as logs:
            self.cache._in_background('test', mock.Mock(
                side_effect=RuntimeError('boom')))
            self.cache.wait_background()
        self.assertIn('background work (test)', logs.output[0])

    def test_periodic_never_raises_and_stops_when_disabled_and_empty(self):
        self.inventory.discover_folders.side_effect = vexc.VimException('x')
        self.cache._periodic()
        self.inventory.discover_folders.side_effect = None
        self.inventory.list_entries.return_value = []
        self.cache.policy = policy.CachePolicy(enabled=False)
        self.assertRaises(upkeep.loopingcall.LoopingCallDone,
                          self.cache._periodic)

    @mock.patch.object(upkeep.loopingcall, 'FixedIntervalLoopingCall')
    def test_start_once_with_initial_delay(self, loop_cls):
        self.inventory.list_entries.return_value = [entry()]
        self.cache.start()
        self.cache.start()
        loop_cls.assert_called_once_with(self.cache._periodic)
        loop_cls.return_value.start.assert_called_once_with(
            interval=600, initial_delay=60, stop_on_exception=False)
        self.assertEqual(3, self.cache.provisioned_gb())
        self.cache.stop()
        loop_cls.return_value.stop.assert_called_once_with()

    @mock.patch.object(upkeep.loopingcall, 'FixedIntervalLoopingCall')
    def test_disabled_and_empty_starts_no_loop(self, loop_cls):
        self.cache.policy = policy.CachePolicy(enabled=False)
        self.inventory.list_entries.return_value = []
        self.cache.start()
        loop_cls.assert_not_called()

    @mock.patch.object(upkeep.loopingcall, 'FixedIntervalLoopingCall')
    def test_disabled_with_leftover_templates_keeps_purging(self, loop_cls):
        self.cache.policy = policy.CachePolicy(enabled=False)
        self.inventory.list_entries.return_value = [entry()]
        self.cache.start()
        loop_cls.assert_called_once()
        self.assertEqual(3, self.cache.provisioned_gb())

    def test_purge_removes_templates_of_images_deleted_in_glance(self):
        gone, kept = entry(ref='vm-gone', image_id='gone'), entry()
        self.inventory.list_entries.return_value = [gone, kept]
        self.glance.deleted.return_value = {'gone'}
        self.assertEqual([gone], self.cache.purge())
        self.glance.deleted.assert_called_once_with({'gone', IMAGE})
        self.inventory.delete.assert_called_once_with('vm-gone')
        self.notifier.emit.assert_called_once_with(
            notify.PURGE, gone, reason='image deleted',
            trigger=notify.TRIGGER_COMMAND)

    def test_expiry_and_eviction_are_notified(self):
        self.cache.policy = policy.CachePolicy(enabled=True, max_count=1,
                                               age_seconds=10 ** 9)
        old = dataclasses.replace(entry(ref='vm-old', image_id='old'),
                                  last_used=datetime.datetime(2020, 1, 1))
        new = dataclasses.replace(entry(), last_used=datetime.datetime.now())
        self.inventory.list_entries.return_value = [old, new]
        self.cache.purge(trigger=notify.TRIGGER_PERIODIC)
        self.notifier.emit.assert_called_once_with(
            notify.EVICT, old, reason='over cap',
            trigger=notify.TRIGGER_PERIODIC)

    @mock.patch.object(upkeep.loopingcall, 'FixedIntervalLoopingCall')
    def test_start_says_once_when_caps_cannot_hold_the_warm_list(self, _loop):
        self.cache.policy = policy.CachePolicy(
            enabled=True, max_count=1, warm_images=('a', 'b'))
        self.inventory.list_entries.return_value = []
        with self.assertLogs(upkeep.LOG.logger, 'WARNING') as logs:
            self.cache.start()
            self.cache.purge()
        self.assertEqual(1, len(logs.output))
        self.assertIn('image_cache_warm_images lists 2 images',
                      logs.output[0])

    def test_plain_name_passes_to_another_copy_on_deletion(self):
        plain = entry()
        successor = entry(ref='vm-2', datastore='ds-2',
                          name=inventory.template_name(IMAGE))
        self.inventory.promote.return_value = successor
        self.inventory.list_entries.return_value = [plain]
        self.cache.purge(expired_only=False)
        self.inventory.promote.assert_called_once_with(plain)
        self.assertEqual([successor], self.cache.entries())

    def test_keyed_copy_deletion_renames_nothing(self):
        self.inventory.list_entries.return_value = [entry(
            name=inventory.template_name(IMAGE, 'abcdef12'))]
        self.cache.purge(expired_only=False)
        self.inventory.promote.assert_not_called()

    def test_stats_and_caps_count_only_served_datastores(self):
        self.cache.policy = policy.CachePolicy(enabled=True, max_count=1)
        served = entry(datastore='ds-1')
        elsewhere = entry(ref='vm-2', datastore='ds-9')
        self.inventory.list_entries.return_value = [served, elsewhere]
        self.assertEqual([], self.cache.purge())
        self.assertEqual(3, self.cache.provisioned_gb())
        self.assertEqual(2, len(self.cache.entries()))


class RetireProtocolTestCase(test_cache.CacheFixtures):
    """Deletions retire, wait, and never destroy what a clone reads."""

    def setUp(self):
        super().setUp()
        self.events = []
        self.inventory.retire.side_effect = self.record('retire',
                                                        test_cache.retired)
        self.inventory.delete.side_effect = self.record('delete')
        self.cache._sleep = self.record('sleep')
        self.inventory.promote.return_value = None  # no other copy

    def record(self, name, result=lambda *a: None):
        def call(*args):
            self.events.append((name,) + args)
            return result(*args)
        return call

    def test_retire_then_grace_then_destroy(self):
        victim = entry()
        self.assertEqual([victim], self.cache._delete(
            [(victim, upkeep.REASON_OPERATOR, None)]))
        gone = test_cache.retired(victim)
        self.assertEqual([('retire', victim),
                          ('sleep', self.policy.retire_grace_seconds),
                          ('delete', 'vm-1')], self.events)
        self.inventory.busy.assert_called_once_with(['vm-1'])
        # The notification tells the copy by the name it had.
        self.notifier.emit.assert_called_once_with(
            notify.PURGE, victim, reason='operator',
            trigger=notify.TRIGGER_REQUEST)
        self.assertNotEqual(gone.name, victim.name)

    def test_one_grace_for_many(self):
        victims = [entry(ref='vm-%d' % i, image_id='i%d' % i)
                   for i in range(3)]
        self.assertEqual(victims, self.cache._delete(
            [(v, upkeep.REASON_OPERATOR, None) for v in victims]))
        self.assertEqual(1, [e[0] for e in self.events].count('sleep'))

    def test_never_ready_entries_are_not_renamed_nor_waited_for(self):
        leftover = entry(ready=False, name=inventory.partial_name(
            IMAGE, 'abcdef01'))
        self.cache._delete([(leftover, upkeep.REASON_LEFTOVER, None)])
        self.assertEqual([('delete', 'vm-1')], self.events)

    def test_a_copy_a_clone_reads_is_waited_for(self):
        self.inventory.busy.side_effect = [{'vm-1'}, {'vm-1'}, set()]
        self.assertEqual([entry()], self.cache._delete(
            [(entry(), upkeep.REASON_OVER_CAP, None)], wait=30))
        self.assertEqual(['retire', 'sleep', 'sleep', 'sleep', 'delete'],
                         [e[0] for e in self.events])
        self.assertEqual(3, self.inventory.busy.call_count)

    def test_a_copy_still_read_after_the_wait_stays_retired(self):
        self.inventory.busy.return_value = {'vm-1'}
        with self.assertLogs(upkeep.LOG.logger, 'INFO') as logs:
            self.assertEqual([], self.cache._delete(
                [(entry(), upkeep.REASON_OVER_CAP, None)], wait=0))
        self.inventory.delete.assert_not_called()
        self.assertIn('stays retired', logs.output[-1])
        # Not ready: neither counted nor cloned; the next purge deletes it.
        self.assertEqual(0, self.cache.provisioned_gb())
        [kept] = self.cache.entries()
        self.assertFalse(kept.ready)

    def test_unknown_tasks_leave_it_retired(self):
        self.inventory.busy.side_effect = vexc.VimException('x')
        with self.assertLogs(upkeep.LOG.logger, 'WARNING'):
            self.assertEqual([], self.cache._delete(
                [(entry(), upkeep.REASON_OVER_CAP, None)]))
        self.inventory.delete.assert_not_called()

    def test_keep_if_is_checked_under_the_lock_before_retiring(self):
        def keep(candidate):
            self.assertTrue(self.lock.acquire.called)
            return True
        self.assertEqual([], self.cache._delete(
            [(entry(), upkeep.REASON_EXPIRED, keep)]))
        self.inventory.retire.assert_not_called()
        self.lock.release.assert_called_once_with()

    def test_retired_leftovers_go_at_the_next_purge(self):
        old = test_cache.retired(entry(), datetime.datetime(2020, 1, 1))
        self.inventory.list_entries.return_value = [old]
        self.assertEqual([old], self.cache.purge())
        self.assertEqual([('delete', 'vm-1')], self.events)
