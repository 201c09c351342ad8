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

"""Faults and a crash while a copy is seeded on another datastore.

A request whose datastore holds no copy of the image gets one seeded there
from a copy on another datastore of the datacenter: CloneVM_Task under the
partial name ``image-<id>.ds-<key>.partial-<token>``, MarkAsTemplate,
Rename_Task to ``image-<id>.ds-<key>`` (which publishes it), SetField (last
use).

The backend under test serves TARGET only (``vmware_datastore_regex``). The
copy it seeds from is put on SOURCE by a second driver of the same backend
that serves SOURCE only, as after a change of the backend's datastores
(RegexMoveTestCase in tests/vcsim). So every request of the backend lands on
TARGET and seeds there, whatever the simulator's free-space figures say at
that moment (they drift with every clone and delete, and the stock
selection ranks the datastores by them).

Expectation for every fault: the volume is still created (by the normal
path after a failed seed); no copy on TARGET is published or ever cloned
half-built; the source copy is kept and stays ready; one purge run
(``leftover_grace_seconds = 0``) removes what the failed seed left; the
next request seeds a copy normally, without a download, and the one after
it clones that copy.

Fault rules name the seed's own calls (the partial ``.ds-`` name in the
clone's body, the final ``.ds-`` name in the rename's) where the call
carries a name, and otherwise rely on ``count`` and on being the first such
call of the request.
"""

import ddt
import eventlet
from oslo_config import cfg
from oslo_vmware import vim_util

from cinder_vmware_cache import cache
from cinder_vmware_cache import inventory
from cinder_vmware_cache import request as cache_request
from cinder_vmware_cache.testing import vcenter
from tests.reliability import harness
from tests.vcsim import base

SOURCE = 'LocalDS_0'
TARGET = 'LocalDS_1'
STREAM = 'streamOptimized'
# Placeholders of fault rules, filled in per test (see SeedTestCase.names).
PARTIAL = '{partial}'
FINAL = '{final}'
# A property read of a task: what oslo.vmware's wait_for_task polls with.
TASK_READ = 'type="Task"'


def regex(name):
    return '^%s$' % name


