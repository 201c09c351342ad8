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

"""Datastore-local copies on a vCenter with two datastores.

Each test asks the stock selection where it would put a volume right now
(the simulator's free space moves with what the datastores hold) and puts
the copy on the other datastore, so that a placement blind to the copies
fails it.
"""

import dataclasses
from unittest import mock

from oslo_config import cfg
from oslo_vmware import vim_util

from cinder_vmware_cache import cache
from cinder_vmware_cache import inventory
from cinder_vmware_cache import notify
from cinder_vmware_cache.testing import vcenter
from cinder_vmware_cache import upkeep
from tests.vcsim import base

FIRST = 'LocalDS_0'
SECOND = 'LocalDS_1'


class CopiesTestCase(base.SimulatorTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        names = cls.datastore_names()
        if not {FIRST, SECOND} <= set(names.values()):
            raise AssertionError(
                'these tests need a vCenter with datastores %s and %s '
                '(the simulator: VCSIM_ARGS="-ds 2 -ds-type VMFS"); it has '
                '%s' % (FIRST, SECOND, sorted(names.values())))

    @classmethod
    def datastore_names(cls):
        session = cls.driver.session
        result = session.invoke_api(vim_util, 'get_objects', session.vim,
                                    'Datastore', 100)
        names = {}
        with vim_util.WithRetrieval(session.vim, result) as objects:
            for obj in objects:
                names[obj.obj.value] = vim_util.propset_dict(
                    obj.propSet)['name']
        return names

    def setUp(self):
        super().setUp()
        self.names = self.datastore_names()
        self.events = []
        self.cache._notifier = _Recorder(self.events)

    def set_policy(self, **changes):
        old = self.cache.policy
        self.cache.policy = dataclasses.replace(old, **changes)
        self.addCleanup(setattr, self.cache, 'policy', old)

    def copies(self, image_id):
        """{datastore name: [copy name]} of the ready copies of an image."""
        found = {}
        for entry in self.entries():
            if entry.image_id == image_id and entry.ready:
                found.setdefault(self.names[entry.datastore], []).append(
                    entry.name)
        return found

    def datastore_of(self, backing):
        return self.names[self.prop(backing, 'datastore')
                          .ManagedObjectReference[0].value]

    def stock_choice(self):
        """(the stock selection's datastore now, the other one)."""
        volume = vcenter.new_volume(self.ctx, 1)
        stock = self.cache._stock
        chosen = stock.place(volume, stock.candidates(volume)).summary.name
        return chosen, ({FIRST, SECOND} - {chosen}).pop()

    def warm_on(self, image_id, *datastores):
        return self.cache.warm(self.ctx, self.images, image_id,
                               datastores=list(datastores))

    def test_request_goes_to_the_datastore_holding_the_copy(self):
        image_id = self.add_image()
        _stock, other = self.stock_choice()
        [(entry, added)] = self.warm_on(image_id, other)
        self.assertEqual(cache.ADDED_FILLED, added)
        self.assertEqual(inventory.template_name(image_id), entry.name)
        self.assertEqual(other, self.stock_choice()[1])
        _volume, backing = self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual('hit', self.result)
        self.assertEqual(other, self.datastore_of(backing))
        self.assertEqual({other: [entry.name]}, self.copies(image_id))
        self.assertEqual(1, self.images.downloads[image_id])

    def test_stock_placement_seeds_a_copy_on_the_stock_choice(self):
        self.set_policy(placement='stock')
        image_id = self.add_image()
        _stock, other = self.stock_choice()
        [(first, _added)] = self.warm_on(image_id, other)
        stock = self.stock_choice()[0]
        self.assertNotEqual(other, stock)
        _volume, backing = self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual('hit', self.result)
        self.assertEqual(stock, self.datastore_of(backing))
        key = inventory.copy_key(
            [k for k, v in self.names.items() if v == stock][0],
            first.adapter_type)
        self.assertEqual('lsiLogic', first.adapter_type)
        self.assertEqual({other: [first.name],
                          stock: [inventory.template_name(image_id, key)]},
                         self.copies(image_id))
        self.assertEqual(1, self.images.downloads[image_id])
        [seed] = [e for e in self.events if e[0] == notify.SEED]
        self.assertEqual(first.name, seed[2]['source_template'])
        # The next request on that datastore reads the local copy.
        self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual(1, len([e for e in self.events
                                 if e[0] == notify.SEED]))

    def test_copy_bound_clones_across_datastores(self):
        self.set_policy(placement='stock', max_copies_per_image=1)
        image_id = self.add_image()
        _stock, other = self.stock_choice()
        self.warm_on(image_id, other)
        stock = self.stock_choice()[0]
        _volume, backing = self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual('hit', self.result)
        self.assertEqual(stock, self.datastore_of(backing))
        self.assertEqual([other], list(self.copies(image_id)))

    def test_warm_on_both_datastores_seeds_the_second(self):
        image_id = self.add_image()
        done = self.warm_on(image_id, SECOND, FIRST)
        self.assertEqual([cache.ADDED_FILLED, cache.ADDED_SEEDED],
                         [added for _entry, added in done])
        self.assertEqual({FIRST, SECOND}, set(self.copies(image_id)))
        self.assertEqual(1, self.images.downloads[image_id])
        self.assertEqual([None, None], [
            added for _entry, added in self.warm_on(image_id, SECOND, FIRST)])

    def test_warm_on_a_datastore_the_backend_cannot_use(self):
        image_id = self.add_image()
        self.assertRaises(cache.exceptions.DatastoreNotEligible,
                          self.warm_on, image_id, 'NoSuchDS')
        self.assertEqual({}, self.copies(image_id))

    def test_plain_name_passes_to_another_copy(self):
        image_id = self.add_image()
        done = self.warm_on(image_id, SECOND, FIRST)
        first, second = [entry for entry, _added in done]
        self.assertEqual([first], self.cache._delete(
            [(first, upkeep.REASON_OPERATOR, None)]))
        self.assertEqual({FIRST: [inventory.template_name(image_id)]},
                         self.copies(image_id))
        # And the renamed copy serves the previous release's lookup.
        session = self.driver.session
        found = session.invoke_api(
            session.vim, 'FindChild', session.vim.service_content.searchIndex,
            entity=vim_util.get_moref(second.folder, 'Folder'),
            name=inventory.template_name(image_id))
        self.assertEqual(second.ref.value, found.value)

    def test_volume_carries_no_cache_marker(self):
        image_id = self.add_image()
        self.warm_on(image_id, SECOND)
        _volume, backing = self.create(image_id, {'use_image_cache': 'true'})
        config = self.extra_config(backing)
        self.assertEqual('', config.get(inventory.MARKER_DATASTORE, ''))
        self.assertEqual('', config.get(inventory.MARKER_STATE, ''))


class RegexMoveTestCase(base.SimulatorTestCase):
    """A backend whose datastore regex moves to the other datastore."""

    overrides = {'vmware_datastore_regex': FIRST}

    def test_moved_backend_seeds_instead_of_downloading(self):
        image_id = self.add_image()
        self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual('filled', self.result)
        moved = self._restart_with_regex(SECOND)
        volume = vcenter.new_volume(self.ctx, 1, {'use_image_cache': 'true'})
        moved.clone_image(self.ctx, volume, None,
                          self.images.show(self.ctx, image_id), self.images)
        backing = moved.volumeops.get_backing(volume.name, volume.id)
        self.addCleanup(moved.volumeops.delete_backing, backing)
        self.assertEqual(
            SECOND, self.prop(self.prop(backing, 'datastore')
                              .ManagedObjectReference[0], 'name'))
        self.assertEqual(1, self.images.downloads[image_id])
        ready = [e for e in moved.image_cache.list_all() if e.ready]
        self.assertEqual(2, len(ready))
        self.assertEqual(2, len({e.datastore for e in ready}))
        # Each backend counts only the copy on the datastore it serves.
        self.assertEqual(1, len(moved.image_cache._counted()))
        self.cache.list_all()
        self.assertEqual(1, len(self.cache._counted()))

    def _restart_with_regex(self, regex):
        cfg.CONF.set_override('vmware_datastore_regex', regex,
                              group=self.backend)
        self.addCleanup(cfg.CONF.set_override, 'vmware_datastore_regex',
                        FIRST, group=self.backend)
        moved = vcenter.make_driver(self.backend, enable_image_cache=True)
        self.addCleanup(moved.image_cache.stop)
        return moved


class _Recorder(object):
    """A notifier that keeps the events (action, entry name, fields)."""

    def __init__(self, events):
        self.events = events

    def emit(self, action, entry, context=None, started=None, **fields):
        self.events.append((action, entry.name, fields))


class AdapterTypeTestCase(base.SimulatorTestCase):
    """Copies of one image for disks of different adapter types."""

    def controllers(self, backing):
        """The disk controllers of a backing (SCSI: Logic or SCSI)."""
        devices = self.prop(backing, 'config.hardware.device').VirtualDevice
        names = (type(d).__name__ for d in devices)
        return sorted(n for n in names if n.endswith('Controller') and
                      ('SCSI' in n or 'Logic' in n))

    def test_each_adapter_type_gets_its_own_copy(self):
        # Without the image property, the volume type (here: the backend's
        # default) decides the adapter type, as on the stock path.
        image_id = self.add_image(properties={'vmware_adaptertype': None})
        _volume, backing = self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual('filled', self.result)
        # A backend of the same name whose volumes get another controller.
        other = vcenter.make_driver(
            '%s-pv' % self.backend, enable_image_cache=True,
            volume_backend_name=self.backend,
            vmware_adapter_type='paraVirtual')
        self.addCleanup(other.image_cache.stop)
        volume = vcenter.new_volume(self.ctx, 1, {'use_image_cache': 'true'})
        update, _cloned = other.clone_image(
            self.ctx, volume, None, self.images.show(self.ctx, image_id),
            self.images)
        self.assertEqual('filled', update['metadata']['image_cache_result'])
        pv_backing = other.volumeops.get_backing(volume.name, volume.id)
        self.addCleanup(other.volumeops.delete_backing, pv_backing)
        self.assertEqual(2, self.images.downloads[image_id])
        self.assertEqual(['ParaVirtualSCSIController'],
                         self.controllers(pv_backing))
        self.assertEqual(['VirtualLsiLogicController'],
                         self.controllers(backing))
        ready = sorted((e.adapter_type, e.name) for e in self.entries()
                       if e.image_id == image_id and e.ready)
        self.assertEqual([('lsiLogic', inventory.template_name(image_id)),
                          ('paraVirtual', mock.ANY)], ready)
        # Each serves its own kind from now on.
        self.create(image_id, {'use_image_cache': 'true'})
        self.assertEqual('hit', self.result)
        self.assertEqual(2, self.images.downloads[image_id])
