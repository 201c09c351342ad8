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

"""Every vCenter query and change the cache makes, in one place.

A cache entry is a VM in the backend's cache folder
``OpenStack/Project (<backend>_image_cache)/<vmware_volume_folder>``.
Each entry is one *copy* of an image on one datastore. It is *ready*
(findable, clonable) only when all of these hold: it is a template, it has a
final name (``image-<image id>`` or ``image-<image id>.ds-<key>``), and its
extraConfig markers name this backend, the same image and state ``ready``.
The markers are written while the VM is still a VM (vCenter refuses
ReconfigVM on templates), before MarkAsTemplate and the final name, so a
crash at any point leaves an entry that is never cloned and that the purge
removes.

Names: the first copy in a datacenter's cache folder takes the plain
``image-<image id>``, the name the previous release looks up, so hosts not
yet upgraded keep finding a copy; further copies add ``.ds-<key>``, eight
hex digits of a hash of the datastore's moref, which keeps names short
(vCenter allows 80 characters) and unique in the folder. The name only
keeps copies apart: where a copy lives is its ``datastore`` property (and
the moref in its datastore marker). Copies also carry the adapter type of
their disk, which the stock import takes from the image's
``vmware_adaptertype`` or else the volume type, so that a volume cloned from
a copy gets the controller a stock volume would get.

Last use is kept in a vCenter custom field, because a template cannot be
reconfigured but SetField works on it, and the value survives restarts of
cinder-volume. Clones do not inherit custom fields.
"""

import calendar
import dataclasses
import datetime
import hashlib
import re
import uuid

from cinder.volume.drivers.vmware import volumeops
from oslo_log import log as logging
from oslo_utils import excutils
from oslo_utils import timeutils
from oslo_vmware import exceptions as vexc
from oslo_vmware.objects import datastore
from oslo_vmware import vim_util

from cinder_vmware_cache import policy

LOG = logging.getLogger(__name__)

MARKER_BACKEND = 'cinder.image_cache.backend'
MARKER_IMAGE = 'cinder.image_cache.image_id'
MARKER_STATE = 'cinder.image_cache.state'
MARKER_SIZE = 'cinder.image_cache.size_bytes'
MARKER_DATASTORE = 'cinder.image_cache.datastore'
MARKER_ADAPTER = 'cinder.image_cache.adapter_type'
MARKERS = (MARKER_BACKEND, MARKER_IMAGE, MARKER_STATE, MARKER_SIZE,
           MARKER_DATASTORE, MARKER_ADAPTER)
STATE_READY = 'ready'
# Written by the stock import; a template must not carry a volume id.
VOLUME_ID_KEY = 'cinder.volume.id'
LAST_USED_FIELD = 'cinder-image-cache-last-used'
# A disk descriptor is text; anything beyond this in a .vmdk is disk data.
DESCRIPTOR_TEXT_MAX = 64 * 1024

_NAME_RE = re.compile(r'^image-(?P<image_id>[0-9A-Za-z-]+?)'
                      r'(?:\.ds-(?P<ds_key>[0-9a-f]{8}))?'
                      r'(?:\.partial-(?P<token>[0-9a-f]{8})'
                      r'|\.retired-(?P<retired>[0-9]{1,12}))?$')
_RUNNING = ('queued', 'running')
_PROPS = ['name', 'parent', 'config.template', 'config.createDate',
          'datastore', 'customValue'] + [
              'config.extraConfig["%s"]' % k for k in MARKERS]


def copy_key(datastore, adapter_type=None):
    """The short key in a copy's name.

    From its datastore (moref value) and, when known, its disk adapter
    type: copies of one image on one datastore differ by it.
    """
    value = datastore + ('|%s' % adapter_type if adapter_type else '')
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def template_name(image_id, ds_key=None):
    """A copy's final name; without ``ds_key`` the datacenter's first."""
    return 'image-%s' % image_id + ('.ds-%s' % ds_key if ds_key else '')


def partial_name(image_id, token, ds_key=None):
    return template_name(image_id, ds_key) + '.partial-%s' % token


def retired_name(name, when):
    """The name a copy takes when it is retired for deletion.

    Not a final name, so no lookup finds it (nor the previous release's);
    the purge deletes it. ``when`` (UTC) is kept to the second.
    """
    return '%s.retired-%d' % (_final_name(name), calendar.timegm(
        when.utctimetuple()))