class SeedTestCase(harness.ReliabilityTestCase):
    """A backend on TARGET whose image has a ready copy on SOURCE only."""

    overrides = dict(harness.ReliabilityTestCase.overrides,
                     vmware_datastore_regex=regex(TARGET))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.datastores = datastore_refs(cls.driver.session)
        if not {SOURCE, TARGET} <= set(cls.datastores):
            raise AssertionError(
                'these tests need a vCenter with datastores %s and %s '
                '(the simulator: VCSIM_ARGS="-ds 2 -ds-type VMFS"); it has '
                '%s' % (SOURCE, TARGET, sorted(cls.datastores)))
        # The stock driver compiles the regex in do_setup: each driver keeps
        # the one it was set up with.
        cls.source_driver = vcenter.make_driver(
            cls.backend, enable_image_cache=True,
            vmware_datastore_regex=regex(SOURCE), vmware_api_retry_count=0)
        cls.source_driver.image_cache.stop()
        cfg.CONF.set_override('vmware_datastore_regex', regex(TARGET),
                              group=cls.backend)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            source_driver = getattr(cls, 'source_driver', None)
            if source_driver is not None:
                try:
                    source_driver.session.logout()
                except Exception:
                    pass

    def setUp(self):
        super().setUp()
        self.image_id = self.add_image(disk_type=STREAM)
        [(self.source, added)] = self.source_driver.image_cache.warm(
            self.ctx, self.images, self.image_id)
        self.assertEqual(cache.ADDED_FILLED, added)
        self.assertEqual(self.datastores[SOURCE], self.source.datastore)
        self.key = inventory.copy_key(self.datastores[TARGET],
                                      self.source.adapter_type)
        self.final = inventory.template_name(self.image_id, self.key)
        self.partial = self.final + '.partial-'

    def names(self, rule):
        """A fault rule with the seed's names put in its placeholders."""
        return {k: v.format(partial=self.partial, final=self.final + '<')
                if isinstance(v, str) else v for k, v in rule.items()}

    def fault(self, **rule):
        rule.setdefault('count', 1)
        return base.fault_api('POST', self.names(rule))

    # ---- requests ----
    def create(self, image_id):
        """request(), also returning the volume's image_cache_result."""
        volume = vcenter.new_volume(self.ctx, 1, harness.ASK)
        self.volumes.append(volume)
        model_update, cloned = self.driver.clone_image(
            self.ctx, volume, None, self.images.show(self.ctx, image_id),
            self.images)
        self.assertTrue(cloned)
        backing = self.vops.get_backing(volume.name, volume.id)
        self.assertIsNotNone(backing, 'volume %s has no backing' % volume.id)
        self.assert_volume(volume, backing)
        self.assertEqual(self.datastores[TARGET], self.datastore_of(backing))
        return (volume, backing), (model_update or {}).get(
            'metadata', {}).get(cache_request.RESULT_KEY)

    # ---- vCenter state ----
    def datastore_of(self, ref):
        return self.prop(ref, 'datastore').ManagedObjectReference[0].value

    def leftovers(self):
        """{name: is_template} of the image's cache VMs that are not ready."""
        vms = harness.vm_inventory(self.session)
        return {e.name: vms[e.key][1] for e in self.entries()
                if e.image_id == self.image_id and not e.ready}

    def assert_source_kept(self):
        found = [e for e in self.entries() if e.key == self.source.key]
        self.assertEqual(1, len(found), 'the source copy is gone')
        source = found[0]
        self.assertTrue(source.ready)
        self.assertEqual(inventory.template_name(self.image_id), source.name)
        self.assertEqual(self.datastores[SOURCE], source.datastore)
        self.assertTrue(self.prop(source.ref, 'config.template'))

    def assert_nothing_published_on_target(self):
        """No copy on TARGET is ready, and none carries the final name."""
        self.assertEqual([], [e.name for e in self.entries()
                              if e.datastore == self.datastores[TARGET] and
                              e.ready])
        self.assertEqual([], [ref for ref, (name, _t) in harness.vm_inventory(
            self.session).items() if name == self.final])

    def assert_clones_from_published_copies(self):
        """No clone read a cache VM that was not a published template.

        The harness's check knows the plain name only; copies seeded here
        carry ``.ds-<key>``.
        """
        bad = [(dst, src) for dst, src, template in self.clones
               if harness.is_cache_name(src) and
               (not template or '.partial-' in src)]
        self.assertEqual([], bad, 'clones from unfinished cache VMs')

    def seeds(self):
        """Sources of the seed clones this driver started, in order."""
        return [src for dst, src, _t in self.clones
                if dst.startswith(self.partial)]

    def assert_copies(self, volumes, seeded=None):
        """vCenter holds the volumes and the image's ready copies only.

        The copies: the source, and ``seeded`` (on TARGET) when given.
        """
        ready = {e.key: e for e in self.entries() if e.ready}
        self.assertEqual({}, self.leftovers())
        expected = {self.source.key: inventory.template_name(self.image_id)}
        if seeded is not None:
            expected[seeded.key] = self.final
        self.assertEqual(expected, {k: e.name for k, e in ready.items()})
        if seeded is not None:
            self.assert_seeded_copy(ready[seeded.key])
        volumes = {b.value: v.name for v, b in volumes}
        self.assertEqual(dict(volumes, **expected), {
            ref: name for ref, (name, _t) in self.new_vms().items()})

    def assert_seeded_copy(self, entry):
        """A ready copy on TARGET: template, markers, folder, last use."""
        self.assertTrue(self.prop(entry.ref, 'config.template'))
        self.assertEqual(self.datastores[TARGET], entry.datastore)
        self.assertEqual(self.datastores[TARGET],
                         self.datastore_of(entry.ref))
        self.assertEqual(self.source.folder, entry.folder)
        markers = self.extra_config(entry.ref)
        self.assertEqual(self.backend, markers[inventory.MARKER_BACKEND])
        self.assertEqual(self.image_id, markers[inventory.MARKER_IMAGE])
        self.assertEqual(inventory.STATE_READY,
                         markers[inventory.MARKER_STATE])
        self.assertEqual(self.datastores[TARGET],
                         markers[inventory.MARKER_DATASTORE])
        self.assertEqual(str(self.source.size_bytes),
                         markers[inventory.MARKER_SIZE])
        # The seed clears it in the clone's spec; vCenter removes a key
        # set to '', the simulator keeps it, empty.
        self.assertEqual('', markers.get(inventory.VOLUME_ID_KEY, ''))
        self.assertIsNotNone(entry.last_used)

    def check_purge_and_seed(self, volumes, leftovers, downloads):
        """The checks every scenario ends with, once the seed failed.

        ``leftovers``: {name: is_template} of what it left (names with their
        token cut off); ``volumes``: the volumes created so far;
        ``downloads``: of the image so far.
        """
        leftovers = {name.format(partial=self.partial): template
                     for name, template in leftovers.items()}
        self.assertEqual(leftovers, {self.untokened(n): t for n, t in
                                     self.leftovers().items()})
        self.assert_nothing_published_on_target()
        self.assert_source_kept()
        self.assert_clones_from_published_copies()
        # One purge run removes whatever the failed seed left.
        self.set_policy(leftover_grace_seconds=0)
        deleted = self.cache.purge()
        self.assertEqual(sorted(leftovers),
                         sorted(self.untokened(e.name) for e in deleted))
        self.assert_copies(volumes)
        # The cache works again: a seed (no download), then a local hit.
        seeds = len(self.seeds())
        volume, result = self.create(self.image_id)
        volumes.append(volume)
        self.assertEqual(cache_request.RESULT_HIT, result)
        self.assertEqual(seeds + 1, len(self.seeds()))
        self.assertEqual(inventory.template_name(self.image_id),
                         self.seeds()[-1])
        [seeded] = [e for e in self.entries()
                    if e.datastore == self.datastores[TARGET]]
        # The volume is a clone of the new copy.
        self.assertEqual((volume[0].name, self.final, True), self.clones[-1])
        volume, result = self.create(self.image_id)
        volumes.append(volume)
        self.assertEqual(cache_request.RESULT_HIT, result)
        self.assertEqual(seeds + 1, len(self.seeds()))
        self.assertEqual((self.final, True), self.clones[-1][1:])
        self.assertEqual(downloads, self.downloads(self.image_id))
        self.assert_copies(volumes, seeded)
        self.assert_clones_from_published_copies()
        self.assert_clean()

    def untokened(self, name):
        """A partial name without its random token."""
        if name.startswith(self.partial):
            return self.partial
        return name


