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

"""Shared machinery of the reliability suite (see doc/reliability.md).

Every scenario checks vCenter itself afterwards: the VMs it holds (volume
backings, templates, leftovers of fills), the files on the datastores, the
cache folder and the last-used custom field; not only what the driver
returned.
"""

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from unittest import mock

import eventlet
from eventlet import tpool
from oslo_config import cfg
from oslo_utils import units
from oslo_vmware import vim_util

from cinder_vmware_cache import inventory
from cinder_vmware_cache.testing import disk_images
from cinder_vmware_cache.testing import images
from cinder_vmware_cache.testing import servers
from cinder_vmware_cache.testing import vcenter
from tests.vcsim import base

ASK = {'use_image_cache': 'true'}
IMAGE_BYTES = units.Mi
TOP_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# Stock cinder creates this datastore folder for image uploads and keeps it.
STOCK_TEMP_FOLDER = 'cinder_temp'


# ---- what vCenter holds -----------------------------------------------------
def objects(session, mo_type, properties, max_objects=100):
    """[(moref, {property: value})] of every object of a type in vCenter."""
    vim = session.vim
    result = session.invoke_api(vim_util, 'get_objects', vim, mo_type,
                                max_objects, properties)
    with vim_util.WithRetrieval(vim, result) as found:
        return [(obj.obj, vim_util.propset_dict(getattr(obj, 'propSet',
                                                        None)))
                for obj in found]


def vm_inventory(session):
    """{moref value: (name, is_template)} of every VM of the vCenter.

    The whole vCenter, not only the cache folders the driver lists: a test
    must see a VM that went anywhere else too.
    """
    return {vim_util.get_moref_value(ref): (props.get('name'),
                                            bool(props.get('config.template')))
            for ref, props in objects(session, 'VirtualMachine',
                                      ['name', 'config.template'])}


def datastore_files(session):
    """{'[datastore]folder/file': size} of every file on every datastore.

    Read through each datastore's browser, as an operator would see it.
    Sizes are None where vCenter leaves them out (empty files).
    """
    vim = session.vim
    factory = vim.client.factory
    files = {}
    for _ref, props in objects(session, 'Datastore', ['name', 'browser']):
        name, browser = props['name'], props['browser']
        spec = factory.create('ns0:HostDatastoreBrowserSearchSpec')
        details = factory.create('ns0:FileQueryFlags')
        details.fileSize = True
        details.fileType = False
        details.modification = False
        details.fileOwner = False
        spec.details = details
        task = session.invoke_api(vim, 'SearchDatastoreSubFolders_Task',
                                  browser, datastorePath='[%s]' % name,
                                  searchSpec=spec)
        info = session.wait_for_task(task)
        results = getattr(info.result, 'HostDatastoreBrowserSearchResults',
                          None) or []
        for folder in results:
            prefix = folder.folderPath.rstrip('/')
            for item in getattr(folder, 'file', None) or []:
                files['%s/%s' % (prefix, item.path)] = getattr(
                    item, 'fileSize', None)
    return files


def refresh_datastores(session):
    """Have vCenter re-read the free space of every datastore.

    The simulator takes space for each clone twice and gives it back once,
    so a long run would find no datastore with room; a refresh re-reads
    the real figure (on vCenter it is just a refresh).
    """
    for ref, _props in objects(session, 'Datastore', ['name']):
        session.invoke_api(session.vim, 'RefreshDatastore', ref)


def custom_field_keys(session, name):
    """Keys of the custom field definitions called ``name``."""
    vim = session.vim
    fields = session.invoke_api(vim_util, 'get_object_property', vim,
                                vim.service_content.customFieldsManager,
                                'field')
    return [f.key for f in getattr(fields, 'CustomFieldDef', None) or []
            if f.name == name]


def is_cache_name(name):
    return inventory.parse_name(name) is not None


