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


import json
import time

from cinder import exception
from oslo_utils import units

from cinder_vmware_cache import cache
from cinder_vmware_cache import inventory
from cinder_vmware_cache.testing import vcenter
from tests.vcsim import base


class CreateFromImageTestCase(base.SimulatorTestCase):

    def test_without_flag_is_stock_path(self):
        image_id = self.add_image()
        volume, backing = self.create(image_id)
        self.assertIsNone(self.result)
        self.assertEqual([], self.entries())
        self.assertEqual(1, self.images.downloads[image_id])
        self.assertEqual(volume.name, self.prop(backing, 'name'))

    def test_template_disk_holds_the_image_data(self):
        # What the fill's "imported disk holds no data" check reads: the
        # extent's bytes, found through the datastore browser.
        image_id = self.add_image()
        self.create(image_id, {'use_image_cache': 'true'})
        [template] = self.entries()
        self.assertEqual(base.IMAGE_BYTES,
                         self.cache.inventory.disk_bytes(template.ref))

    def test_fill_then_hit(self):
        image_id = self.add_image()
        first, first_backing = self.create(image_id,
                                           {'use_image_cache': 'True'})
        self.assertEqual('filled', self.result)
        second, second_backing = self.create(image_id,
                                             {'use_image_cache': 'yes',
                                              'owner': 'team-a'})
        self.assertEqual('hit', self.result)
        # One import only: the second volume is a clone of the template.
        self.assertEqual(1, self.images.downloads[image_id])
        entries = self.entries()
        self.assertEqual(1, len(entries))
        template = entries[0]
        self.assertTrue(template.ready)
        self.assertEqual(image_id, template.image_id)
        self.assertIsNotNone(template.last_used)

        # The template: right folder, markers, no tenant data.
        path = self.driver.volumeops.get_inventory_path(template.ref)
        self.assertIn('/vm/OpenStack/Project (%s_image_cache)/Volumes/' %
                      self.backend, path)
        self.assertTrue(self.prop(template.ref, 'config.template'))
        markers = self.extra_config(template.ref)
        self.assertEqual(self.backend, markers[inventory.MARKER_BACKEND])
        self.assertEqual(image_id, markers[inventory.MARKER_IMAGE])
        self.assertEqual('ready', markers[inventory.MARKER_STATE])
        self.assertNotIn('cinder.volume.id', markers)
        for vol in (first, second):
            self.assertNotIn(vol.id, json.dumps(markers))

        # Each volume: its own name, uuid and id; no cache markers.
        self.assertNotEqual(first_backing.value, second_backing.value)
        for vol, backing in ((first, first_backing),
                             (second, second_backing)):
            self.assertEqual(vol.name, self.prop(backing, 'name'))
            self.assertEqual(vol.id, self.prop(backing,
                                               'config.instanceUuid'))
            config = self.extra_config(backing)
            self.assertEqual(vol.id, config['cinder.volume.id'])
            for key in inventory.MARKERS:
                self.assertNotIn(key, config)
            self.assertFalse(self.prop(backing, 'config.template'))
            self.assertEqual(
                units.Gi, self.driver.volumeops.get_disk_size(backing))

    def test_clone_grows_to_volume_size(self):
        image_id = self.add_image()
        self.create(image_id, {'use_image_cache': 'true'})
        volume, backing = self.create(image_id, {'use_image_cache': 'true'},
                                      size=3)
        self.assertEqual(3 * units.Gi,
                         self.driver.volumeops.get_disk_size(backing))

    def test_stats_count_the_cache(self):
        self.assertEqual(0, self.driver.get_volume_stats(True)[
            'extra_provisioned_capacity_gb'])
        for _ in range(2):
            self.create(self.add_image(), {'use_image_cache': 'true'})
        stats = self.driver.get_volume_stats(refresh=True)
        self.assertEqual(2, stats['extra_provisioned_capacity_gb'])

    def test_other_project_cannot_use_private_cached_image(self):
        image_id = self.add_image(owner='project-a', visibility='private')
        self.create(image_id, {'use_image_cache': 'true'})
        intruder = vcenter.user_context('project-b')
        volume = vcenter.new_volume(intruder, 1, {'use_image_cache': 'true'})
        # The manager fetched the metadata before; Glance now says no.
        meta = self.images.show(self.ctx, image_id)
        self.assertRaises(exception.ImageNotFound, self.driver.clone_image,
                          intruder, volume, None, meta, self.images)
        self.assertIsNone(self.vops.get_backing(volume.name, volume.id))

    def test_expiry_by_last_use(self):
        idle = self.add_image()
        used = self.add_image()
        self.create(idle, {'use_image_cache': 'true'})
        self.create(used, {'use_image_cache': 'true'})
        time.sleep(2.2)
        self.create(used, {'use_image_cache': 'true'})
        policy = self.cache.policy
        self.cache.policy = policy.__class__(enabled=True, age_seconds=2)
        self.addCleanup(setattr, self.cache, 'policy', policy)
        deleted = self.cache.purge()
        self.assertEqual([idle], [e.image_id for e in deleted])
        self.assertEqual([used], [e.image_id for e in self.entries()])