@ddt.ddt
class SeedFaultsTestCase(SeedTestCase):

    # (the fault the seed meets, what the failed seed leaves:
    #  {name: is_template}; PARTIAL stands for the partial name)
    @ddt.unpack
    @ddt.data(
        # CloneVM_Task of the seed answers a SOAP fault: no clone is made.
        ({'method': 'CloneVM_Task', 'body_contains': PARTIAL,
          'action': 'fault', 'fault': 'InvalidArgument'}, {}),
        # The seed's clone task ends in error (the clone is not made).
        ({'method': 'CloneVM_Task', 'body_contains': PARTIAL,
          'action': 'task_error', 'fault': 'NoDiskSpace', 'delay_ms': 300},
         {}),
        # The connection drops on the seed's CloneVM_Task call.
        ({'method': 'CloneVM_Task', 'body_contains': PARTIAL,
          'action': 'drop'}, {}),
        # The connection drops while the seed waits for its clone task: the
        # clone is made, the seed never learns its reference (its first
        # task read is the first of the request).
        ({'method': 'RetrievePropertiesEx', 'body_contains': TASK_READ,
          'action': 'drop'}, {PARTIAL: False}),
        # MarkAsTemplate fails: the seed removes its clone.
        ({'method': 'MarkAsTemplate', 'action': 'fault',
          'fault': 'InvalidState'}, {}),
        # The rename (publish) answers a SOAP fault, ends in error, or its
        # connection drops: the seed removes its template.
        ({'method': 'Rename_Task', 'body_contains': FINAL,
          'action': 'fault', 'fault': 'InvalidArgument'}, {}),
        ({'method': 'Rename_Task', 'body_contains': FINAL,
          'action': 'task_error', 'fault': 'DuplicateName',
          'delay_ms': 200}, {}),
        ({'method': 'Rename_Task', 'body_contains': FINAL,
          'action': 'drop'}, {}),
    )
    def test_seed_fault_falls_back(self, rule, leftovers):
        rule = self.fault(**rule)
        first, result = self.create(self.image_id)
        self.assertEqual(1, base.fault_api('GET', rule_id=rule['id'])['hits'])
        self.assertEqual(cache_request.not_used('cache error'), result)
        # Served by the normal path: a second download.
        self.assertEqual(2, self.downloads(self.image_id))
        self.assertEqual([inventory.template_name(self.image_id)],
                         self.seeds())
        self.check_purge_and_seed([first], leftovers, downloads=2)

    def test_rename_fails_and_the_cleanup_fails_too(self):
        """The failed seed cannot remove its template; the purge does."""
        self.fault(method='Rename_Task', body_contains=FINAL,
                   action='task_error', fault='DuplicateName')
        self.fault(method='Destroy_Task', action='fault',
                   fault='TaskInProgress')
        first, result = self.create(self.image_id)
        self.assertEqual(cache_request.not_used('cache error'), result)
        self.assertEqual(2, self.downloads(self.image_id))
        # A template with the ready markers, under its partial name.
        [leftover] = self.leftovers()
        self.assertEqual(
            inventory.STATE_READY,
            self.extra_config(self.entry_named(leftover).ref)[
                inventory.MARKER_STATE])
        self.check_purge_and_seed([first], {self.partial: True},
                                  downloads=2)

    def test_last_use_fails_after_publishing_while_another_clones(self):
        """The seed's SetField fails once its copy is published.

        The copy is complete and published (renamed) when the seed records
        its last use (SetField, held 4 s, then failing). A second request
        of the same process finds it meanwhile, as it should, and clones it
        (its clone call held 6 s, as on a busy vCenter).

        Both requests get a clone of the copy (a hit each: a failed
        last-use record costs nothing, as after a crash at that point), no
        download, and the complete copy is kept: the seed, which holds the
        image's lock only shared, never deletes a copy it has published.
        """
        held = self.fault(method='SetField', action='fault',
                          fault='InvalidArgument', delay_ms=4000)
        seeding = eventlet.spawn(self.create, self.image_id)
        self.addCleanup(seeding.kill)
        harness.wait_for_rule(held['id'])
        [copy] = [e for e in self.entries()
                  if e.datastore == self.datastores[TARGET]]
        self.assertEqual((self.final, True), (copy.name, copy.ready))
        slow = self.fault(method='CloneVM_Task', body_contains='volume-',
                          action='delay', delay_ms=6000)
        second, second_result = self.create(self.image_id)
        _first, first_result = seeding.wait()
        # The second request cloned the copy the first one published; it
        # did not seed one of its own.
        self.assertEqual(1, base.fault_api('GET', rule_id=slow['id'])['hits'])
        self.assertEqual([inventory.template_name(self.image_id)],
                         self.seeds())
        self.assertEqual([(self.final, True)], [
            c[1:] for c in self.clones if c[0] == second[0].name])
        expected = {'first request': cache_request.RESULT_HIT,
                    'second request': cache_request.RESULT_HIT,
                    'copy kept': True, 'downloads': 1}
        outcome = {'first request': first_result,
                   'second request': second_result,
                   'copy kept': copy.key in {e.key for e in self.entries()},
                   'downloads': self.downloads(self.image_id)}
        self.assertEqual(expected, outcome)

    def entry_named(self, name):
        [entry] = [e for e in self.entries() if e.name == name]
        return entry