# ---- vCenter's task records -------------------------------------------------
# descriptionIds of the tasks the checks read. vCenter's CloneVM_Task is
# VirtualMachine.clone (as the simulator's own TaskManager.description
# lists it), but the simulator's tasks take theirs from its Go type:
# VirtualMachine.cloneVm. Destroy_Task is VirtualMachine.destroy in both.
CLONE_TASKS = ('VirtualMachine.clone', 'VirtualMachine.cloneVm')
DESTROY_TASK = 'VirtualMachine.destroy'


@dataclasses.dataclass(frozen=True)
class TaskRecord:
    """One of vCenter's task records, as TaskManager keeps it."""

    key: str
    description_id: str
    entity: str
    state: str
    start: object = None
    complete: object = None


class TaskRecorder(object):
    """Every task vCenter runs while it records, read back afterwards.

    TaskManager.recentTask holds the last 200 tasks only, so it is read
    every ``interval`` seconds and the references collected; each read
    must overlap the previous one, or tasks were missed and the recorder
    says so. The Task objects outlive that window: records() reads them
    at the end (state, entity, start and completion times).
    """

    def __init__(self, session, interval=0.5):
        self.session = session
        self.interval = interval
        self.refs = {}
        self.gaps = 0
        self._last = None
        self._thread = None
        self._stopped = False

    def _read(self):
        vim = self.session.vim
        recent = self.session.invoke_api(
            vim_util, 'get_object_property', vim,
            vim.service_content.taskManager, 'recentTask')
        refs = getattr(recent, 'ManagedObjectReference', None) or []
        values = [vim_util.get_moref_value(r) for r in refs]
        if (self._last is not None and len(values) >= 200 and
                self._last not in values):
            self.gaps += 1
        for value, ref in zip(values, refs):
            self.refs.setdefault(value, ref)
        if values:
            self._last = values[-1]
        return values

    def start(self):
        """Start recording; tasks already in recentTask are left out."""
        self.before = set(self._read())
        self.refs = {}
        self._thread = eventlet.spawn(self._run)

    def _run(self):
        while not self._stopped:
            eventlet.sleep(self.interval)
            self._read()

    def stop(self):
        if self._thread is None:
            return
        self._stopped = True
        self._thread.wait()
        self._thread = None
        self._read()

    def records(self):
        """[TaskRecord] of the tasks run while recording, oldest first."""
        if self.gaps:
            raise AssertionError('%d reads of recentTask missed tasks' %
                                 self.gaps)
        refs = [ref for value, ref in self.refs.items()
                if value not in self.before]
        if not refs:
            return []
        vim = self.session.vim
        result = self.session.invoke_api(
            vim_util, 'get_properties_for_a_collection_of_objects', vim,
            'Task', refs, ['info.descriptionId', 'info.entity', 'info.state',
                           'info.startTime', 'info.completeTime'])
        records = []
        with vim_util.WithRetrieval(vim, result) as found:
            for obj in found:
                props = vim_util.propset_dict(getattr(obj, 'propSet', None))
                entity = props.get('info.entity')
                records.append(TaskRecord(
                    key=vim_util.get_moref_value(obj.obj),
                    description_id=props.get('info.descriptionId'),
                    entity=(vim_util.get_moref_value(entity)
                            if entity is not None else None),
                    state=props.get('info.state'),
                    start=props.get('info.startTime'),
                    complete=props.get('info.completeTime')))
        return sorted(records, key=lambda r: (r.start is None, r.start))


def destroyed_while_read(records):
    """Destroys of a VM that a clone task was still reading, or read later.

    :param records: TaskRecords (TaskRecorder.records()).
    :returns: [(destroy, clone)]: each Destroy_Task and each CloneVM_Task
        of the same VM (its source) that had not completed when the
        destroy started (no completion time counts as not completed).
    """
    clones = {}
    for record in records:
        if record.description_id in CLONE_TASKS:
            clones.setdefault(record.entity, []).append(record)
    bad = []
    for destroy in records:
        if destroy.description_id != DESTROY_TASK:
            continue
        for clone in clones.get(destroy.entity, ()):
            if clone.complete is None or destroy.start is None or (
                    clone.complete > destroy.start):
                bad.append((destroy, clone))
    return bad


