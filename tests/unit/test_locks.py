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

"""Locks on a real tooz file coordinator, held by two processes.

The other process is a small tooz client (the same driver cinder-volume
uses with the default ``[coordination] backend_url``), so these tests see
what two cinder-volume processes on one host see.
"""

import subprocess
import sys
import textwrap
import threading
import time
from unittest import mock

from cinder import coordination
import fixtures
from oslo_config import cfg
import tenacity
import tooz
import tooz.locking

from cinder_vmware_cache import exceptions
from cinder_vmware_cache import locks
from tests import common

NAME = locks.lock_name('b1', 'img-1')

# Holds lock argv[2] (shared when argv[3] == "shared") on coordinator URL
# argv[1] until a line arrives on stdin; says "held" once it holds it.
HOLDER = textwrap.dedent('''
    import sys
    import warnings
    # tooz imports futurist, which imports eventlet, which warns.
    warnings.filterwarnings('ignore', message='(?s).*Eventlet is deprecated')
    from tooz import coordination
    coord = coordination.get_coordinator(sys.argv[1], b'holder')
    coord.start()
    lock = coord.get_lock(sys.argv[2].encode('ascii'))
    lock.acquire(shared=sys.argv[3] == 'shared')
    print('held', flush=True)
    sys.stdin.readline()
    lock.release()
    coord.stop()
''')


class NameTestCase(common.TestCase):

    def test_name_is_backend_scoped(self):
        self.assertEqual('image-cache-b1-img', locks.lock_name('b1', 'img'))


