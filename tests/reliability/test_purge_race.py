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

"""The periodic purge racing clones of the template it wants to expire."""

import logging

import eventlet
import fixtures
from oslo_service import loopingcall

from tests.reliability import harness
from tests.vcsim import base


class PurgeVersusClonesTestCase(harness.ReliabilityTestCase):

    def test_purge_every_second_with_1s_age_while_20_clones_run(self):
        """Expect 0 failed volumes; the purge still deletes when it can."""
        log = self.useFixture(fixtures.FakeLogger(
            name='cinder_vmware_cache', level=logging.INFO))
        image_id = self.add_image()
        volumes = [self.request(image_id)]
        self.set_policy(age_seconds=1, purge_interval=1)
        runs = []

        def periodic():
            runs.append(1)
            self.cache._periodic()
        loop = loopingcall.FixedIntervalLoopingCall(periodic)
        loop.start(interval=1, initial_delay=0, stop_on_exception=False)
        self.addCleanup(loop.stop)
        # Slow clones, and pauses between some requests longer than the
        # age, so the purge both meets busy templates and expires idle ones.
        base.fault_api('POST', {'method': 'CloneVM_Task', 'action': 'delay',
                                'delay_ms': 300})

        def one(number):
            eventlet.sleep((number % 4) * 0.4 + (number // 10) * 1.5)
            return self.attempt(image_id)
        pool = eventlet.GreenPool(4)
        results = list(pool.imap(one, range(20)))
        loop.stop()
        loop.wait()

        self.assertEqual([], [r for r in results
                              if isinstance(r, Exception)])
        volumes.extend(results)
        self.assertEqual(21, len({b.value for _, b in volumes}))
        self.assertGreaterEqual(len(runs), 3)
        self.assert_clones_from_ready_templates()
        # The loop never failed, and it did delete the idle template.
        self.assertNotIn('purge of backend', log.output)
        self.assertIn('Deleted cache entry', log.output)
        templates = [t.image_id for t in self.ready_templates()]
        self.assertIn(templates, ([], [image_id]))
        self.assert_vcenter_state(volumes, templates)
        self.assert_clean()
