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

"""Two cinder-volume processes of one backend (an active-active cluster).

Both processes (tests/reliability/worker.py) drive the same backend and
share a real tooz backend, started here on loopback on free ports with no
persistence: a redis-server, and an etcd (tooz's etcd3gw driver), both from
the Debian packages. Every test runs once per backend. The processes serve
the same image from one file and report their downloads; this process sums
them and inspects vCenter.
"""

from oslo_vmware import vim_util

from tests.reliability import harness
from tests.vcsim import base

PER_PROCESS = 10


class TwoProcessesTests(harness.LockServerTests):
    """The tests; a subclass per tooz backend names its lock server."""

    def worker(self, image_id):
        worker = harness.Worker({
            'mode': 'create', 'backend': self.backend,
            'lock_url': self.lock_server.url,
            'images': [{'id': image_id, 'path': self.image_paths[image_id],
                        'disk_type': 'preallocated',
                        'size': harness.IMAGE_BYTES}],
            'count': PER_PROCESS, 'metadata': harness.ASK,
            'wait_for_go': True,
            'overrides': {'vmware_api_retry_count': 0}})
        self.addCleanup(worker.close)
        return worker

    def test_20_concurrent_creates_split_across_two_processes(self):
        """Expect 20 volumes, 1 download in total, 1 template."""
        image_id = self.add_image()
        workers = [self.worker(image_id), self.worker(image_id)]
        for worker in workers:
            self.assertEqual('ready', worker.read_event()['event'],
                             worker.log_tail())
        # The first fill is slow, so both processes ask while it runs.
        base.fault_api('POST', {'method': 'CreateVM_Task', 'action': 'delay',
                                'delay_ms': 2500, 'count': 1})
        for worker in workers:
            worker.go()
        reports = [worker.read_event() for worker in workers]
        # The two processes did overlap in time.
        windows = [(min(r['started'] for r in report['volumes']),
                    max(r['finished'] for r in report['volumes']))
                   for report in reports]
        self.assertLess(max(w[0] for w in windows),
                        min(w[1] for w in windows))

        records = [r for report in reports for r in report['volumes']]
        for record in records:
            self.volumes.append(harness.WorkerVolume(record))
        self.assertEqual([], [r['error'] for r in records if r['error']])
        self.assertEqual(2 * PER_PROCESS, len({r['id'] for r in records}))
        downloads = sum(report['downloads'].get(image_id, 0)
                        for report in reports)
        self.assertEqual(1, downloads, reports)
        volumes = []
        for record in records:
            backing = vim_util.get_moref(record['backing'],
                                         'VirtualMachine')
            self.assertIsNotNone(record['backing'])
            volumes.append((harness.WorkerVolume(record), backing))
        self.assert_vcenter_state(volumes, [image_id])
        self.assert_clean()


class RedisTwoProcessesTestCase(TwoProcessesTests,
                                harness.ReliabilityTestCase):
    lock_server_class = harness.RedisServer


class EtcdTwoProcessesTestCase(TwoProcessesTests,
                               harness.ReliabilityTestCase):
    lock_server_class = harness.EtcdServer
