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


"""The cache against a real vSphere API (the simulator, or a vCenter).

The endpoint comes from the environment (see cinder_vmware_cache.testing.
vcenter); without one every test here is skipped and says why.
"""

import json
import os
import ssl
import time
import urllib.request
import uuid

from cinder import exception
from oslo_utils import units
from oslo_vmware import vim_util
import testtools

from cinder_vmware_cache import inventory
from cinder_vmware_cache.testing import images
from cinder_vmware_cache.testing import vcenter

IMAGE_BYTES = 3 * units.Mi


def faults_url():
    return 'https://%s:%s/vcsim/faults' % (
        os.environ['VCENTER_HOST'], os.environ.get('VCENTER_PORT'))


def fault_api(method, body=None):
    """Call the simulator's fault-injection API (see its NOTES.md)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(faults_url(), data=data, method=method,
                                 headers={'Content-Type': 'application/json'})
    ctx = ssl._create_unverified_context()
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.loads(resp.read() or b'null')


class SimulatorTestCase(testtools.TestCase):
    backend = None
    overrides = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not vcenter.endpoint():
            raise cls.skipException(
                'no vCenter: set VCENTER_HOST (tools/with-vcenter.sh starts '
                'the simulator and sets it)')
        cls.backend = 'sim%s' % uuid.uuid4().hex[:6]
        cls.driver = vcenter.make_driver(cls.backend, enable_image_cache=True,
                                         **cls.overrides)
        cls.cache = cls.driver._image_cache
        cls.images = images.LocalImageService()
        cls.image_dir = images.scratch_dir()
        cls.ctx = vcenter.user_context('project-a')

    @classmethod
    def tearDownClass(cls):
        if cls.backend:
            cls.cache.stop()
            cls.cache.purge(expired_only=False)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.vops = self.driver.volumeops
        self.addCleanup(self.cache.purge, expired_only=False)

    def add_image(self, **kw):
        path = images.make_vmdk(self.image_dir, IMAGE_BYTES)
        return self.images.add(path, virtual_size=IMAGE_BYTES, **kw)

    def create(self, image_id, metadata=None, size=1, ctx=None):
        ctx = ctx or self.ctx
        volume = vcenter.new_volume(ctx, size, metadata)
        result = self.driver.clone_image(ctx, volume, None,
                                         self.images.show(ctx, image_id),
                                         self.images)
        self.assertEqual((None, True), result)
        backing = self.vops.get_backing(volume.name, volume.id)
        self.assertIsNotNone(backing, 'volume has no backing')
        self.addCleanup(self.vops.delete_backing, backing)
        return volume, backing

    def prop(self, ref, name):
        return self.driver.session.invoke_api(
            vim_util, 'get_object_property', self.driver.session.vim, ref,
            name)

    def extra_config(self, ref):
        options = self.prop(ref, 'config.extraConfig')
        return {o.key: o.value for o in getattr(options, 'OptionValue', [])}

    def entries(self):
        inv = self.cache.inventory
        return inv.list_entries(inv.discover_folders())


class CreateFromImageTestCase(SimulatorTestCase):

    def test_without_flag_is_stock_path(self):
        image_id = self.add_image()
        volume, backing = self.create(image_id)
        self.assertEqual([], self.entries())
        self.assertEqual(1, self.images.downloads[image_id])
        self.assertEqual(volume.name, self.prop(backing, 'name'))

    def test_fill_then_hit(self):
        image_id = self.add_image()
        first, first_backing = self.create(image_id,
                                           {'use_image_cache': 'True'})
        second, second_backing = self.create(image_id,
                                             {'use_image_cache': 'yes'})
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


class FillFailureTestCase(SimulatorTestCase):

    def setUp(self):
        super().setUp()
        try:
            fault_api('DELETE')
        except OSError as exc:
            self.skipTest('fault injection needs the simulator: %s' % exc)
        self.addCleanup(fault_api, 'DELETE')

    def test_publish_failure_falls_back_and_leaves_no_orphan(self):
        fault_api('POST', {'method': 'MarkAsTemplate', 'action': 'fault',
                           'fault': 'InvalidState', 'count': 1})
        image_id = self.add_image()
        volume, backing = self.create(image_id, {'use_image_cache': 'true'})
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
        fault_api('POST', {'method': 'CloneVM_Task', 'action': 'task_error',
                           'fault': 'FileNotFound', 'count': 1})
        volume, backing = self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual(volume.name, self.prop(backing, 'name'))
        self.assertEqual([], self.entries())
        self.assertEqual(2, self.images.downloads[image_id])