def _retired_at(name):
    match = _NAME_RE.match(name or '')
    if not match or not match.group('retired'):
        return None
    return datetime.datetime.utcfromtimestamp(int(match.group('retired')))


def parse_name(name):
    """Image id named by a cache VM's name, or None for anything else."""
    match = _NAME_RE.match(name or '')
    return match.group('image_id') if match else None


def _final_name(name):
    """The final name a cache VM's name belongs to (without the token)."""
    match = _NAME_RE.match(name or '')
    return template_name(match.group('image_id'), match.group('ds_key'))


def project_name(backend):
    return '%s_image_cache' % backend


class TemplateInventory(object):
    """The cache folder(s) of one backend, as seen through oslo.vmware."""

    def __init__(self, session, volumeops, backend, volume_folder,
                 max_objects=100):
        self._session = session
        self._vops = volumeops
        self.backend = backend
        self._folder_names = ['OpenStack', 'Project (%s)' %
                              project_name(backend), volume_folder]
        self._max_objects = max_objects
        self._folders = {}
        # Datacenter names by cache folder moref value, for the command.
        self.datacenter_names = {}
        self._field_key = None
        self._use_failures = set()

    @property
    def folder_path(self):
        return '/'.join(self._folder_names)

    # ---- folders -------------------------------------------------------
    def folder_for(self, datacenter):
        """The cache folder of a datacenter, created when missing."""
        folder = self._vops.create_vm_inventory_folder(datacenter,
                                                       self._folder_names)
        self._folders[vim_util.get_moref_value(folder)] = folder
        return folder

    def discover_folders(self):
        """Find (never create) the cache folder of every datacenter.

        Costs two round trips per datacenter, whatever the cache holds.
        """
        vim = self._session.vim
        result = self._session.invoke_api(
            vim_util, 'get_objects', vim, 'Datacenter', self._max_objects)
        found = {}
        with vim_util.WithRetrieval(vim, result) as objects:
            for dc in objects:
                path = '%s/vm/%s' % (
                    self._vops.get_inventory_path(dc.obj).rstrip('/'),
                    self.folder_path)
                folder = self._vops.get_entity_by_inventory_path(path)
                if folder is not None:
                    value = vim_util.get_moref_value(folder)
                    found[value] = folder
                    self.datacenter_names[value] = vim_util.propset_dict(
                        getattr(dc, 'propSet', None)).get('name')
        self._folders = found
        return list(found.values())

    # ---- reading -------------------------------------------------------
    def _retrieve(self, obj, traverse):
        cf = self._session.vim.client.factory
        select = []
        if traverse:
            select = [vim_util.build_traversal_spec(
                cf, 'folderChildren', 'Folder', 'childEntity', False, [])]
        obj_spec = vim_util.build_object_spec(cf, obj, select)
        obj_spec.skip = traverse
        prop_spec = vim_util.build_property_spec(cf, 'VirtualMachine',
                                                 _PROPS)
        filter_spec = vim_util.build_property_filter_spec(
            cf, [prop_spec], [obj_spec])
        options = cf.create('ns0:RetrieveOptions')
        options.maxObjects = self._max_objects
        vim = self._session.vim
        result = self._session.invoke_api(
            vim, 'RetrievePropertiesEx', vim.service_content.propertyCollector,
            specSet=[filter_spec], options=options)
        entries = []
        with vim_util.WithRetrieval(vim, result) as objects:
            for obj_content in objects:
                entry = self._to_entry(obj_content)
                if entry is not None:
                    entries.append(entry)
        return entries

    def _to_entry(self, obj_content):
        props = vim_util.propset_dict(getattr(obj_content, 'propSet', None))
        name = props.get('name')
        image_id = parse_name(name)
        if image_id is None:
            return None
        markers = {}
        for key in MARKERS:
            option = props.get('config.extraConfig["%s"]' % key)
            markers[key] = getattr(option, 'value', None)
        ready = (bool(props.get('config.template')) and
                 name == _final_name(name) and
                 markers[MARKER_STATE] == STATE_READY and
                 markers[MARKER_BACKEND] == self.backend and
                 markers[MARKER_IMAGE] == image_id)
        try:
            size = int(markers[MARKER_SIZE] or 0)
        except ValueError:
            size = 0
        datastores = getattr(props.get('datastore'),
                             'ManagedObjectReference', None) or []
        created = props.get('config.createDate')
        parent = props.get('parent')
        return policy.CacheEntry(
            image_id=image_id, name=name, ref=obj_content.obj, ready=ready,
            size_bytes=size,
            datastore=(vim_util.get_moref_value(datastores[0])
                       if datastores else None),
            created_at=timeutils.normalize_time(created) if created else None,
            last_used=self._last_used(props.get('customValue')),
            folder=vim_util.get_moref_value(parent) if parent else None,
            adapter_type=markers[MARKER_ADAPTER] or None,
            retired_at=_retired_at(name))

    def _last_used(self, custom_values):
        # The newest value wins: the simulator appends on SetField where
        # vCenter replaces.
        stamps = []
        for value in getattr(custom_values, 'CustomFieldValue', None) or []:
            if value.key != self._field_key:
                continue
            try:
                stamps.append(timeutils.normalize_time(
                    datetime.datetime.fromisoformat(value.value)))
            except (TypeError, ValueError, AttributeError):
                continue
        return max(stamps, default=None)

    def list_entries(self, folders=None):
        """Every cache VM in the given (default: known) folders.

        One RetrievePropertiesEx per folder (plus continuation pages only
        when vCenter splits a large answer), whatever the cache holds.
        """
        self.ensure_last_used_field()
        entries = []
        for folder in (folders if folders is not None
                       else self._folders.values()):
            entries.extend(self._retrieve(folder, traverse=True))
        return entries

    def copies(self, folder, image_id):
        """Every cache VM of an image in a folder, ready or not.

        One RetrievePropertiesEx, as for a listing of the folder.
        """
        return [e for e in self.list_entries([folder])
                if e.image_id == image_id]

    def reread(self, vm):
        """Fresh state of one cache VM, or None once it is gone."""
        self.ensure_last_used_field()
        try:
            entries = self._retrieve(vm, traverse=False)
        except vexc.ManagedObjectNotFoundException:
            return None
        return entries[0] if entries else None

    # ---- writing -------------------------------------------------------
    def ensure_last_used_field(self):
        """Key of the last-use custom field; defined once per vCenter.

        The definitions are read first, so a restart neither writes to
        vCenter nor trips over DuplicateName.
        """
        if self._field_key is None:
            key = self._find_field()
            # A key may be 0 (the simulator's first field is).
            self._field_key = self._add_field() if key is None else key
        return self._field_key

    def _find_field(self):
        vim = self._session.vim
        fields = self._session.invoke_api(
            vim_util, 'get_object_property', vim,
            vim.service_content.customFieldsManager, 'field')
        for field in getattr(fields, 'CustomFieldDef', None) or []:
            if field.name == LAST_USED_FIELD:
                return field.key
        return None

    def _add_field(self):
        vim = self._session.vim
        try:
            return self._session.invoke_api(
                vim, 'AddCustomFieldDef',
                vim.service_content.customFieldsManager,
                name=LAST_USED_FIELD, moType='VirtualMachine').key
        except vexc.DuplicateName:
            # Another host defined it in between.
            return self._find_field()

    def touch(self, vm, when=None):
        """Record a use; works on templates, unlike ReconfigVM."""
        when = when or timeutils.utcnow()
        vim = self._session.vim
        self._session.invoke_api(
            vim, 'SetField', vim.service_content.customFieldsManager,
            entity=vm, key=self.ensure_last_used_field(),
            value=when.isoformat(timespec='seconds') + 'Z')

    def record_use(self, vm, name):
        """touch(), as bookkeeping: a failure is logged, never raised.

        Recording a use needs SetField (Global.SetCustomField), beyond the
        stock driver's role; without it a copy is still used, and counts
        its age from its last recorded use (else its creation). The first
        failure of each kind is a warning, the rest debug.

        :returns: whether the use was recorded.
        """
        try:
            self.touch(vm)
        except Exception as exc:
            kind = type(exc).__name__
            log = LOG.debug if kind in self._use_failures else LOG.warning
            self._use_failures.add(kind)
            log("Could not record the last use of cache VM %(name)s "
                "(%(exc)s); it stays in use. Fix: grant the cinder user "
                "Global.SetCustomField (README: vCenter privileges).",
                {'name': name, 'exc': exc})
            return False
        return True

    def _markers(self, image_id, size_bytes, datastore, adapter_type):
        return {MARKER_BACKEND: self.backend,
                MARKER_IMAGE: image_id,
                MARKER_STATE: STATE_READY,
                MARKER_SIZE: str(size_bytes),
                MARKER_DATASTORE: datastore,
                MARKER_ADAPTER: adapter_type or '',
                VOLUME_ID_KEY: ''}

    def _finish(self, vm, name):
        # The rename comes last: it is what makes the copy findable. From
        # then on other requests may clone it, so a failure to record its
        # first use must not undo it (a copy without one is kept and used).
        self._vops.mark_backing_as_template(vm)
        self.rename(vm, name)
        self.record_use(vm, name)

    def publish(self, vm, image_id, size_bytes, datastore, name,
                adapter_type):
        """Make a finished import findable: markers, template flag, name.

        :param datastore: moref value of the VM's datastore.
        :param adapter_type: the adapter type of the VM's disk.
        """
        self._vops.update_backing_extra_config(
            vm, self._markers(image_id, size_bytes, datastore, adapter_type))
        self._finish(vm, name)

    def seed(self, source, name, target):
        """Copy a ready copy to another datastore, and publish it.

        The copy is made under a partial name, so an interrupted seed
        leaves a leftover for the purge, never a copy that looks ready.

        :param source: the ready CacheEntry to copy.
        :param name: the final name of the new copy.
        :param target: the placement.Placement of the new copy.
        :returns: the new copy's VM reference.
        """
        ds_value = vim_util.get_moref_value(target.summary.datastore)
        vm = self._vops.clone_backing(
            '%s.partial-%s' % (name, uuid.uuid4().hex[:8]), source.ref,
            None, volumeops.FULL_CLONE_TYPE, target.summary.datastore,
            host=target.host, resource_pool=target.resource_pool,
            extra_config=self._markers(source.image_id, source.size_bytes,
                                       ds_value, source.adapter_type),
            folder=target.folder)
        try:
            self._finish(vm, name)
        except Exception:
            with excutils.save_and_reraise_exception() as error:
                published = self._published(vm)
                if published:
                    # The rename reached vCenter but its answer did not.
                    error.reraise = False
                elif published is False:
                    self.delete(vm)
        return vm

    def _published(self, vm):
        """Whether a VM is now a ready copy; None when vCenter cannot say.

        A VM that may be published is never deleted here: other requests
        may clone it, and a leftover goes at the purge.
        """
        try:
            current = self.reread(vm)
        except vexc.VimException:
            return None
        return current is not None and current.ready

    def rename(self, vm, name):
        self._vops.rename_backing(vm, name)

    def promote(self, deleted):
        """After the plain-named copy of an image went, rename another.

        :param deleted: the CacheEntry of the deleted copy.
        :returns: the renamed copy's CacheEntry, or None when there is no
            other ready copy in its folder.
        """
        if deleted.folder is None:
            return None
        folder = vim_util.get_moref(deleted.folder, 'Folder')
        for copy in self.copies(folder, deleted.image_id):
            if copy.ready:
                self.rename(copy.ref, deleted.name)
                return dataclasses.replace(copy, name=deleted.name)
        return None

    def retire(self, entry, when=None):
        """Rename a copy so that no lookup finds it: its retired entry."""
        when = when or timeutils.utcnow()
        name = retired_name(entry.name, when)
        self.rename(entry.ref, name)
        return dataclasses.replace(entry, name=name, ready=False,
                                   retired_at=_retired_at(name))

    def busy(self, vms):
        """Moref values of those of ``vms`` a task still runs on.

        A clone task's entity is its source VM, and a template has no
        other tasks than its clones (and the cache's own, which it waits
        for), so the task's kind is not asked (vCenter and the simulator
        describe a clone differently). vCenter lists running tasks in each
        VM's ``recentTask`` and in TaskManager's; the simulator only in the
        latter, so both are read. Three round trips.
        """
        if not vms:
            return set()
        session, vim = self._session, self._session.vim
        wanted = {vim_util.get_moref_value(vm) for vm in vms}
        tasks = {}
        manager = session.invoke_api(
            vim_util, 'get_object_property', vim,
            vim.service_content.taskManager, 'recentTask')
        for task in getattr(manager, 'ManagedObjectReference', None) or []:
            tasks[vim_util.get_moref_value(task)] = task
        for task in self._vm_tasks(vms):
            tasks[vim_util.get_moref_value(task)] = task
        if not tasks:
            return set()
        busy = set()
        result = session.invoke_api(
            vim_util, 'get_properties_for_a_collection_of_objects', vim,
            'Task', list(tasks.values()), ['info.state', 'info.entity'])
        with vim_util.WithRetrieval(vim, result) as objects:
            for obj in objects:
                props = vim_util.propset_dict(getattr(obj, 'propSet', None))
                entity = props.get('info.entity')
                value = vim_util.get_moref_value(entity) if entity else None
                if value in wanted and props.get('info.state') in _RUNNING:
                    busy.add(value)
        return busy

    def _vm_tasks(self, vms):
        """The recent tasks of VMs; one gone meanwhile has none.

        One round trip; when a VM is gone (another purge deleted it),
        vCenter fails the whole question, so it is asked VM by VM.
        """
        try:
            found = self._recent_tasks(vms)
        except vexc.ManagedObjectNotFoundException:
            found = []
            for vm in vms:
                try:
                    found.extend(self._recent_tasks([vm]))
                except vexc.ManagedObjectNotFoundException:
                    LOG.debug("Cache VM %s is gone.", vm)
        return found

    def _recent_tasks(self, vms):
        session, vim = self._session, self._session.vim
        result = session.invoke_api(
            vim_util, 'get_properties_for_a_collection_of_objects', vim,
            'VirtualMachine', list(vms), ['recentTask'])
        tasks = []
        with vim_util.WithRetrieval(vim, result) as objects:
            for obj in objects:
                props = vim_util.propset_dict(getattr(obj, 'propSet', None))
                tasks.extend(getattr(props.get('recentTask'),
                                     'ManagedObjectReference', None) or [])
        return tasks

    def delete(self, vm):
        """Destroy a cache VM and its files; one already gone is fine."""
        try:
            self._vops.delete_backing(vm)
        except vexc.ManagedObjectNotFoundException:
            LOG.debug("Cache VM %s was already gone.", vm)

    def disk_size(self, vm):
        return self._vops.get_disk_size(vm)

    def disk_bytes(self, vm, datastore_ref=None):
        """Bytes of disk data the VM's disk files hold on the datastore.

        oslo.vmware's upload handles never read vCenter's answer, so an
        upload that vCenter refused looks like a success; the files show
        what actually arrived. Extents (``-flat``, ``-delta``, ``-sNNN``)
        count whole. The descriptor is a text file of about 1 KiB and
        counts only beyond ``DESCRIPTOR_TEXT_MAX``: a single-file (sparse
        or streamOptimized) disk keeps its data in the ``.vmdk`` itself, as
        the simulator does for an imported streamOptimized image.

        :param datastore_ref: the VM's datastore, when the caller knows it.
        """
        path = datastore.DatastorePath.parse(self._vops.get_vmdk_path(vm))
        vim = self._session.vim
        browser = self._session.invoke_api(
            vim_util, 'get_object_property', vim,
            datastore_ref or self._vops.get_datastore(vm), 'browser')
        cf = vim.client.factory
        spec = cf.create('ns0:HostDatastoreBrowserSearchSpec')
        spec.details = cf.create('ns0:FileQueryFlags')
        spec.details.fileSize = True
        spec.details.fileType = False
        spec.details.modification = False
        spec.details.fileOwner = False
        spec.matchPattern = [path.basename[:-len('.vmdk')] + '*']
        task = self._session.invoke_api(
            vim, 'SearchDatastore_Task', browser,
            datastorePath=str(path.parent), searchSpec=spec)
        result = self._session.wait_for_task(task).result
        total = 0
        for found in getattr(result, 'file', None) or []:
            size = getattr(found, 'fileSize', None) or 0
            if found.path == path.basename:
                size = max(0, size - DESCRIPTOR_TEXT_MAX)
            total += size
        return total
