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

"""Reads shared for a while (snapshot.Snapshot)."""

import threading
from unittest import mock

from cinder_vmware_cache import snapshot
from tests import common


class SnapshotTestCase(common.TestCase):

    def setUp(self):
        super().setUp()
        self.now = 100.0
        self.snap = snapshot.Snapshot(ttl=10, clock=lambda: self.now)
        self.read = mock.Mock(side_effect=lambda: 'v%d' % (
            self.read.call_count))

    def test_read_once_while_fresh(self):
        self.assertEqual('v1', self.snap.get('k', self.read))
        self.now += 9.9
        self.assertEqual('v1', self.snap.get('k', self.read))
        self.assertEqual(1, self.read.call_count)

    def test_read_again_when_old(self):
        self.snap.get('k', self.read)
        self.now += 10
        self.assertEqual('v2', self.snap.get('k', self.read))

    def test_clear_forgets(self):
        self.snap.get('k', self.read)
        self.snap.clear()
        self.assertEqual('v2', self.snap.get('k', self.read))

    def test_keys_are_apart(self):
        self.snap.get('a', self.read)
        self.assertEqual('v2', self.snap.get('b', self.read))

    def test_memoize_keys_by_arguments(self):
        func = mock.Mock(side_effect=lambda ref: ref.upper(),
                         __name__='props')
        props = self.snap.memoize(func, key=lambda ref: ref.lower())
        self.assertEqual('H1', props('h1'))
        self.assertEqual('H1', props('H1'))
        self.assertEqual('H2', props('h2'))
        self.assertEqual(2, func.call_count)

    def test_a_failed_read_is_not_kept(self):
        self.read.side_effect = [RuntimeError('down'), 'v']
        self.assertRaises(RuntimeError, self.snap.get, 'k', self.read)
        self.assertEqual('v', self.snap.get('k', self.read))

    def test_concurrent_readers_wait_for_one_read(self):
        started, release = threading.Event(), threading.Event()

        def slow():
            started.set()
            release.wait(10)
            return 'value'
        read = mock.Mock(side_effect=slow)
        results = []
        threads = [threading.Thread(
            target=lambda: results.append(self.snap.get('k', read)))
            for _ in range(3)]
        threads[0].start()
        self.assertTrue(started.wait(10))
        for thread in threads[1:]:
            thread.start()
        release.set()
        for thread in threads:
            thread.join(10)
        self.assertEqual(['value'] * 3, results)
        self.assertEqual(1, read.call_count)
