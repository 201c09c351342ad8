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

"""Load: many concurrent requests in one cinder-volume process.

cinder-volume serves requests in greenthreads of one process; here each
request is one greenthread calling clone_image, as the manager does.
"""

import logging

import eventlet
import fixtures

from tests.reliability import harness
from tests.vcsim import base


class ConcurrentCreatesTestCase(harness.ReliabilityTestCase):

    def burst(self, image_ids, count):
        """``count`` concurrent requests, round robin over ``image_ids``."""
        pool = eventlet.GreenPool(count)
        results = list(pool.imap(
            lambda n: self.attempt(image_ids[n % len(image_ids)]),
            range(count)))
        failures = [repr(r) for r in results if isinstance(r, Exception)]
        self.assertEqual([], failures, 'requests that raised')
        return results

    def test_50_concurrent_creates_of_one_uncached_image(self):
        """Expect 50 volumes, 1 download, 1 template, no orphan."""
        image_id = self.add_image()
        results = self.burst([image_id], 50)

        self.assertEqual(50, len({b.value for _, b in results}))
        self.assertEqual(1, self.downloads(image_id))
        self.assert_vcenter_state(results, [image_id])
        self.assert_clones_from_ready_templates()
        # Every volume is a clone of the template (the fill's own clone is
        # the stock path's disk type conversion).
        self.assertEqual(50, len([c for c in self.clones
                                  if harness.is_cache_name(c[1])]))
        self.assert_clean()

    def test_50_creates_over_5_images_with_count_cap_3(self):
        """Expect every volume created; the cap holds after one purge run.

        That the cap holds right after the burst, without waiting for the
        periodic purge, is checked in CapsAfterBurstTestCase.
        """
        self.set_policy(max_count=3)
        image_ids = [self.add_image() for _ in range(5)]
        results = self.burst(image_ids, 50)

        self.assertEqual(50, len({b.value for _, b in results}))
        for volume, backing in results:
            self.assert_volume(volume, backing)
        self.assert_clones_from_ready_templates()
        for image_id in image_ids:
            self.assertGreaterEqual(self.downloads(image_id), 1)
        self.cache.purge()
        templates = self.ready_templates()
        self.assertLessEqual(len(templates), 3)
        self.assertLessEqual(len(self.cache.entries()), 3)
        self.assertLessEqual(self.driver.get_volume_stats(refresh=True)[
            'extra_provisioned_capacity_gb'], 3)
        self.assert_vcenter_state(results, [t.image_id for t in templates])
        self.assert_clean()


class CapsAfterBurstTestCase(harness.ReliabilityTestCase):
    """The caps hold as soon as a burst of requests is over.

    Regression test: the eviction after a fill used to skip every victim a
    concurrent clone held, leaving the cache over its cap until the next
    periodic purge; it now waits for those clones (bounded by
    image_cache_wait_timeout), in the background: the caps hold once it
    has finished, and no request waits for it.
    """

    def test_count_cap_holds_right_after_a_concurrent_burst(self):
        log = self.useFixture(fixtures.FakeLogger(
            name='cinder_vmware_cache', level=logging.DEBUG))
        self.set_policy(max_count=3)
        image_ids = [self.add_image() for _ in range(5)]
        # Clones take a little longer, as on a busy vCenter.
        base.fault_api('POST', {'method': 'CloneVM_Task', 'action': 'delay',
                                'delay_ms': 200})
        pool = eventlet.GreenPool(15)
        results = list(pool.imap(
            lambda n: self.attempt(image_ids[n % 5]), range(15)))
        self.assertEqual([], [r for r in results if isinstance(r, Exception)])
        # The requests never wait for the eviction: it runs after them.
        self.cache.wait_background()
        templates = self.ready_templates()
        skipped = log.output.count('is in use; not deleted now')
        self.assertLessEqual(len(templates), 3,
                             '%d templates right after the burst; %d '
                             'evictions were skipped as "in use"' %
                             (len(templates), skipped))
