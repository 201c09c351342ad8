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

"""A cinder-volume process killed (SIGKILL) in the middle of a fill.

The fill runs in a separate process (tests/reliability/worker.py) of the
same backend, using the same lock directory as this process. It is killed
at a known point: while its Glance stream is stalled mid-upload, or while
a delay rule holds one of its vCenter calls. This test's driver then plays
the restarted cinder-volume, with image_cache_leftover_grace_seconds = 0.

Expectation: the next request works; the leftover is never cloned and the
purge removes it.
"""

import ddt

from tests.reliability import harness
from tests.vcsim import base

STREAM = 'streamOptimized'


@ddt.ddt
class CrashDuringFillTestCase(harness.ReliabilityTestCase):

    overrides = dict(harness.ReliabilityTestCase.overrides,
                     image_cache_leftover_grace_seconds=0)

    def kill_during(self, image_id, rule=None, stall_after_chunks=None):
        """Start a fill in a worker; SIGKILL it once it is held.

        Held by ``rule`` (a delay rule is made of it), or by its Glance
        stream stalling after ``stall_after_chunks`` chunks.
        """
        if rule is not None:
            rule = base.fault_api('POST', dict(rule, action='delay',
                                               delay_ms=120000))
        worker = harness.Worker({
            'mode': 'create', 'backend': self.backend,
            'lock_url': harness.lock_backend_url(),
            'images': [{'id': image_id, 'path': self.image_paths[image_id],
                        'disk_type': STREAM, 'size': harness.IMAGE_BYTES}],
            'count': 1, 'metadata': harness.ASK,
            'stall_after_chunks': stall_after_chunks,
            'overrides': {'vmware_api_retry_count': 0}})
        self.addCleanup(worker.close)
        self.assertEqual('ready', worker.read_event()['event'])
        if rule is not None:
            harness.wait_for_rule(rule['id'])
        else:
            self.assertEqual('stalled', worker.read_event()['event'])
        worker.kill()
        if rule is not None:
            base.fault_api('DELETE', rule_id=rule['id'])
        return worker

    def check_restart(self, image_id, leftover_names):
        self.assertEqual(leftover_names,
                         sorted(e.name for e in self.entries()
                                if not e.ready))
        volume = self.request(image_id)
        self.assertEqual(1, self.downloads(image_id))
        self.assert_clones_from_ready_templates()
        self.cache.purge()
        self.assert_vcenter_state([volume], [image_id])
        self.assert_clean()

    def test_killed_during_disk_upload(self):
        image_id = self.add_image(disk_type=STREAM)
        self.kill_during(image_id, stall_after_chunks=4)
        # What the dead process left: its partial import.
        [leftover] = self.entries()
        self.assertIn('.partial-', leftover.name)
        self.check_restart(image_id, [leftover.name])

    def test_killed_after_import_before_publish(self):
        image_id = self.add_image(disk_type=STREAM)
        self.kill_during(image_id, {'method': 'HttpNfcLeaseComplete'})
        [leftover] = self.entries()
        self.assertIn('.partial-', leftover.name)
        self.check_restart(image_id, [leftover.name])

    @ddt.data('MarkAsTemplate', 'Rename_Task')
    def test_killed_during_publish(self, method):
        image_id = self.add_image(disk_type=STREAM)
        self.kill_during(image_id, {'method': method})
        # Marked (and maybe made a template), but the rename that publishes
        # it never ran: still under its partial name, not ready.
        [leftover] = self.entries()
        self.assertIn('.partial-', leftover.name)
        self.assertFalse(leftover.ready)
        self.check_restart(image_id, [leftover.name])