@ddt.ddt
class CrashDuringSeedTestCase(SeedTestCase):
    """A cinder-volume process killed (SIGKILL) in the middle of a seed.

    The seed runs in a separate process of the same backend (serving TARGET
    too) and lock directory (tests/reliability/worker.py). A delay rule
    holds one of its calls; once the simulator holds it, the process is
    killed. This test's driver then plays the restarted process.

    The delay rule is left in place, used up (``count`` 1): the held call
    ends when the simulator sees its client gone, and is not run. Deleting
    the rule would release it, and run it, if that came first.
    """

    def kill_during(self, rule):
        rule = self.fault(action='delay', delay_ms=120000, **rule)
        worker = harness.Worker({
            'mode': 'create', 'backend': self.backend,
            'lock_url': harness.lock_backend_url(),
            'images': [{'id': self.image_id,
                        'path': self.image_paths[self.image_id],
                        'disk_type': STREAM, 'size': harness.IMAGE_BYTES}],
            'count': 1, 'metadata': harness.ASK,
            'overrides': {'vmware_api_retry_count': 0,
                          'vmware_datastore_regex': regex(TARGET)}})
        self.addCleanup(worker.close)
        self.assertEqual('ready', worker.read_event()['event'])
        harness.wait_for_rule(rule['id'])
        worker.kill()
        return worker

    # (the call the process is killed in, what it leaves: {name:
    #  is_template})
    @ddt.unpack
    @ddt.data(
        # Its clone call is held: the simulator never makes the clone.
        ({'method': 'CloneVM_Task', 'body_contains': PARTIAL}, {}),
        # The clone is made (a VM under its partial name), not marked.
        ({'method': 'MarkAsTemplate'}, {PARTIAL: False}),
        # A template under its partial name, never renamed.
        ({'method': 'Rename_Task', 'body_contains': FINAL},
         {PARTIAL: True}),
    )
    def test_killed_during_seed(self, rule, leftovers):
        self.kill_during(rule)
        # The killed process left no volume (the checks compare every VM);
        # the one download is the source copy's fill.
        self.check_purge_and_seed([], leftovers, downloads=1)

    def test_killed_after_publishing_before_last_use(self):
        """Published, only the last use is missing: a complete copy."""
        self.kill_during({'method': 'SetField'})
        [copy] = [e for e in self.entries()
                  if e.datastore == self.datastores[TARGET]]
        self.assertEqual(self.final, copy.name)
        self.assertTrue(copy.ready)
        self.assertIsNone(copy.last_used)
        self.assertEqual({}, self.leftovers())
        self.set_policy(leftover_grace_seconds=0)
        self.assertEqual([], self.cache.purge())
        # The next request clones it (no seed), and records its use.
        volume, result = self.create(self.image_id)
        self.assertEqual(cache_request.RESULT_HIT, result)
        self.assertEqual([], self.seeds())
        self.assertEqual((self.final, True), self.clones[-1][1:])
        self.assertEqual(1, self.downloads(self.image_id))
        self.assert_copies([volume], copy)
        self.assert_clones_from_published_copies()
        self.assert_clean()


def datastore_refs(session):
    """{name: moref value} of the vCenter's datastores."""
    return {props['name']: vim_util.get_moref_value(ref)
            for ref, props in harness.objects(session, 'Datastore',
                                              ['name'])}
