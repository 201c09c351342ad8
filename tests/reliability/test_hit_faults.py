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

"""Faults while a volume is cloned from a cached template.

Expectation: the volume is still created (through the normal path). A
template shown broken (its files gone) is dropped, and the next request
rebuilds it (a new fill), after which requests hit again; a failure of the
clone's target (no space, an invalid spec, a generic file fault) keeps the
template, and the next request hits.
"""

import eventlet

from tests.reliability import harness
from tests.vcsim import base


class HitFaultsTestCase(harness.ReliabilityTestCase):

    def cached(self, image_id):
        """Fill the cache with the image; return the volume and template."""
        volume = self.request(image_id)
        [template] = self.ready_templates()
        return volume, template

    def check_kept_and_hit(self, image_id, template, volumes):
        """After the failed hit(s): kept, and the next request hits."""
        self.cache.wait_background()
        self.assertEqual([template.key],
                         [t.key for t in self.ready_templates()])
        downloads = self.downloads(image_id)
        volumes.append(self.request(image_id))
        self.assertEqual(downloads, self.downloads(image_id))
        self.assert_vcenter_state(volumes, [image_id])
        self.assert_clones_from_ready_templates()
        self.assert_clean()

    def check_dropped_and_rebuilt(self, image_id, template, volumes):
        """After the failed hit(s): dropped now, rebuilt by the next one."""
        self.cache.wait_background()
        self.assertEqual([], self.entries())
        self.assert_vcenter_state(volumes, [])
        downloads = self.downloads(image_id)
        volumes.append(self.request(image_id))
        volumes.append(self.request(image_id))
        self.assertEqual(downloads + 1, self.downloads(image_id))
        [rebuilt] = self.ready_templates()
        self.assertNotEqual(template.key, rebuilt.key)
        self.assert_vcenter_state(volumes, [image_id])
        self.assert_clones_from_ready_templates()
        self.assert_clean()

    def test_clone_call_fails(self):
        image_id = self.add_image()
        first, template = self.cached(image_id)
        base.fault_api('POST', {'method': 'CloneVM_Task', 'action': 'fault',
                                'fault': 'InvalidArgument', 'count': 1})
        second = self.request(image_id)
        # Served by the normal path: a second download.
        self.assertEqual(2, self.downloads(image_id))
        self.check_kept_and_hit(image_id, template, [first, second])

    def test_no_space_on_the_target_keeps_the_template(self):
        image_id = self.add_image()
        first, template = self.cached(image_id)
        base.fault_api('POST', {'method': 'CloneVM_Task',
                                'action': 'task_error', 'fault': 'NoDiskSpace',
                                'delay_ms': 300, 'count': 1})
        second = self.request(image_id)
        self.assertEqual(2, self.downloads(image_id))
        self.check_kept_and_hit(image_id, template, [first, second])

    def test_clone_fails_while_other_clones_read_the_template(self):
        """One of 5 concurrent clones fails: all 5 volumes are created."""
        image_id = self.add_image()
        first, template = self.cached(image_id)
        base.fault_api('POST', {'method': 'CloneVM_Task',
                                'action': 'task_error', 'fault': 'FileFault',
                                'delay_ms': 500, 'count': 1})
        base.fault_api('POST', {'method': 'CloneVM_Task', 'action': 'delay',
                                'delay_ms': 500})
        pool = eventlet.GreenPool(5)
        results = list(pool.imap(lambda _: self.attempt(image_id), range(5)))
        self.assertEqual([], [r for r in results
                              if isinstance(r, Exception)])
        # Four clones and one normal path.
        self.assertEqual(2, self.downloads(image_id))
        base.fault_api('DELETE')
        self.check_kept_and_hit(image_id, template, [first] + results)

    def test_template_files_vanished_from_the_datastore(self):
        """The template's disk is deleted behind the cache's back.

        vCenter refuses to clone a VM whose disk file is missing
        (FileNotFound). The simulator clones it anyway, giving an empty
        disk, so a rule makes the simulator answer as vCenter does for
        clones of that template only (not for its other calls).
        """
        image_id = self.add_image()
        first, template = self.cached(image_id)
        vmdk = self.vops.get_vmdk_path(template.ref)
        datacenter = self.vops.get_dc(self.vops.get_host(template.ref))
        for path in (vmdk, vmdk.replace('.vmdk', '-flat.vmdk')):
            self.vops.delete_file(path, datacenter)
        self.assertEqual([], [p for p in harness.datastore_files(
            self.session) if p.endswith(vmdk.rsplit('/', 1)[1])])
        base.fault_api('POST', {'method': 'CloneVM_Task',
                                'this': template.key, 'action': 'task_error',
                                'fault': 'FileNotFound'})
        second = self.request(image_id)
        self.assertEqual(2, self.downloads(image_id))
        self.check_dropped_and_rebuilt(image_id, template, [first, second])
