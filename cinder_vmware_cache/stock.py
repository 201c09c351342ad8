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

"""The one seam between the cache and cinder's stock VMDK driver.

Every use of the stock driver's private methods goes through here, and so
does everything that differs between the cinder releases we support (26
to 29), so that a change in cinder shows in one module and its tests.

What differs, measured on cinder 26.3.0, 27.0.0, 28.0.0 and 29.0.0: the
private methods used here have the same signatures in all four, and
``volumeops`` is the same; cinder 28 and later retry a streamOptimized
import that hits ``DuplicateName`` (26 and 27 fail it, and the cache then
takes the normal path, as after any failed fill); ``cinder.monkey_patch``
exists from cinder 29 on. ``_create_session`` and the constructor of
``VMwareVolumeOps`` (``open_volumeops``) are the same in all four, and so
are the ``DatastoreSelector`` methods ``_get_datastores``,
``_filter_datastores``, ``_select_best_datastore``,
``_get_host_properties`` and ``_get_resource_pool``.
"""

import copy

from oslo_utils import units
from oslo_vmware import vim_util

from cinder_vmware_cache import placement
from cinder_vmware_cache import snapshot

# volumeops.clone_backing's disk move type of a full clone.
_FULL_CLONE_DISK_MOVE = 'moveAllDiskBackingsAndDisallowSharing'


def _hang():
    # Imported late, as cinder's exceptions below: it imports cinder.
    from cinder_vmware_cache import hang
    return hang


def _vmdk_exceptions():
    # Imported late: the command imports this module before it patches
    # eventlet, and importing cinder imports eventlet.
    from cinder.volume.drivers.vmware import exceptions
    return exceptions