# ---- local services ---------------------------------------------------------
# (Shared with the benchmark.)
RedisServer = servers.RedisServer
EtcdServer = servers.EtcdServer


class LockServerTests(object):
    """Tests on a tooz backend of their own; a subclass names its server."""

    #: A servers class (start, stop, url) of the tooz backend.
    lock_server_class = None

    @classmethod
    def setUpClass(cls):
        cls.lock_server = cls.lock_server_class()
        # Before the simulator's fixtures: a missing server fails at once.
        cls.lock_server.start()
        try:
            super().setUpClass()
        except Exception:
            cls.lock_server.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.lock_server.stop()


# ---- cinder-volume processes ------------------------------------------------
class Worker(object):
    """A separate cinder-volume-like process (tests/reliability/worker.py).

    It gets its job as JSON, prints JSON lines on stdout ("ready", then
    "done" with its results) and logs to a file kept for failure messages.
    """

    def __init__(self, job):
        self.job = job
        self.log_dir = tempfile.mkdtemp(prefix='cvc-worker-')
        self.log_path = os.path.join(self.log_dir, 'worker.log')
        self._log = open(self.log_path, 'wb')
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            [TOP_DIR] + [p for p in env.get('PYTHONPATH', '').split(
                os.pathsep) if p])
        env['PYTHONWARNINGS'] = 'ignore'
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'tests.reliability.worker',
             json.dumps(job)],
            cwd=TOP_DIR, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log)

    def read_event(self, timeout=120):
        """The next JSON event of the worker, or an error with its log."""
        with eventlet.Timeout(timeout, False):
            while True:
                line = self._readline()
                if not line:
                    break
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and 'event' in event:
                    return event
        raise AssertionError('worker gave no event (rc=%s); log:\n%s' % (
            self.proc.poll(), self.log_tail()))

    def _readline(self):
        # Blocking pipe reads would stop every greenthread of this process.
        return tpool.execute(self.proc.stdout.readline)

    def go(self):
        self.proc.stdin.write(b'go\n')
        self.proc.stdin.flush()

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        servers.close_quietly(self.proc.stdin, self.proc.stdout, self._log)
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def log_tail(self, lines=60):
        return servers.tail(self.log_path, lines)


class WorkerVolume(object):
    """What the checks need of a volume a worker process created."""

    def __init__(self, record):
        self.id = record['id']
        self.name = record['name']

    def __getitem__(self, key):
        return getattr(self, key)


def lock_backend_url():
    """The tooz backend of this process's coordinator (file:// by default)."""
    return cfg.CONF.coordination.backend_url


