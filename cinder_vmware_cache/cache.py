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

"""The image-template cache of one backend: fill, clone, expire, evict.

The driver hands every create-from-image request here first. A request
served here returns True; any other outcome returns False and the driver
runs the stock download path, so a cache problem never costs a volume.
"""

import time
import uuid

from cinder.volume.drivers.vmware import volumeops as vops_mod
from cinder.volume import volume_types
from oslo_log import log as logging
from oslo_service import loopingcall
from oslo_utils import excutils
from oslo_utils import timeutils
from oslo_utils import units
from oslo_vmware import exceptions as vexc

from cinder_vmware_cache import exceptions
from cinder_vmware_cache import inventory as inv
from cinder_vmware_cache import locks
from cinder_vmware_cache import policy as pol
from cinder_vmware_cache import request

LOG = logging.getLogger(__name__)

# Cleared in a clone's extraConfig so a volume never looks like a cache entry.
_CLEARED_MARKERS = {key: '' for key in inv.MARKERS}
_FIRST_PURGE_DELAY = 60


def _volume_metadata(volume):
    try:
        return dict(volume['metadata'] or {})
    except (KeyError, TypeError, AttributeError, NotImplementedError):
        return {}


def _type_extra_specs(volume):
    type_id = volume.get('volume_type_id') if hasattr(volume, 'get') else None
    return volume_types.get_volume_type_extra_specs(type_id) if type_id else {}


