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


"""Cache lifecycle on a real vSphere API: caps, expiry, leftovers, stats."""

import dataclasses
import time
import uuid

import eventlet
from oslo_vmware import vim_util

from cinder_vmware_cache import inventory
from cinder_vmware_cache.testing import vcenter
from tests.vcsim import base

ASK = {'use_image_cache': 'true'}


class LifecycleTestCase(base.FaultsTestCase):

    def set_policy(self, **changes):
        old = self.cache.policy
        self.cache.policy = dataclasses.replace(old, **changes)
        self.addCleanup(setattr, self.cache, 'policy', old)

    def cached_ids(self):
        return sorted(e.image_id for e in self.entries() if e.ready)

    def test_count_cap_evicts_least_recently_used(self):
        self.set_policy(max_count=2)
        a, b, c = self.add_image(), self.add_image(), self.add_image()
        self.create(a, ASK)
        self.create(b, ASK)
        time.sleep(1.1)  # last use is kept to the second
        self.create(a, ASK)  # a is now used more recently than b
        self.create(c, ASK)
        self.cache.wait_background()  # the eviction runs after the request
        self.assertEqual(sorted([a, c]), self.cached_ids())

    def test_size_cap(self):
        # Each template here is 1 GiB (the image's size rounded up).
        self.set_policy(max_total_gb=1)
        a, b = self.add_image(), self.add_image()
        self.create(a, ASK)
        time.sleep(1.1)
        self.create(b, ASK)
        self.cache.wait_background()
        self.assertEqual([b], self.cached_ids())

    def test_purge_spares_template_while_clone_runs(self):
        """A purge retires the template a clone reads, deletes it after.

        The data-rate model makes the clone task last (a delay of the call
        would not: no task exists while the call waits). The purge finds
        the clone's task running once its grace is over, leaves the
        template retired, and the next purge deletes it.
        """
        image_id = self.add_image()
        self.create(image_id, ASK)
        [template] = self.entries()
        rates = {k: v for k, v in base.rates_api().items()
                 if k != 'counters'}
        self.addCleanup(base.rates_api, rates)
        # The image holds 1 MiB of data: a clone of about 3 s.
        base.rates_api(dict(rates, local_copy_mbps=0.33))
        clone = eventlet.spawn(self.create, image_id, ASK)
        inventory = self.cache.inventory
        with eventlet.Timeout(20):
            while not inventory.busy([template.ref]):
                eventlet.sleep(0.1)
        self.assertEqual([], self.cache.purge(expired_only=False))
        [retired] = self.entries()
        self.assertEqual((template.key, False),
                         (retired.key, retired.ready))
        volume, backing = clone.wait()
        self.assertEqual(volume.name, self.prop(backing, 'name'))
        self.assertEqual({}, inventory.busy([template.ref]) or {})
        self.assertEqual([template.key], [
            e.key for e in self.cache.purge(expired_only=False)])
        self.assertEqual([], self.entries())

    def test_a_vm_gone_meanwhile_is_not_busy(self):
        # Another purge (the periodic one, the command) deleted it first.
        image_id = self.add_image()
        self.create(image_id, ASK)
        [template] = self.entries()
        gone = vim_util.get_moref('vm-999999', 'VirtualMachine')
        self.assertEqual(set(), self.cache.inventory.busy([template.ref,
                                                           gone]))

    def test_periodic_purge_with_tiny_age_never_fails_clones(self):
        image_id = self.add_image()
        self.create(image_id, ASK)
        self.set_policy(age_seconds=1)
        pool = eventlet.GreenPool(5)
        results = []
        for _ in range(10):
            pool.spawn(lambda: results.append(self.create(image_id, ASK)))
            pool.spawn(self.cache.purge)
        pool.waitall()
        self.assertEqual(10, len(results))
        self.assertEqual(10, len({b.value for _, b in results}))

    def test_leftovers_are_removed(self):
        self.set_policy(leftover_grace_seconds=0)
        image_id = self.add_image()
        # What a crash leaves: a partial import, and a renamed VM that never
        # became a template.
        partial = self.make_vm(inventory.partial_name(image_id, 'abcdef01'))
        other = self.add_image()
        renamed = self.make_vm(inventory.template_name(other))
        names = sorted(e.name for e in self.entries())
        self.assertEqual(2, len(names))
        deleted = self.cache.purge()
        self.assertEqual(sorted([partial.value, renamed.value]),
                         sorted(e.key for e in deleted))
        self.assertEqual([], self.entries())

    def test_unready_template_is_replaced_on_request(self):
        image_id = self.add_image()
        self.make_vm(inventory.template_name(image_id))
        self.create(image_id, ASK)
        self.assertEqual([image_id], self.cached_ids())
        self.assertEqual(1, len(self.entries()))

    def make_vm(self, name):
        """A VM in this backend's cache folder, as a crash leaves one."""
        drv = self.driver
        volume = {'id': str(uuid.uuid4()), 'name': name, 'size': 1,
                  'project_id': inventory.project_name(self.backend),
                  'volume_type_id': None}
        return drv._create_backing(volume)

    def test_stats_round_trips_do_not_grow_with_the_cache(self):
        counts = {}
        for wanted in (0, 1, 6):
            while len(self.cache.entries()) < wanted:
                self.create(self.add_image(), ASK)
            with base.RequestCounter() as stats_calls:
                stats = self.driver.get_volume_stats(refresh=True)
            with base.RequestCounter() as listing_calls:
                self.cache.purge()
            counts[wanted] = (stats_calls.count, listing_calls.count)
            self.assertEqual(wanted, stats['extra_provisioned_capacity_gb'])
        # Stats never list the cache: their calls do not depend on it.
        self.assertEqual(1, len({c[0] for c in counts.values()}), counts)
        # The listing is constant; an empty folder costs one more call, the
        # SessionIsActive that oslo.vmware makes on an empty answer.
        self.assertEqual(counts[1], counts[6])
        self.assertEqual(counts[1][1] + 1, counts[0][1])


class DisabledCacheTestCase(base.SimulatorTestCase):

    def test_templates_are_counted_and_expired_after_disabling(self):
        image_id = self.add_image()
        self.create(image_id, ASK)
        self.cache.stop()
        disabled = vcenter.make_driver(self.backend,
                                       enable_image_cache=False,
                                       image_cache_age_seconds=1,
                                       image_cache_purge_interval=1)
        self.addCleanup(disabled._image_cache.stop)
        self.assertEqual(1, disabled.get_volume_stats(refresh=True)[
            'extra_provisioned_capacity_gb'])
        self.assertIsNotNone(disabled._image_cache._loop)
        # Not cached while disabled: the stock path runs.
        volume = vcenter.new_volume(self.ctx, 1, ASK)
        disabled.clone_image(self.ctx, volume, None,
                             self.images.show(self.ctx, image_id),
                             self.images)
        backing = disabled.volumeops.get_backing(volume.name, volume.id)
        self.addCleanup(disabled.volumeops.delete_backing, backing)
        self.assertEqual(2, self.images.downloads[image_id])
        deadline = time.monotonic() + 30
        while disabled._image_cache._loop and time.monotonic() < deadline:
            eventlet.sleep(0.5)
        self.assertIsNone(disabled._image_cache._loop)
        self.assertEqual([], self.entries())
        self.assertEqual(0, disabled.get_volume_stats(refresh=True)[
            'extra_provisioned_capacity_gb'])
