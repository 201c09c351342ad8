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

"""Work that hangs is abandoned after image_cache_task_timeout.

Expectation: the request falls back to the normal path within the bound
(plus the normal path's own time), its volume is created, nothing the
abandoned work made is left as a ready copy or a stray VM, and the cache
works afterwards.
"""

import time

import eventlet

from tests.reliability import harness
from tests.reliability import test_fill_faults
from tests.vcsim import base

BOUND = 3


class HangsTestCase(harness.ReliabilityTestCase):

    def setUp(self):
        super().setUp()
        self.set_policy(task_timeout=BOUND)

    def timed_request(self, image_id):
        started = time.monotonic()
        volume = self.request(image_id)
        return volume, time.monotonic() - started

    def test_a_stalled_fill_is_abandoned(self):
        """The upload's answer never comes; the request does not wait.

        As in test_fill_faults: a stream that breaks stalls a flat upload
        until vCenter's idle timeout, which the simulator never has.
        """
        uploads = test_fill_faults.record_uploads(self)
        self.addCleanup(test_fill_faults.close_uploads, uploads)
        image_id = self.add_image(disk_type='preallocated')
        self.images.break_after = 3
        first, took = self.timed_request(image_id)
        self.assertTrue(uploads, 'no upload was made')
        self.assertLess(took, BOUND + 30)
        self.assert_volume(*first)
        self.assertEqual('not used: task timeout',
                         self.results[first[0].id])
        self.assertEqual([], self.ready_templates())
        # vCenter ends the stalled upload (its idle timeout); the stock
        # import, whose clean-up ran when it was abandoned, has removed its
        # temporary VM. When it had put the upload in its temporary folder
        # (a datastore apart from the fill's), the simulator then writes
        # the partial disk file there: the one thing that may be left.
        test_fill_faults.close_uploads(uploads)
        eventlet.sleep(1)
        temporary = '/%s/' % harness.STOCK_TEMP_FOLDER
        partial = [p for p in self.new_files() if temporary in p]
        self.assertLessEqual(len(partial), 1, partial)
        for path in partial:
            self.assertTrue(path.endswith('-flat.vmdk'), path)
            self.vops.delete_file(path, self.vops.get_dc(
                self.vops.get_host(first[1])))
        self.set_policy(leftover_grace_seconds=0)
        self.cache.purge()
        volumes = [first, self.request(image_id), self.request(image_id)]
        self.assert_vcenter_state(volumes, [image_id])
        self.assert_clean()

    def new_files(self):
        files = harness.datastore_files(self.session)
        return sorted(set(files) - set(self.files_before))

    def test_a_hung_clone_is_abandoned_and_what_it_made_removed(self):
        """The data-rate model holds the clone task for 12 s.

        The simulator has no CancelTask: the clone is awaited, and the VM
        it made under the volume's name deleted before the normal path
        creates the volume's own.
        """
        image_id = self.add_image()
        volumes = [self.request(image_id)]
        [template] = self.ready_templates()
        rates = {k: v for k, v in base.rates_api().items()
                 if k != 'counters'}
        self.addCleanup(base.rates_api, rates)
        # The image holds 1 MiB of data.
        base.rates_api(dict(rates, local_copy_mbps=1 / 12.0,
                            xds_copy_mbps=1 / 12.0))
        volume, took = self.timed_request(image_id)
        base.rates_api(rates)
        volumes.append(volume)
        self.assertLess(took, BOUND + 60)
        self.assertEqual('not used: task timeout', self.results[volume[0].id])
        self.assert_volume(*volume)
        # Kept: a hung clone says nothing against the template.
        self.assertEqual([template.key],
                         [t.key for t in self.ready_templates()])
        volumes.append(self.request(image_id))
        self.assert_vcenter_state(volumes, [image_id])
        self.assert_clones_from_ready_templates()
        self.assert_clean()
