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

"""Copies on a vCenter with two datacenters (tools/with-two-datacenters.sh).

Three backends share one name, so one cache folder per datacenter, one set
of markers and one set of locks: one on each datacenter's cluster, and one
without a cluster, whose eligible datastores span both datacenters and
carry the same names in each.
"""

import uuid

from oslo_vmware import vim_util

from cinder_vmware_cache import exceptions
from cinder_vmware_cache.testing import disk_images
from cinder_vmware_cache.testing import images
from cinder_vmware_cache.testing import vcenter
from tests import common
from tests.vcsim import base

CLUSTERS = ('DC0_C0', 'DC1_C0')


class TwoDatacentersTestCase(common.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        vcenter.required_endpoint()
        cls.name = 'dc%s' % uuid.uuid4().hex[:6]
        cls.drivers = {}
        for group, clusters in (('a', [CLUSTERS[0]]), ('b', [CLUSTERS[1]]),
                                ('all', None)):
            overrides = {'volume_backend_name': cls.name}
            if clusters:
                overrides['vmware_cluster_name'] = clusters
            drv = vcenter.make_driver('%s-%s' % (cls.name, group),
                                      enable_image_cache=True, **overrides)
            cls.drivers[group] = drv
        cls.images = images.LocalImageService()
        cls.image_dir = images.scratch_dir()
        cls.ctx = vcenter.user_context('project-a')
        datacenters = cls.names('Datacenter')
        if len(datacenters) < 2:
            raise AssertionError(
                'these tests need a vCenter with two datacenters (the '
                'simulator: tools/with-two-datacenters.sh); it has %s'
                % sorted(datacenters.values()))

    @classmethod
    def tearDownClass(cls):
        for drv in cls.drivers.values():
            drv.image_cache.stop()
        cls.drivers['all'].image_cache.purge(expired_only=False)
        super().tearDownClass()

    @classmethod
    def names(cls, mo_type):
        session = cls.drivers['all'].session
        result = session.invoke_api(vim_util, 'get_objects', session.vim,
                                    mo_type, 100)
        with vim_util.WithRetrieval(session.vim, result) as objects:
            return {o.obj.value: vim_util.propset_dict(o.propSet)['name']
                    for o in objects}

    def create(self, group, image_id):
        drv = self.drivers[group]
        volume = vcenter.new_volume(self.ctx, 1, {'use_image_cache': 'true'})
        update, _cloned = drv.clone_image(
            self.ctx, volume, None, self.images.show(self.ctx, image_id),
            self.images)
        backing = drv.volumeops.get_backing(volume.name, volume.id)
        self.addCleanup(drv.volumeops.delete_backing, backing)
        return update['metadata']['image_cache_result'], backing

    def datacenter_of(self, ref):
        vops = self.drivers['all'].volumeops
        return self.names('Datacenter')[vops.get_dc(ref).value]

    def copies_by_datacenter(self, image_id):
        found = {}
        for entry in self.drivers['all'].image_cache.list_all():
            if entry.ready and entry.image_id == image_id:
                datastore = vim_util.get_moref(entry.datastore, 'Datastore')
                folder = vim_util.get_moref(entry.folder, 'Folder')
                # A copy lives in the cache folder of its own datacenter.
                self.assertEqual(self.datacenter_of(datastore),
                                 self.datacenter_of(folder))
                found.setdefault(self.datacenter_of(datastore), []).append(
                    entry)
        return found

    def test_no_clone_crosses_a_datacenter(self):
        image_id = self.images.add(
            disk_images.make_vmdk(self.image_dir, base.IMAGE_BYTES),
            virtual_size=base.IMAGE_BYTES)
        result, backing_a = self.create('a', image_id)
        self.assertEqual('filled', result)
        # The other datacenter has no copy: it fills its own, once.
        result, backing_b = self.create('b', image_id)
        self.assertEqual('filled', result)
        self.assertEqual(2, self.images.downloads[image_id])
        self.assertEqual(['DC0', 'DC1'], [
            self.datacenter_of(self.drivers['a'].volumeops.get_datastore(b))
            for b in (backing_a, backing_b)])
        copies = self.copies_by_datacenter(image_id)
        self.assertEqual({'DC0': 1, 'DC1': 1},
                         {dc: len(c) for dc, c in copies.items()})
        # Both datacenters have a copy: a backend on both never downloads,
        # and its volume lands next to a copy of its own datacenter.
        result, backing = self.create('all', image_id)
        self.assertEqual('hit', result)
        self.assertEqual(2, self.images.downloads[image_id])
        self.assertEqual(2, sum(len(c) for c in
                                self.copies_by_datacenter(image_id).values()))
        self.assertIn(self.datacenter_of(
            self.drivers['all'].volumeops.get_datastore(backing)), copies)

    def test_datastore_names_repeat_across_datacenters(self):
        image_id = self.images.add(
            disk_images.make_vmdk(self.image_dir, base.IMAGE_BYTES),
            virtual_size=base.IMAGE_BYTES)
        error = self.assertRaises(
            exceptions.DatastoreNotEligible,
            self.drivers['all'].image_cache.warm, self.ctx, self.images,
            image_id, datastores=['LocalDS_1'])
        self.assertIn('ambiguous', str(error))
        # A backend of one datacenter names its own datastore.
        [(entry, _added)] = self.drivers['b'].image_cache.warm(
            self.ctx, self.images, image_id, datastores=['LocalDS_1'])
        self.assertEqual('DC1', self.datacenter_of(
            vim_util.get_moref(entry.datastore, 'Datastore')))