class FileCoordinatorTestCase(common.TestCase):

    def setUp(self):
        super().setUp()
        self.url = 'file://%s' % self.useFixture(fixtures.TempDir()).path
        cfg.CONF.set_override('backend_url', self.url, group='coordination')
        self.addCleanup(cfg.CONF.clear_override, 'backend_url',
                        group='coordination')
        self.coordinator = coordination.Coordinator(prefix='cvc-test-')
        self.coordinator.start()
        self.addCleanup(self.coordinator.stop)

    def hold_elsewhere(self, shared=False):
        """Hold NAME in another process until the test ends."""
        proc = subprocess.Popen(
            [sys.executable, '-c', HOLDER, self.url,
             'cvc-test-' + NAME, 'shared' if shared else 'exclusive'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(proc.wait, 30)
        self.addCleanup(proc.stdin.close)
        self.assertEqual('held\n', proc.stdout.readline())
        return proc

    def held(self, **kwargs):
        return locks.held(NAME, coordinator=self.coordinator, **kwargs)

    def test_exclusive_elsewhere_times_out_after_the_wait(self):
        self.hold_elsewhere()
        start = time.monotonic()
        self.assertRaises(exceptions.CacheWaitTimeout,
                          self.held(blocking=0.5).__enter__)
        self.assertGreaterEqual(time.monotonic() - start, 0.5)

    def test_not_blocking_returns_at_once(self):
        self.hold_elsewhere()
        start = time.monotonic()
        self.assertRaises(exceptions.CacheWaitTimeout,
                          self.held(blocking=False).__enter__)
        self.assertLess(time.monotonic() - start, 0.5)

    def test_shared_holders_in_one_process_do_not_wait(self):
        with self.held(blocking=False, shared=True):
            other = []

            def take_shared():
                with self.held(blocking=False, shared=True):
                    other.append('held')

            thread = threading.Thread(target=take_shared)
            thread.start()
            thread.join(10)
            self.assertEqual(['held'], other)

    def test_shared_is_exclusive_across_processes(self):
        # tooz's file driver shares a lock between the threads of one
        # process only; another process holds it as an fcntl lock.
        self.hold_elsewhere(shared=True)
        self.assertRaises(exceptions.CacheWaitTimeout,
                          self.held(blocking=False, shared=True).__enter__)

    def test_shared_elsewhere_keeps_exclusive_out(self):
        self.hold_elsewhere(shared=True)
        self.assertRaises(exceptions.CacheWaitTimeout,
                          self.held(blocking=False).__enter__)

    def test_blocking_waits_for_the_release(self):
        holder = self.hold_elsewhere()
        start = time.monotonic()

        def release_later():
            time.sleep(0.5)
            holder.stdin.write('go\n')
            holder.stdin.flush()

        thread = threading.Thread(target=release_later)
        thread.start()
        self.addCleanup(thread.join)
        with self.held():
            self.assertGreaterEqual(time.monotonic() - start, 0.5)

    def test_released_after_the_block(self):
        with self.held(blocking=False):
            pass
        self.hold_elsewhere()

    def test_released_when_the_block_raises(self):
        def body():
            with self.held(blocking=False):
                raise ValueError('body failed')
        self.assertRaises(ValueError, body)
        self.hold_elsewhere()


class SharedFallbackTestCase(common.TestCase):
    """Backends without shared locks (redis, etcd) lock exclusively."""

    def test_shared_falls_back_to_exclusive(self):
        lock = mock.create_autospec(tooz.locking.Lock, instance=True)
        lock.acquire.side_effect = [tooz.NotImplemented(), True]
        coordinator = mock.create_autospec(coordination.Coordinator,
                                           instance=True)
        coordinator.get_lock.return_value = lock
        with locks.held('n', blocking=5, shared=True,
                        coordinator=coordinator):
            lock.release.assert_not_called()
        coordinator.get_lock.assert_called_once_with('n')
        self.assertEqual([mock.call(blocking=5, shared=True),
                          mock.call(blocking=5)],
                         lock.acquire.call_args_list)
        lock.release.assert_called_once_with()


class BackendSemanticsTestCase(common.TestCase):
    """What tooz drivers other than file do at a timeout or release."""

    def held(self, lock, **kwargs):
        coordinator = mock.create_autospec(coordination.Coordinator,
                                           instance=True)
        coordinator.get_lock.return_value = lock
        return locks.held('n', coordinator=coordinator, **kwargs)

    def lock(self):
        return mock.create_autospec(tooz.locking.Lock, instance=True)

    def test_retry_error_is_a_timeout(self):
        # etcd3gw (and memcached, mysql, pgsql) end a timed wait so.
        lock = self.lock()
        lock.acquire.side_effect = tenacity.RetryError(None)
        self.assertRaises(exceptions.CacheWaitTimeout,
                          self.held(lock, blocking=3).__enter__)
        lock.acquire.assert_called_once_with(blocking=3, shared=False)
        lock.release.assert_not_called()

    def test_wait_is_passed_as_blocking_never_as_timeout(self):
        lock = self.lock()
        with self.held(lock, blocking=2.5):
            pass
        self.assertNotIn('timeout', lock.acquire.call_args.kwargs)
        self.assertEqual(2.5, lock.acquire.call_args.kwargs['blocking'])

    def test_release_error_is_logged_not_raised(self):
        lock = self.lock()
        lock.release.side_effect = tooz.ToozError('lease expired')
        with self.assertLogs(locks.LOG.logger, 'WARNING') as logs:
            with self.held(lock, blocking=1):
                pass
        self.assertIn('Could not release lock n (lease expired)',
                      logs.output[0])

    def test_body_error_wins_over_release_error(self):
        lock = self.lock()
        lock.release.side_effect = tooz.ToozError('lease expired')

        def body():
            with self.held(lock, blocking=1):
                raise ValueError('body failed')
        with self.assertLogs(locks.LOG.logger, 'WARNING'):
            self.assertRaises(ValueError, body)


class DeadlineTestCase(common.TestCase):

    def test_left_counts_down_to_zero(self):
        with mock.patch.object(locks.time, 'monotonic', return_value=100.0):
            deadline = locks.Deadline(30)
        with mock.patch.object(locks.time, 'monotonic', return_value=110.0):
            self.assertEqual(20.0, deadline.left())
        with mock.patch.object(locks.time, 'monotonic', return_value=131.0):
            self.assertEqual(0.0, deadline.left())