def wait_for_rule(rule_id, matched=1, timeout=60):
    """Wait until a fault rule has matched ``matched`` requests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rule = base.fault_api('GET', rule_id=rule_id)
        if rule['matched'] >= matched:
            return rule
        eventlet.sleep(0.2)
    raise AssertionError('fault rule %s matched no request in %d s' %
                         (rule_id, timeout))


class FlakyImageService(images.LocalImageService):
    """Glance whose next download stream breaks after some chunks.

    update_meta() changes what Glance says of an image (sizes, formats).
    """

    def __init__(self):
        super().__init__()
        self.break_after = None

    def update_meta(self, image_id, **fields):
        self._images[image_id]['meta'].update(fields)

    def download(self, context, image_id, data=None):
        chunks = super().download(context, image_id, data)
        limit, self.break_after = self.break_after, None
        if limit is None:
            return chunks

        def broken():
            for number, chunk in enumerate(chunks):
                if number >= limit:
                    raise IOError('Glance stream broke after %d chunks' %
                                  limit)
                yield chunk
        return broken()


# ---- the test case ----------------------------------------------------------
class ReliabilityTestCase(base.FaultsTestCase):
    """A driver of a fresh backend, fault rules cleared, vCenter watched.

    Connection faults are not retried (oslo.vmware sleeps 10 s per retry).
    """

    overrides = {'vmware_api_retry_count': 0}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.images = FlakyImageService()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if getattr(cls, 'image_dir', None):
                shutil.rmtree(cls.image_dir, ignore_errors=True)
            driver = getattr(cls, 'driver', None)
            if driver is not None:
                try:
                    driver.session.logout()
                except Exception:
                    pass

    def setUp(self):
        super().setUp()
        self.session = self.driver.session
        self.volumes = []
        self.results = {}
        self.image_paths = {}
        refresh_datastores(self.session)
        self.vms_before = vm_inventory(self.session)
        self.files_before = datastore_files(self.session)
        self.addCleanup(self.delete_volumes)
        self.clones = []
        # Every clone: the stock ones, seeds, and hits from a template.
        self.spy_clones(self.vops, 'clone_backing')
        self.spy_clones(self.cache._stock, 'clone_template')

    def spy_clones(self, obj, method):
        real_clone = getattr(obj, method)

        def spy(name, backing, *args, **kwargs):
            # What every clone reads from, as vCenter sees it right then.
            self.clones.append((name,) + vm_inventory_entry(self.session,
                                                            backing))
            return real_clone(name, backing, *args, **kwargs)
        patcher = mock.patch.object(obj, method, side_effect=spy)
        patcher.start()
        self.addCleanup(patcher.stop)

    # ---- requests ----
    def add_image(self, size=IMAGE_BYTES, disk_type='preallocated',
                  service=None, **kwargs):
        directory = tempfile.mkdtemp(dir=self.image_dir)
        path = disk_images.make_vmdk(directory, size, disk_type)
        kwargs.setdefault('virtual_size', size)
        image_id = (service or self.images).add(path, disk_type=disk_type,
                                                **kwargs)
        self.image_paths[image_id] = path
        return image_id

    def request(self, image_id, metadata=ASK, size=1, ctx=None,
                service=None):
        """clone_image as cinder's manager calls it; the volume must exist."""
        ctx = ctx or self.ctx
        service = service or self.images
        volume = vcenter.new_volume(ctx, size, metadata)
        self.volumes.append(volume)
        result = self.driver.clone_image(
            ctx, volume, None, service.show(ctx, image_id), service)
        self.assertTrue(result[1])
        # What image_cache_result says of it (None: nothing said).
        self.results[volume.id] = ((result[0] or {}).get('metadata') or
                                   {}).get('image_cache_result')
        backing = self.vops.get_backing(volume.name, volume.id)
        self.assertIsNotNone(backing, 'volume %s has no backing' % volume.id)
        return volume, backing

    def attempt(self, image_id, **kwargs):
        """request(), returning the exception instead of raising it."""
        try:
            return self.request(image_id, **kwargs)
        except Exception as exc:
            return exc

    def delete_volumes(self):
        for volume in self.volumes:
            try:
                backing = self.vops.get_backing(volume.name, volume.id)
                if backing:
                    self.vops.delete_backing(backing)
            except Exception:
                pass
        self.volumes = []

    def set_policy(self, **changes):
        old = self.cache.policy
        self.cache.policy = dataclasses.replace(old, **changes)
        self.addCleanup(setattr, self.cache, 'policy', old)

    def downloads(self, image_id, service=None):
        return (service or self.images).downloads.get(image_id, 0)

    # ---- vCenter state ----
    def entries(self):
        inv = self.cache.inventory
        return inv.list_entries(inv.discover_folders())

    def ready_templates(self):
        return [e for e in self.entries() if e.ready]

    def new_vms(self):
        now = vm_inventory(self.session)
        return {ref: now[ref] for ref in set(now) - set(self.vms_before)}

    def assert_volume(self, volume, backing):
        """A volume's backing: its own VM, no cache markers, not a template."""
        self.assertEqual(volume.name, self.prop(backing, 'name'))
        self.assertFalse(self.prop(backing, 'config.template'))
        self.assertEqual(volume.id, self.prop(backing,
                                              'config.instanceUuid'))
        config = self.extra_config(backing)
        self.assertEqual(volume.id, config.get(inventory.VOLUME_ID_KEY))
        for key in inventory.MARKERS:
            self.assertNotIn(key, config)

    def assert_template(self, entry):
        """A ready template: cache folder, markers, no volume, last use."""
        self.assertTrue(entry.ready)
        self.assertEqual(inventory.template_name(entry.image_id),
                         self.prop(entry.ref, 'name'))
        self.assertTrue(self.prop(entry.ref, 'config.template'))
        path = self.vops.get_inventory_path(entry.ref)
        self.assertIn('/vm/OpenStack/Project (%s_image_cache)/Volumes/' %
                      self.backend, path)
        markers = self.extra_config(entry.ref)
        self.assertEqual(self.backend, markers[inventory.MARKER_BACKEND])
        self.assertEqual(entry.image_id, markers[inventory.MARKER_IMAGE])
        self.assertEqual(inventory.STATE_READY,
                         markers[inventory.MARKER_STATE])
        self.assertNotIn(inventory.VOLUME_ID_KEY, markers)
        self.assertIsNotNone(entry.last_used)

    def assert_vcenter_state(self, volumes, image_ids):
        """vCenter holds the volumes, one template per image, nothing else.

        ``volumes`` are (volume, backing) pairs. Compared with the VMs that
        existed when the test started: any other new VM is an orphan.
        """
        templates = self.ready_templates()
        self.assertEqual(sorted(image_ids),
                         sorted(t.image_id for t in templates))
        self.assertEqual([], [e.name for e in self.entries() if not e.ready],
                         'leftovers of fills remain')
        expected = {b.value for _, b in volumes} | {t.key for t in templates}
        new = self.new_vms()
        orphans = {ref: name for ref, (name, _) in new.items()
                   if ref not in expected}
        self.assertEqual({}, orphans, 'VMs nobody owns')
        self.assertEqual(sorted(expected), sorted(new))
        for volume, backing in volumes:
            self.assert_volume(volume, backing)
        for entry in templates:
            self.assert_template(entry)
        if templates:
            self.assertEqual(1, len(self.cache.inventory.discover_folders()))
            self.assertEqual(1, len(custom_field_keys(
                self.session, inventory.LAST_USED_FIELD)))

    def assert_clones_from_ready_templates(self):
        """No clone ever read from a cache VM that was not a ready template.

        Cache VMs are recognised by name; clones from other sources (the
        stock path's own temporary backings) are not the cache's business.
        A copy retired for deletion (``<name>.retired-<epoch>``) is complete:
        a hit that saw it before may still clone it, and the deletion waits
        for that clone (README: How it works).
        """
        def published(name):
            final = inventory.template_name(inventory.parse_name(name))
            return name == final or re.match(
                r'^%s\.retired-[0-9]+$' % re.escape(final), name)
        bad = [(dst, src) for dst, src, template in self.clones
               if is_cache_name(src) and (not template or not published(src))]
        self.assertEqual([], bad, 'clones from unfinished cache VMs')

    def assert_clean(self):
        """Volumes deleted and cache purged: vCenter is as before the test."""
        self.delete_volumes()
        self.cache.purge(expired_only=False)
        self.assertEqual({}, self.new_vms())
        files = datastore_files(self.session)
        extra = sorted(path for path in set(files) - set(self.files_before)
                       if not path.endswith('/' + STOCK_TEMP_FOLDER))
        self.assertEqual([], extra, 'files left on the datastore')


def vm_inventory_entry(session, ref):
    """(name, is_template) of one VM."""
    props = session.invoke_api(vim_util, 'get_object_properties_dict',
                               session.vim, ref, ['name', 'config.template'])
    return props.get('name'), bool(props.get('config.template'))
