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

"""vCenter slow or briefly unreachable while the periodic task runs.

Expectation: the periodic purge logs the failure and retries at the next
cycle; the stats keep reporting the last known size of the cache; no
exception escapes the loop.

The rules select the cache's own listing (its RetrievePropertiesEx walks
the cache folder with a traversal spec named folderChildren), so neither
the stock driver's calls (such as the datastore figures behind the stats)
nor the requests' lookups of one template are affected.
"""

import logging
import time
from unittest import mock

import eventlet
import fixtures
from oslo_service import loopingcall

from tests.reliability import harness
from tests.vcsim import base

LISTING = {'method': 'RetrievePropertiesEx',
           'body_contains': 'folderChildren'}
STATS_KEY = 'extra_provisioned_capacity_gb'


class PeriodicTaskOutageTestCase(harness.ReliabilityTestCase):

    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(
            name='cinder_vmware_cache', level=logging.INFO))

    def stats(self):
        return self.driver.get_volume_stats(refresh=True)[STATS_KEY]

    def fill(self, count):
        volumes = [self.request(self.add_image()) for _ in range(count)]
        self.cache.purge()
        self.assertEqual(count, self.stats())
        return volumes

    def test_listing_connection_drops_once(self):
        volumes = self.fill(2)
        self.set_policy(age_seconds=1)
        time.sleep(1.1)
        base.fault_api('POST', dict(LISTING, action='drop', count=1))
        self.assertIsNone(self.cache._periodic())
        self.assertIn('purge of backend %s failed' % self.backend,
                      self.log.output)
        # Nothing was deleted and the stats still count both templates.
        self.assertEqual(2, len(self.ready_templates()))
        self.assertEqual(2, len(self.cache.entries()))
        self.assertEqual(2, self.stats())
        # The next cycle works: both templates have expired by now.
        self.assertIsNone(self.cache._periodic())
        self.assertEqual([], self.entries())
        self.assertEqual(0, self.stats())
        self.assert_vcenter_state(volumes, [])
        self.assert_clean()

    def test_listing_fails_with_a_soap_fault(self):
        volumes = self.fill(1)
        base.fault_api('POST', dict(LISTING, action='fault',
                                    fault='SystemError', count=1))
        self.assertIsNone(self.cache._periodic())
        self.assertIn('purge of backend %s failed' % self.backend,
                      self.log.output)
        self.assertEqual(1, self.stats())
        self.assertIsNone(self.cache._periodic())
        self.assertEqual(1, self.stats())
        self.assert_vcenter_state(volumes, [t.image_id for t in
                                            self.ready_templates()])
        self.assert_clean()

    def test_slow_listing(self):
        volumes = self.fill(1)
        base.fault_api('POST', dict(LISTING, action='delay', delay_ms=1500))
        started = time.monotonic()
        self.assertIsNone(self.cache._periodic())
        self.assertGreater(time.monotonic() - started, 1.4)
        self.assertNotIn('failed', self.log.output)
        self.assertEqual(1, self.stats())
        # Requests do not list the cache: a hit is not slowed down.
        [template] = self.ready_templates()
        started = time.monotonic()
        volumes.append(self.request(template.image_id))
        self.assertLess(time.monotonic() - started, 1.4)
        base.fault_api('DELETE')
        self.assert_vcenter_state(volumes, [template.image_id])
        self.assert_clean()

    def test_running_loop_survives_an_outage(self):
        """The real loop, every second, through 3 s of dropped listings."""
        volumes = self.fill(1)
        raised = []
        real_periodic = self.cache._periodic

        def periodic():
            try:
                return real_periodic()
            except Exception as exc:
                if not isinstance(exc, loopingcall.LoopingCallDone):
                    raised.append(exc)
                raise
        self.cache.stop()
        self.set_policy(purge_interval=1, age_seconds=2)
        with mock.patch.object(self.cache, '_periodic', side_effect=periodic):
            self.cache.start()
        self.addCleanup(self.cache.stop)
        rule = base.fault_api('POST', dict(LISTING, action='drop'))
        eventlet.sleep(3.5)
        self.assertGreaterEqual(
            base.fault_api('GET', rule_id=rule['id'])['hits'], 2)
        self.assertIsNotNone(self.cache._loop)
        self.assertEqual(1, self.stats())
        self.assertEqual(1, len(self.cache.entries()))
        base.fault_api('DELETE', rule_id=rule['id'])
        # Back: the next cycles expire the idle template.
        deadline = time.monotonic() + 10
        while self.cache.entries() and time.monotonic() < deadline:
            eventlet.sleep(0.2)
        self.assertEqual([], self.cache.entries())
        self.assertEqual(0, self.stats())
        self.assertEqual([], raised, 'exceptions escaped _periodic')
        self.assertGreaterEqual(self.log.output.count(
            'purge of backend %s failed' % self.backend), 2)
        self.assert_vcenter_state(volumes, [])
        self.assert_clean()
