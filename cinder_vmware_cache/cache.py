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

import dataclasses
import time
import uuid

from cinder.volume.drivers.vmware import volumeops as vops_mod
from cinder.volume import volume_types
from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import loopingcall
from oslo_utils import excutils
from oslo_utils import timeutils
from oslo_utils import units
from oslo_vmware import exceptions as vexc
from oslo_vmware import vim_util

from cinder_vmware_cache import exceptions
from cinder_vmware_cache import inventory as inv
from cinder_vmware_cache import locks
from cinder_vmware_cache import notify
from cinder_vmware_cache import policy as pol
from cinder_vmware_cache import request

LOG = logging.getLogger(__name__)

# Cleared in a clone's extraConfig so a volume never looks like a cache entry.
_CLEARED_MARKERS = {key: '' for key in inv.MARKERS}
_FIRST_PURGE_DELAY = 60

# Why an entry is deleted, and the event that tells it.
REASON_EXPIRED = 'expired'
REASON_OVER_CAP = 'over cap'
REASON_LEFTOVER = 'leftover'
REASON_IMAGE_DELETED = 'image deleted'
REASON_UNUSABLE = 'unusable'
REASON_OPERATOR = 'operator'
_DELETION_EVENTS = {REASON_EXPIRED: notify.EXPIRE,
                    REASON_OVER_CAP: notify.EVICT}


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the cache did with a create-from-image request.

    ``result`` is the value for the volume's ``image_cache_result``
    metadata key, None when the request did not ask for the cache.
    """

    served: bool
    result: str = None


def _type_extra_specs(volume):
    type_id = volume.get('volume_type_id') if hasattr(volume, 'get') else None
    return volume_types.get_volume_type_extra_specs(type_id) if type_id else {}


class ImageTemplateCache(object):
    """The image-template cache of one backend.

    Serves create-from-image requests from ready templates (filling the
    cache on a miss), keeps the backend's view of its entries for the
    stats, and runs the periodic purge of expired entries, leftovers of
    interrupted fills, templates of images deleted in Glance and entries
    over the caps, and keeps ``image_cache_warm_images`` cached.

    :param stock: the backend's ``stock.StockDriver``; None for a cache
        that only lists and purges (the operator command).
    :param policy: the backend's ``policy.CachePolicy``.
    :param inventory: the backend's ``inventory.TemplateInventory``.
    :param images: an ``image_access.GlanceImages``; None: no Glance
        access of the cache's own (no deleted-image check, no warm list).
    :param notifier: a ``notify.Notifier``.
    """

    def __init__(self, stock, policy, inventory, images=None, notifier=None):
        self._stock = stock
        self.policy = policy
        self.inventory = inventory
        self.backend = inventory.backend
        self._images = images
        self._notifier = notifier or notify.Notifier(self.backend,
                                                     cfg.CONF.host)
        self._entries = {}
        self._loop = None
        self._said = set()

    def _say_once(self, key, message, *args):
        """Log a warning the first time only: periodic runs repeat it."""
        if key in self._said:
            LOG.debug(message, *args)
            return
        self._said.add(key)
        LOG.warning(message, *args)

    # ---- request path --------------------------------------------------
    def create_volume(self, context, volume, image_meta, image_service):
        """Create ``volume`` from the cached template of its image.

        Returns an Outcome; when it is not served the caller takes the
        normal path. Errors of Glance's access check propagate: a user who
        cannot show the image gets no volume from its cached copy either.
        """
        image_id = image_meta['id']
        asked = request.resolve(request.volume_metadata(volume),
                                _type_extra_specs(volume),
                                image_meta.get('properties'))
        if not asked.requested:
            return Outcome(False, request.not_used(
                'invalid %s value' % asked.source) if asked.invalid else None)
        # The user's own context must still see the image (it may have been
        # made private or deleted since it was cached).
        meta = image_service.show(context, image_id)
        refusal = self.policy.refusal(meta)
        if refusal:
            LOG.info("Volume %(vol)s asked for the image cache (%(src)s) "
                     "but %(why)s; using the normal path.",
                     {'vol': volume['id'], 'src': asked.source,
                      'why': refusal})
            return Outcome(False, request.not_used(refusal.reason))
        started = time.monotonic()
        try:
            entry, filled = self._serve(context, volume, image_service, meta)
        except Exception as exc:
            LOG.warning("Image cache could not serve volume %(vol)s from "
                        "image %(img)s (%(exc)s); using the normal path.",
                        {'vol': volume['id'], 'img': image_id,
                         'exc': exc},
                        exc_info=not isinstance(
                            exc, exceptions.CacheWaitTimeout))
            self._remove_backing(volume['name'], volume['id'])
            return Outcome(False, request.not_used(
                'wait timeout' if isinstance(exc, exceptions.CacheWaitTimeout)
                else 'cache error'))
        LOG.info("Volume %(vol)s cloned from the cached template of image "
                 "%(img)s.", {'vol': volume['id'], 'img': image_id})
        self._notifier.emit(notify.MISS if filled else notify.HIT, entry,
                            context, started, volume_id=volume['id'],
                            trigger=notify.TRIGGER_REQUEST)
        return Outcome(True, request.RESULT_FILLED if filled
                       else request.RESULT_HIT)

    def _serve(self, context, volume, image_service, meta):
        """Clone ``volume``; returns (the template, whether it was filled)."""
        image_id = meta['id']
        placement, folder = self._placement(volume)
        name = locks.lock_name(self.backend, image_id)
        wait = self.policy.wait_timeout
        try:
            with locks.held(name, blocking=wait, shared=True):
                entry = self.inventory.find_ready(folder, image_id)
                if entry is not None and entry.ready:
                    self._clone(volume, entry, placement)
                    return entry, False
        except exceptions.TemplateUnusable as exc:
            # Other clones may still read it: wait for them, then drop it so
            # the next request rebuilds it.
            self._delete_when_free(exc.entry, REASON_UNUSABLE,
                                   blocking=wait)
            raise
        with locks.held(name, blocking=wait):
            entry, filled = self._ready_or_fill(
                context, folder, self._fill_spec(meta, volume), image_service,
                meta)
            try:
                self._clone(volume, entry, placement)
            except exceptions.TemplateUnusable:
                with excutils.save_and_reraise_exception():
                    self._destroy(entry, REASON_UNUSABLE)
        if filled:
            self._enforce_caps(notify.TRIGGER_REQUEST)
        return entry, filled

    def warm(self, context, image_service, image_id,
             trigger=notify.TRIGGER_COMMAND):
        """Fill the cache with an image ahead of use, as a request would.

        Same checks and locks as a request; the volume type is the
        default one. A cached image only has its last use refreshed.

        :returns: (the ready CacheEntry, whether it was filled now).
        :raises ImageNotCacheable: the policy refuses the image.
        """
        started = time.monotonic()
        meta = image_service.show(context, image_id)
        refusal = self.policy.refusal(meta)
        if refusal:
            raise exceptions.ImageNotCacheable(str(refusal))
        fill = self._fill_spec(meta)
        folder = self._placement(fill)[1]
        with locks.held(locks.lock_name(self.backend, image_id),
                        blocking=self.policy.wait_timeout):
            entry, filled = self._ready_or_fill(context, folder, fill,
                                                image_service, meta)
            if not filled:
                self.inventory.touch(entry.ref)
        if filled:
            self._enforce_caps(trigger)
            self._notifier.emit(notify.MISS, entry, context, started,
                                trigger=trigger)
        return entry, filled

    def _placement(self, volume):
        """The stock placement of ``volume``, and the cache folder there."""
        placement = self._stock.placement(volume)
        return placement, self.inventory.folder_for(
            self._stock.datacenter(placement[1]))

    def _ready_or_fill(self, context, folder, fill, image_service, meta):
        """Under the image's exclusive lock: (ready entry, filled now)."""
        entry = self.inventory.find_ready(folder, meta['id'])
        if entry is not None and entry.ready:
            return entry, False
        if entry is not None:
            LOG.warning("Removing unusable cache VM %s.", entry.name)
            self._destroy(entry, REASON_UNUSABLE)
        return self._fill(context, fill, image_service, meta), True

    def _enforce_caps(self, trigger):
        # The volume exists by now: a failure here must not fail it.
        try:
            self._refresh(self.inventory.list_entries())
            # Victims in use by clones are waited for (as long as a request
            # waits for a fill), so the caps hold when this request ends.
            self._evict(self.policy.evictions(self._entries.values()),
                        REASON_OVER_CAP, trigger,
                        blocking=self.policy.wait_timeout)
        except Exception:
            LOG.warning("Could not apply the image cache caps of backend "
                        "%s after a fill; the purge task retries.",
                        self.backend, exc_info=True)

    def _fill_spec(self, meta, volume=None):
        """The volume the stock import creates under a partial name."""
        image_id = meta['id']
        return {
            'id': str(uuid.uuid4()),
            'name': inv.partial_name(image_id, uuid.uuid4().hex[:8]),
            # A volume of 0 GiB is invalid.
            'size': max(1, pol.gib(pol.image_size(meta))),
            'project_id': inv.project_name(self.backend),
            # Placement and adapter follow the first requester's type; the
            # disk type of each clone is converted to its own type.
            'volume_type_id': volume['volume_type_id'] if volume else None,
            'metadata': {},
        }

    def _fill(self, context, fill, image_service, meta):
        """Import the image once, under a partial name, then publish it."""
        image_id = meta['id']
        LOG.info("Filling the image cache of backend %(be)s with image "
                 "%(img)s.", {'be': self.backend, 'img': image_id})
        try:
            self._stock.import_image(context, fill, image_service, image_id)
            vm = self._stock.volumeops.get_backing(fill['name'], fill['id'])
            datastore = self._stock.volumeops.get_datastore(vm)
            if not self.inventory.disk_bytes(vm, datastore):
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
                               ready=True, size_bytes=size,
                               datastore=vim_util.get_moref_value(datastore),
                               created_at=now,
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

    def _destroy(self, entry, reason, trigger=notify.TRIGGER_REQUEST):
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
        LOG.info("Deleted cache entry %(name)s of backend %(be)s "
                 "(%(why)s).", {'name': entry.name, 'be': self.backend,
                                'why': reason})
        self._notifier.emit(_DELETION_EVENTS.get(reason, notify.PURGE),
                            entry, reason=reason, trigger=trigger)
        return True

    def _delete_when_free(self, entry, reason, trigger=notify.TRIGGER_REQUEST,
                          blocking=False, keep_if=None):
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
                return self._destroy(entry, reason, trigger)
        except exceptions.CacheWaitTimeout:
            LOG.debug("Cache entry %s is in use; not deleted now.",
                      entry.name)
            return False

    def _used_since_listing(self, entry):
        """Whether an expired entry was used again (or went) since listed."""
        current = self.inventory.reread(entry.ref)
        return current is None or not self.policy.is_expired(
            current, timeutils.utcnow())

    def _evict(self, victims, reason, trigger, blocking=False):
        """Delete victims; a number ``blocking`` bounds the total wait."""
        if blocking is False:
            return [e for e in victims
                    if self._delete_when_free(e, reason, trigger)]
        deadline = time.monotonic() + blocking
        return [e for e in victims if self._delete_when_free(
            e, reason, trigger,
            blocking=max(0, deadline - time.monotonic()))]

    def _images_deleted(self, entries):
        """Entries whose image Glance answers 404 for (never on doubt)."""
        if self._images is None:
            return []
        gone = self._images.deleted({e.image_id for e in entries})
        return [e for e in entries if e.image_id in gone]

    def purge(self, expired_only=True, image_id=None,
              trigger=notify.TRIGGER_COMMAND):
        """Re-list the cache and delete what the policy (or caller) says.

        With expired_only (the periodic task): expired templates, leftovers
        of interrupted fills, templates of images deleted in Glance, then
        least recently used templates until the caps hold. Otherwise every
        entry (of ``image_id`` when given). Returns the deleted entries.
        """
        entries = self.list_all()
        if image_id is not None:
            entries = [e for e in entries if e.image_id == image_id]
        if not expired_only:
            return self._evict(entries, REASON_OPERATOR, trigger)
        now = timeutils.utcnow()
        deleted = [e for e in self.policy.expired(entries, now)
                   if self._delete_when_free(
                       e, REASON_EXPIRED, trigger,
                       keep_if=self._used_since_listing)]
        deleted += self._evict(self.policy.leftovers(entries, now),
                               REASON_LEFTOVER, trigger)
        deleted += self._evict(self._images_deleted(self.entries()),
                               REASON_IMAGE_DELETED, trigger)
        deleted += self._evict(self.policy.evictions(self._entries.values()),
                               REASON_OVER_CAP, trigger)
        self._check_warm_overflow()
        return deleted

    def _check_warm_overflow(self):
        overflow = self.policy.warm_overflow(self._entries.values())
        if overflow:
            self._say_once('warm overflow', 'Image cache of backend %s: %s.',
                           self.backend, overflow)

    def keep_warm(self):
        """Fill every image of image_cache_warm_images that is not cached.

        :returns: the image ids filled now.
        """
        cached = {e.image_id for e in self._entries.values() if e.ready}
        missing = [i for i in self.policy.warm_images if i not in cached]
        if not missing or self._images is None:
            return []
        context = self._images.context()
        if context is None:
            self._say_once('warm without credentials',
                           'image_cache_warm_images of backend %s is not '
                           'kept warm: cinder has no Glance credentials of '
                           'its own ([service_user] or [glance]).',
                           self.backend)
            return []
        filled = []
        for image_id in missing:
            try:
                if self.warm(context, self._images.service, image_id,
                             trigger=notify.TRIGGER_PERIODIC)[1]:
                    filled.append(image_id)
            except Exception as exc:
                self._say_once(
                    ('warm', image_id, str(exc)),
                    'Could not warm image %s of image_cache_warm_images '
                    '(%s); the periodic task retries.', image_id, exc)
        return filled

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
        self._check_warm_overflow()
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
            self.purge(trigger=notify.TRIGGER_PERIODIC)
            if self.policy.enabled:
                self.keep_warm()
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