class StockDriver(object):
    """What the cache asks of a backend's stock VMDK driver.

    :param driver: the backend's ``VMwareVcVmdkDriver`` (set up).
    """

    def __init__(self, driver):
        self._driver = driver
        self.snapshot = snapshot.Snapshot()
        self._snapshot_sel = self._template_vops = None
        # Placements pinned per volume id for the stock import (see
        # import_image); every other volume keeps the stock selection.
        self._pinned = {}
        stock_select = driver._select_ds_for_volume

        def select_ds_for_volume(volume, host=None, create_params=None):
            pinned = self._pinned.get(volume['id'])
            if pinned is not None:
                return pinned
            return stock_select(volume, host, create_params)

        driver._select_ds_for_volume = select_ds_for_volume

    @property
    def _selector(self):
        """A copy of the stock selector that reads through the snapshot.

        The driver's own selector, which the stock paths use, reads afresh.
        Made on first use: the stock ``do_setup`` makes the original.
        """
        if self._snapshot_sel is None:
            self._snapshot_sel = self._snapshot_selector(self._driver.ds_sel)
        return self._snapshot_sel

    def _snapshot_selector(self, stock_selector):
        selector = copy.copy(stock_selector)
        memoize = self.snapshot.memoize
        by_ref = vim_util.get_moref_value
        selector._get_datastores = memoize(selector._get_datastores)
        selector._get_host_properties = memoize(
            selector._get_host_properties, key=by_ref)
        selector._get_resource_pool = memoize(selector._get_resource_pool,
                                              key=by_ref)
        return selector

    def clone_template(self, name, template, target, disk_type,
                       extra_config, timeout=None):
        """A full clone of a cache template to ``target``: the new VM.

        As ``volumeops.clone_backing`` (its clone spec), with two changes:
        the template's disk device, which the spec names, is read through
        the snapshot (a template's disks never change, and a burst reads it
        once); and a clone that has not ended after ``timeout`` seconds is
        abandoned (``hang.wait_for_clone``), raising TaskHung.
        """
        if self._template_vops is None:
            vops = copy.copy(self._driver.volumeops)
            vops._get_disk_device = self.snapshot.memoize(
                vops._get_disk_device, key=vim_util.get_moref_value)
            self._template_vops = vops
        spec = self._template_vops._get_clone_spec(
            target.summary.datastore, _FULL_CLONE_DISK_MOVE, None, template,
            disk_type, host=target.host, resource_pool=target.resource_pool,
            extra_config=extra_config)
        session = self._driver.session
        task = session.invoke_api(session.vim, 'CloneVM_Task', template,
                                  folder=target.folder, name=name,
                                  spec=spec)
        return _hang().wait_for_clone(session, task, timeout, name,
                                      self.volumeops.delete_backing)

    @property
    def volumeops(self):
        """The driver's ``VMwareVolumeOps``: public vCenter operations."""
        return self._driver.volumeops

    def _hosts(self):
        driver = self._driver
        if not driver._clusters:
            return None
        hosts = driver._get_hosts(driver._clusters)
        if not hosts:
            raise _vmdk_exceptions().NoValidHostException()
        return hosts

    def candidates(self, volume):
        """The datastores the stock selection accepts for ``volume``.

        The stock ``DatastoreSelector``'s own filtering (size, storage
        profile, ``vmware_datastore_regex``, the clusters' hosts,
        maintenance, accessibility) without its final choice, so the cache
        can choose among them with the same rules.
        """
        driver = self._driver
        selector = self._selector
        profile = driver._get_storage_profile(volume)
        hosts = self._hosts()
        datastores = selector._filter_datastores(
            selector._get_datastores(), volume['size'] * units.Gi,
            selector.get_profile_id(profile) if profile else None,
            None, None, valid_host_refs=hosts)
        return placement.Candidates(datastores or {}, hosts)

    def served_datastores(self):
        """Moref values of the datastores this backend places volumes on.

        The same filtering without a size or profile: the backend's
        clusters, datastore regex, accessibility and maintenance.
        """
        selector = self._driver.ds_sel
        datastores = selector._filter_datastores(
            selector._get_datastores(), 0, None, None, None,
            valid_host_refs=self._hosts()) or {}
        return {vim_util.get_moref_value(ref) for ref in datastores}

    def place(self, volume, candidates, datastores=None):
        """The stock choice among ``datastores`` (default: all candidates).

        :returns: a placement.Placement in ``volume``'s project folder.
        :raises NoValidDatastoreException: none has a usable host.
        """
        driver = self._driver
        best = self._selector._select_best_datastore(
            candidates.datastores if datastores is None else datastores,
            valid_host_refs=candidates.hosts)
        if not best:
            raise _vmdk_exceptions().NoValidDatastoreException()
        host, resource_pool, summary = best
        datacenter = driver._get_dc(resource_pool)
        return placement.Placement(
            host, resource_pool,
            driver._get_volume_group_folder(datacenter, volume['project_id']),
            summary, datacenter)

    def took_space(self, target, size_bytes):
        """A clone of ``size_bytes`` went to ``target``'s datastore.

        Its summary is the snapshot's: later requests see the space gone
        before the snapshot is read again.
        """
        summary = target.summary
        summary.freeSpace = max(0, summary.freeSpace - size_bytes)

    def disk_type(self, volume):
        """The volume type's disk type (thin, thick, eagerZeroedThick)."""
        return self._driver._get_disk_type(volume)

    def adapter_type(self, volume, image_meta):
        """The adapter type the stock import gives ``volume``'s disk.

        As ``copy_image_to_volume``: the image's ``vmware_adaptertype``,
        else the volume type's (or the backend's default).
        """
        properties = image_meta.get('properties') or {}
        if 'vmware_adaptertype' in properties:
            return properties['vmware_adaptertype']
        return self._driver._get_adapter_type(volume)

    def storage_profile_id(self, volume):
        """The volume type's storage profile id, or None."""
        return self._driver._get_storage_profile_id(volume)

    def extra_config(self, volume):
        """The extraConfig the stock driver gives a volume's backing."""
        return self._driver._get_extra_config(volume)

    def extend(self, backing, size_gb, disk_type):
        self._driver._extend_backing(backing, size_gb, disk_type)

    def import_image(self, context, volume, image_service, image_id,
                     target):
        """Create ``volume``'s backing from the image, the stock way.

        The stock import selects its datastore itself; it is pinned here
        to ``target`` (a placement.Placement), so the new copy lands where
        the request will clone it, in the same datacenter.
        """
        self._pinned[volume['id']] = (target.host, target.resource_pool,
                                      target.folder, target.summary)
        try:
            self._driver.copy_image_to_volume(context, volume, image_service,
                                              image_id)
        finally:
            del self._pinned[volume['id']]


def open_volumeops(configuration):
    """Log in to a backend's vCenter: (session, ``VMwareVolumeOps``).

    Both are built as the stock driver's ``do_setup`` builds them (its own
    ``_create_session``, the same extension key), but without the rest of
    ``do_setup``: no version and PBM checks, no vCenter extension
    registration and no scan of every VM of the vCenter. Enough to read and
    delete cache entries, as the operator command does; not enough to
    create volumes. The caller logs the session out.

    :param configuration: the backend's cinder ``Configuration``.
    """
    # Imported here: this module is imported before the monkey patching.
    from cinder.volume.drivers.vmware import vmdk
    from cinder.volume.drivers.vmware import volumeops

    session = vmdk.VMwareVcVmdkDriver(
        configuration=configuration)._create_session()
    return session, volumeops.VMwareVolumeOps(
        session, configuration.vmware_max_objects_retrieval,
        vmdk.EXTENSION_KEY, vmdk.EXTENSION_TYPE)


def monkey_patch():
    """Apply cinder's eventlet monkey patching, as its commands do.

    cinder 29 has ``cinder.monkey_patch``; before it, each command patched
    eventlet itself.
    """
    try:
        from cinder import monkey_patch as cinder_monkey_patch
    except ImportError:
        import eventlet
        eventlet.monkey_patch()
    else:
        cinder_monkey_patch.patch()
