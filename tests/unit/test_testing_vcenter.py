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

"""The demo's, benchmark's and tests' coordinator: its own lock folder."""

import os
from unittest import mock

from cinder import coordination
import fixtures
from oslo_config import cfg

from cinder_vmware_cache.testing import vcenter
from tests import common


class CoordinationTestCase(common.TestCase):

    def setUp(self):
        super().setUp()
        self.coordinator = mock.create_autospec(coordination.Coordinator,
                                                instance=True)
        self.useFixture(fixtures.MockPatchObject(
            vcenter.coordination, 'COORDINATOR', self.coordinator))
        self.useFixture(fixtures.MockPatchObject(vcenter, '_lock_dir', None))
        self.addCleanup(cfg.CONF.clear_override, 'backend_url',
                        group='coordination')

    def test_removes_the_lock_folder_it_made(self):
        self.coordinator.started = False
        vcenter.start_coordination()
        self.coordinator.start.assert_called_once_with()
        url = cfg.CONF.coordination.backend_url
        self.assertTrue(url.startswith('file://'))
        lock_dir = url[len('file://'):]
        self.assertTrue(os.path.isdir(lock_dir))
        self.coordinator.started = True
        vcenter.stop_coordination()
        self.coordinator.stop.assert_called_once_with()
        self.assertFalse(os.path.exists(lock_dir))

    def test_keeps_a_lock_folder_the_configuration_named(self):
        configured = self.useFixture(fixtures.TempDir()).path
        cfg.CONF.set_override('backend_url', 'file://%s' % configured,
                              group='coordination')
        self.coordinator.started = True
        vcenter.start_coordination()
        self.coordinator.start.assert_not_called()
        vcenter.stop_coordination()
        self.coordinator.stop.assert_called_once_with()
        self.assertTrue(os.path.isdir(configured))
