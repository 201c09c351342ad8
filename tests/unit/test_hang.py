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

"""The bound on vCenter work that may hang (hang.bounded)."""

import time
from unittest import mock

import eventlet
import fixtures

from cinder_vmware_cache import exceptions
from cinder_vmware_cache import hang
from tests import common


class BoundedTestCase(common.TestCase):

    def setUp(self):
        super().setUp()
        self.interruptible = self.useFixture(fixtures.MockPatchObject(
            hang, 'interruptible', return_value=True)).mock
        self.useFixture(fixtures.MockPatchObject(hang, '_said', []))

    def test_a_hang_is_cut_short(self):
        started = time.monotonic()
        with self.assertRaises(exceptions.TaskHung) as caught:
            with hang.bounded(0.2, 'the fill of image x'):
                eventlet.sleep(10)
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn('the fill of image x did not end within 0.2 s',
                      str(caught.exception))

    def test_work_that_ends_in_time_is_untouched(self):
        with hang.bounded(5, 'work'):
            eventlet.sleep(0.01)
        # The timer is gone: a later wait is not cut short.
        eventlet.sleep(0.05)

    def test_no_bound_when_zero(self):
        with mock.patch.object(hang.eventlet, 'Timeout') as timeout:
            with hang.bounded(0, 'work'):
                pass
        timeout.assert_not_called()

    def test_another_timeout_passes_through(self):
        inner = eventlet.Timeout(0.05)
        try:
            with self.assertRaises(eventlet.Timeout) as caught:
                with hang.bounded(10, 'work'):
                    eventlet.sleep(5)
            self.assertIs(inner, caught.exception)
        finally:
            inner.cancel()

    def test_without_eventlet_said_once_and_not_applied(self):
        self.interruptible.return_value = False
        with self.assertLogs(hang.LOG.logger, 'WARNING') as logs:
            for _ in range(2):
                with hang.bounded(0.01, 'work'):
                    time.sleep(0.05)
        self.assertEqual(1, len(logs.output))
        self.assertIn('image_cache_task_timeout is not applied',
                      logs.output[0])