class FillFailureTestCase(base.FaultsTestCase):

    def test_publish_failure_falls_back_and_leaves_no_orphan(self):
        base.fault_api('POST', {'method': 'MarkAsTemplate',
                                'action': 'fault', 'fault': 'InvalidState',
                                'count': 1})
        image_id = self.add_image()
        volume, backing = self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual('not used: cache error', self.result)
        # Filled once (failed at publish), then the normal path downloaded.
        self.assertEqual(2, self.images.downloads[image_id])
        self.assertEqual(volume.name, self.prop(backing, 'name'))
        self.assertEqual([], self.entries())
        # The next request fills the cache normally.
        self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual([True], [e.ready for e in self.entries()])

    def test_clone_failure_drops_template(self):
        image_id = self.add_image()
        self.create(image_id, {'use_image_cache': 'true'})
        base.fault_api('POST', {'method': 'CloneVM_Task',
                                'action': 'task_error',
                                'fault': 'FileNotFound', 'count': 1})
        volume, backing = self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual(volume.name, self.prop(backing, 'name'))
        self.cache.wait_background()  # the drop waits for other clones
        self.assertEqual([], self.entries())
        self.assertEqual(2, self.images.downloads[image_id])

    def test_target_side_clone_failure_keeps_template(self):
        image_id = self.add_image()
        self.create(image_id, {'use_image_cache': 'true'})
        [template] = self.entries()
        base.fault_api('POST', {'method': 'CloneVM_Task',
                                'action': 'task_error',
                                'fault': 'NoDiskSpace', 'count': 1})
        volume, backing = self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual(volume.name, self.prop(backing, 'name'))
        self.assertEqual('not used: cache error', self.result)
        self.cache.wait_background()
        self.assertEqual([template.key], [e.key for e in self.entries()])
        self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual('hit', self.result)
        self.assertEqual(2, self.images.downloads[image_id])


class TooLargeTestCase(base.SimulatorTestCase):

    overrides = {'image_cache_max_size_gb': 0}

    def test_too_large_says_why(self):
        image_id = self.add_image()
        self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual('not used: image too large', self.result)
        self.assertEqual([], self.entries())
        self.assertEqual(1, self.images.downloads[image_id])


class UserSeesTheCacheTestCase(base.SimulatorTestCase):
    """What image_cache_result says, and warming, on the vCenter."""

    def test_not_a_boolean_says_why(self):
        self.create(self.add_image(), {'use_image_cache': 'sure'})
        self.assertEqual('not used: invalid use_image_cache value',
                         self.result)

    def test_warm_then_create_is_a_hit_without_download(self):
        image_id = self.add_image()
        [(entry, added)] = self.cache.warm(self.ctx, self.images, image_id)
        self.assertEqual(cache.ADDED_FILLED, added)
        self.assertEqual(1, self.images.downloads[image_id])
        self.assertEqual([entry.ref.value],
                         [e.ref.value for e in self.entries() if e.ready])
        self.assertEqual(entry.datastore, self.entries()[0].datastore)
        [(again, added)] = self.cache.warm(self.ctx, self.images, image_id)
        self.assertIsNone(added)
        self.assertEqual(entry.ref.value, again.ref.value)
        self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual('hit', self.result)
        self.assertEqual(1, self.images.downloads[image_id])