class ImageTemplateCache(object):
    """The image-template cache of one backend.

    Serves create-from-image requests from ready templates (filling the
    cache on a miss), keeps the backend's view of its entries for the
    stats, and runs the periodic purge of expired entries, leftovers of
    interrupted fills and entries over the caps.

    :param stock: the backend's ``stock.StockDriver``.
    :param policy: the backend's ``policy.CachePolicy``.
    :param inventory: the backend's ``inventory.TemplateInventory``.
    """

    def __init__(self, stock, policy, inventory):
        self._stock = stock
        self.policy = policy
        self.inventory = inventory
        self.backend = inventory.backend
        self._entries = {}
        self._loop = None

    # ---- request path --------------------------------------------------
    def create_volume(self, context, volume, image_meta, image_service):
        """Create ``volume`` from the cached template of its image.

        Returns False when the request did not ask for the cache or the
        cache cannot serve it; the caller then takes the normal path.
        Errors of Glance's access check propagate: a user who cannot show
        the image gets no volume from its cached copy either.
        """
        image_id = image_meta['id']
        asked = request.resolve(_volume_metadata(volume),
                                _type_extra_specs(volume),
                                image_meta.get('properties'))
        if not asked.requested:
            return False
        # The user's own context must still see the image (it may have been
        # made private or deleted since it was cached).
        meta = image_service.show(context, image_id)
        refusal = self.policy.refusal(meta)
        if refusal:
            LOG.info("Volume %(vol)s asked for the image cache (%(src)s) "
                     "but %(why)s; using the normal path.",
                     {'vol': volume['id'], 'src': asked.source,
                      'why': refusal})
            return False
        try:
            self._serve(context, volume, image_service, meta)
        except Exception as exc:
            LOG.warning("Image cache could not serve volume %(vol)s from "
                        "image %(img)s (%(exc)s); using the normal path.",
                        {'vol': volume['id'], 'img': image_id,
                         'exc': exc}, exc_info=True)
            self._remove_backing(volume['name'], volume['id'])
            return False
        LOG.info("Volume %(vol)s cloned from the cached template of image "
                 "%(img)s.", {'vol': volume['id'], 'img': image_id})
        return True

    def _serve(self, context, volume, image_service, meta):
        image_id = meta['id']
        placement = self._stock.placement(volume)
        folder = self.inventory.folder_for(
            self._stock.datacenter(placement[1]))
        name = locks.lock_name(self.backend, image_id)
        wait = self.policy.wait_timeout
        try:
            with locks.held(name, blocking=wait, shared=True):
                entry = self.inventory.find_ready(folder, image_id)
                if entry is not None and entry.ready:
                    self._clone(volume, entry, placement)
                    return
        except exceptions.TemplateUnusable as exc:
            # Other clones may still read it: wait for them, then drop it so
            # the next request rebuilds it.
            self._delete_when_free(exc.entry, blocking=wait)
            raise
        with locks.held(name, blocking=wait):
            entry = self.inventory.find_ready(folder, image_id)
            filled = entry is None or not entry.ready
            if entry is not None and not entry.ready:
                LOG.warning("Removing unusable cache VM %s.", entry.name)
                self._destroy(entry)
            if filled:
                entry = self._fill(context, volume, image_service, meta)
            try:
                self._clone(volume, entry, placement)
            except exceptions.TemplateUnusable:
                with excutils.save_and_reraise_exception():
                    self._destroy(entry)
        if filled:
            self._enforce_caps()

    def _enforce_caps(self):
        # The volume exists by now: a failure here must not fail it.
        try:
            self._refresh(self.inventory.list_entries())
            # Victims in use by clones are waited for (as long as a request
            # waits for a fill), so the caps hold when this request ends.
            self._evict(self.policy.evictions(self._entries.values()),
                        blocking=self.policy.wait_timeout)
        except Exception:
            LOG.warning("Could not apply the image cache caps of backend "
                        "%s after a fill; the purge task retries.",
                        self.backend, exc_info=True)

    def _fill(self, context, volume, image_service, meta):
        """Import the image once, under a partial name, then publish it."""
        image_id = meta['id']
        fill = {
            'id': str(uuid.uuid4()),
            'name': inv.partial_name(image_id, uuid.uuid4().hex[:8]),
            # A volume of 0 GiB is invalid.
            'size': max(1, pol.gib(pol.image_size(meta))),
            'project_id': inv.project_name(self.backend),
            # Placement and adapter follow the first requester's type; the
            # disk type of each clone is converted to its own type.
            'volume_type_id': volume['volume_type_id'],
            'metadata': {},
        }
        LOG.info("Filling the image cache of backend %(be)s with image "
                 "%(img)s.", {'be': self.backend, 'img': image_id})
        try:
            self._stock.import_image(context, fill, image_service, image_id)
            vm = self._stock.volumeops.get_backing(fill['name'], fill['id'])
            if not self.inventory.disk_bytes(vm):
                raise exceptions.ImageCacheError(
                    'the imported disk of image %s holds no data' % image_id)
            size = self.inventory.disk_size(vm)
            self.inventory.publish(vm, image_id, size)
        except Exception:
            with excutils.save_and_reraise_exception():
                self._remove_backing(fill['name'], fill['id'])
        now = timeutils.utcnow()
        entry = pol.CacheEntry(image_id=image_id,
                               name=inv.template_name(image_id), ref=vm,
                               ready=True, size_bytes=size, created_at=now,
                               last_used=now)
        self._entries[entry.key] = entry
        return entry

    def _clone(self, volume, entry, placement):
        host, rp, folder, summary = placement
        vops = self._stock.volumeops
        self.inventory.touch(entry.ref)
        disk_type = self._stock.disk_type(volume)
        extra_config = dict(self._stock.extra_config(volume),
                            **_CLEARED_MARKERS)
        try:
            clone = vops.clone_backing(
                volume['name'], entry.ref, None, vops_mod.FULL_CLONE_TYPE,
                summary.datastore, disk_type=disk_type, host=host,
                resource_pool=rp, extra_config=extra_config, folder=folder)
        except Exception as exc:
            raise exceptions.TemplateUnusable(entry, exc)
        vops.update_backing_disk_uuid(clone, volume['id'])
        if volume['size'] * units.Gi > entry.size_bytes:
            self._stock.extend(clone, volume['size'], disk_type)

    def _remove_backing(self, name, backing_uuid):
        try:
            backing = self._stock.volumeops.get_backing(name, backing_uuid)
            if backing:
                self._stock.volumeops.delete_backing(backing)
        except Exception:
            LOG.warning("Could not remove partial backing %s.", name,
                        exc_info=True)

    # ---- expiry, eviction, accounting ----------------------------------
    def _refresh(self, entries):
        self._entries = {e.key: e for e in entries}

    def entries(self):
        """The entries of the last listing, kept current by our changes."""
        return list(self._entries.values())

    def list_all(self):
        """List every cache VM of the backend afresh (all datacenters)."""
        self._refresh(self.inventory.list_entries(
            self.inventory.discover_folders()))
        return self.entries()

    def provisioned_gb(self):
        """The cache's size for the scheduler, from the last listing."""
        return pol.gib(sum(e.size_bytes for e in self._entries.values()
                           if e.ready))

    def _destroy(self, entry):
        """Delete an entry whose image lock the caller holds exclusively.

        :returns: whether it is gone; a vCenter error is logged, and the
            next purge retries.
        """
        try:
            self.inventory.delete(entry.ref)
        except vexc.VimException:
            LOG.warning("Could not delete cache entry %s; the next purge "
                        "retries.", entry.name, exc_info=True)
            return False
        self._entries.pop(entry.key, None)
        LOG.info("Deleted cache entry %(name)s of backend %(be)s.",
                 {'name': entry.name, 'be': self.backend})
        return True

    def _delete_when_free(self, entry, blocking=False, keep_if=None):
        """Delete an entry once no request holds its image's lock.

        :param blocking: how long to wait for the lock, as for
            ``locks.held``; by default do not wait: an entry in use is kept.
        :param keep_if: re-checked under the lock; the entry is kept when
            it returns True.
        :returns: whether the entry was deleted.
        """
        name = locks.lock_name(self.backend, entry.image_id)
        try:
            with locks.held(name, blocking=blocking):
                if keep_if is not None and keep_if(entry):
                    return False
                return self._destroy(entry)
        except exceptions.CacheWaitTimeout:
            LOG.debug("Cache entry %s is in use; not deleted now.",
                      entry.name)
            return False

    def _used_since_listing(self, entry):
        """Whether an expired entry was used again (or went) since listed."""
        current = self.inventory.reread(entry.ref)
        return current is None or not self.policy.is_expired(
            current, timeutils.utcnow())

    def _evict(self, victims, blocking=False):
        """Delete victims; a number ``blocking`` bounds the total wait."""
        if blocking is False:
            return [e for e in victims if self._delete_when_free(e)]
        deadline = time.monotonic() + blocking
        return [e for e in victims if self._delete_when_free(
            e, blocking=max(0, deadline - time.monotonic()))]

    def purge(self, expired_only=True, image_id=None):
        """Re-list the cache and delete what the policy (or caller) says.

        With expired_only (the periodic task): expired templates, leftovers
        of interrupted fills, then least recently used templates until the
        caps hold. Otherwise every entry (of ``image_id`` when given).
        Returns the deleted entries.
        """
        entries = self.list_all()
        if image_id is not None:
            entries = [e for e in entries if e.image_id == image_id]
        if not expired_only:
            return self._evict(entries)
        now = timeutils.utcnow()
        deleted = [e for e in self.policy.expired(entries, now)
                   if self._delete_when_free(
                       e, keep_if=self._used_since_listing)]
        deleted += self._evict(self.policy.leftovers(entries, now))
        deleted += self._evict(self.policy.evictions(self._entries.values()))
        return deleted

    # ---- periodic task -------------------------------------------------
    def start(self):
        """Start the periodic purge once; list the cache for stats first."""
        if self._loop is not None:
            return
        try:
            self.list_all()
        except Exception:
            LOG.warning("Could not list the image cache of backend %s at "
                        "start; the periodic task retries.", self.backend,
                        exc_info=True)
        if not self.policy.enabled and not self._entries:
            return
        self._loop = loopingcall.FixedIntervalLoopingCall(self._periodic)
        self._loop.start(interval=self.policy.purge_interval,
                         initial_delay=min(_FIRST_PURGE_DELAY,
                                           self.policy.purge_interval),
                         stop_on_exception=False)

    def stop(self):
        if self._loop is not None:
            self._loop.stop()
            self._loop = None

    def _periodic(self):
        try:
            self.purge()
        except Exception:
            LOG.warning("Image cache purge of backend %s failed; the next "
                        "run retries and stats keep the last listing.",
                        self.backend, exc_info=True)
            return
        if not self.policy.enabled and not self._entries:
            LOG.info("Image cache of backend %s is disabled and empty; "
                     "stopping its purge task.", self.backend)
            self._loop = None
            raise loopingcall.LoopingCallDone()
