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

"""Which failed clone drops its source copy (faults.template_broken)."""

import dataclasses

import ddt
from oslo_vmware import exceptions as vexc

from cinder_vmware_cache import faults
from tests import common
from tests.unit.test_cache import entry


@ddt.ddt
class TemplateBrokenTestCase(common.TestCase):

    @ddt.data(vexc.FileNotFoundException('disk gone'),
              vexc.VimFaultException([vexc.FILE_NOT_FOUND], 'disk gone'))
    def test_missing_files_break_the_template(self, exc):
        self.assertTrue(faults.template_broken(exc, entry()))

    @ddt.data(vexc.NoDiskSpaceException('datastore full'),
              vexc.FileFaultException('cannot write'),
              vexc.VimFaultException(['InvalidArgument'], 'bad spec'),
              vexc.ManagedObjectNotFoundException('host gone'),
              vexc.VimConnectionException('connection lost'),
              vexc.VimSessionOverLoadException('too many sessions'),
              RuntimeError('anything else'))
    def test_other_failures_keep_a_present_template(self, exc):
        self.assertFalse(faults.template_broken(exc, entry()))

    def test_a_vanished_template_is_broken(self):
        self.assertTrue(faults.template_broken(
            vexc.ManagedObjectNotFoundException('gone'), None))

    def test_a_template_no_longer_ready_is_broken(self):
        self.assertTrue(faults.template_broken(
            vexc.NoDiskSpaceException('full'),
            dataclasses.replace(entry(), ready=False)))
