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

"""The image-template cache of one backend: serve, fill, seed, warm.

The driver hands every create-from-image request here first. A request
served here returns True; any other outcome returns False and the driver
runs the stock download path, so a cache problem never costs a volume.

Each datastore holds its own copy of an image (``inventory``): a request
is placed next to a copy where the stock selection allows (``placement``),
a datastore without one gets a copy seeded from another datastore of the
datacenter, and only a datacenter without any copy imports the image from
Glance. What is counted and deleted is ``upkeep``'s.
"""

import contextlib
import dataclasses
import time
import uuid

from cinder.volume import volume_types
from oslo_log import log as logging
from oslo_utils import excutils
from oslo_utils import timeutils
from oslo_utils import units
from oslo_vmware import vim_util

from cinder_vmware_cache import exceptions
from cinder_vmware_cache import faults
from cinder_vmware_cache import hang
from cinder_vmware_cache import inventory as inv
from cinder_vmware_cache import locks
from cinder_vmware_cache import notify
from cinder_vmware_cache import placement
from cinder_vmware_cache import policy as pol
from cinder_vmware_cache import request
from cinder_vmware_cache import upkeep

LOG = logging.getLogger(__name__)

# Cleared in a clone's extraConfig so a volume never looks like a cache entry.
_CLEARED_MARKERS = {key: '' for key in inv.MARKERS}

# Failures a request may meet in normal operation: no traceback in the log,
# and the reason image_cache_result gives.
_EXPECTED_FAILURES = {exceptions.CacheWaitTimeout: 'wait timeout',
                      exceptions.TaskHung: 'task timeout'}

# How a request or warm added a copy (None: it used one that was there).
ADDED_FILLED = 'filled'
ADDED_SEEDED = 'seeded'


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the cache did with a create-from-image request.

    ``result`` is the value for the volume's ``image_cache_result``
    metadata key, None when the request did not ask for the cache.
    """

    served: bool
    result: str = None


def _usable(copies, adapter):
    """The ready copies whose disk has ``adapter``.

    Or an unknown one: the previous release did not record it.
    """
    return [c for c in copies
            if c.ready and c.adapter_type in (None, adapter)]


def _type_extra_specs(volume):
    type_id = volume.get('volume_type_id') if hasattr(volume, 'get') else None
    return volume_types.get_volume_type_extra_specs(type_id) if type_id else {}


class ImageTemplateCache(upkeep.Upkeep):
    """The image-template cache of one backend.

    Serves create-from-image requests from ready copies (seeding or
    filling on a miss), warms images ahead of use and keeps
    ``image_cache_warm_images`` cached; counting, expiry, eviction and the
    periodic purge are ``upkeep.Upkeep``'s, with the same arguments.
    """

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
            entry, added = self._serve(context, volume, image_service, meta)
        except Exception as exc:
            expected = isinstance(exc, tuple(_EXPECTED_FAILURES))
            LOG.warning("Image cache could not serve volume %(vol)s from "
                        "image %(img)s (%(exc)s); using the normal path.",
                        {'vol': volume['id'], 'img': image_id,
                         'exc': exc}, exc_info=not expected)
            self._remove_backing(volume['name'], volume['id'])
            return Outcome(False, request.not_used(
                _EXPECTED_FAILURES.get(type(exc), 'cache error')))
        LOG.info("Volume %(vol)s cloned from the cached template of image "
                 "%(img)s.", {'vol': volume['id'], 'img': image_id})
        filled = added == ADDED_FILLED
        self._notifier.emit(notify.MISS if filled else notify.HIT, entry,
                            context, started, volume_id=volume['id'],
                            trigger=notify.TRIGGER_REQUEST)
        return Outcome(True, request.RESULT_FILLED if filled
                       else request.RESULT_HIT)

    def _serve(self, context, volume, image_service, meta):
        """Clone ``volume``; returns (the copy it read, how it was added)."""
        candidates = self._stock.candidates(volume)
        choice = self._stock.place(volume, candidates)
        return self._with_copy(
            context, volume, image_service, meta, candidates, choice,
            lambda entry, target, _added: self._clone(volume, entry, target),
            notify.TRIGGER_REQUEST)

    def warm(self, context, image_service, image_id,
             trigger=notify.TRIGGER_COMMAND, datastores=None):
        """Fill the cache with an image ahead of use, as a request would.

        Same checks and locks as a request; the volume type is the
        default one. A cached copy only has its last use refreshed.

        :param datastores: datastore names to put a copy on (seeded from a
            copy in the datacenter where there is one); default: the one
            the stock selection chooses.
        :returns: [(the ready CacheEntry, ADDED_* or None)], one per
            datastore.
        :raises ImageNotCacheable: the policy refuses the image.
        :raises DatastoreNotEligible: a named datastore is not one the
            backend may place the image on, or its name is ambiguous.
        """
        meta = image_service.show(context, image_id)
        refusal = self.policy.refusal(meta)
        if refusal:
            raise exceptions.ImageNotCacheable(str(refusal))
        fill = self._fill_spec(meta)
        candidates = self._stock.candidates(fill)
        targets = [self._stock.place(fill, candidates)] if not datastores \
            else [self._stock.place(fill, candidates, subset)
                  for subset in self._named(candidates, datastores)]
        done = []
        for target in targets:
            started = time.monotonic()
            entry, added = self._with_copy(
                context, fill, image_service, meta, candidates, target,
                self._touch_if_found, trigger, pinned=True)
            if added == ADDED_FILLED:
                self._notifier.emit(notify.MISS, entry, context, started,
                                    trigger=trigger)
            done.append((entry, added))
        return done

    @staticmethod
    def _named(candidates, names):
        subsets = []
        for name, found in placement.by_name(candidates, names).items():
            if not found:
                raise exceptions.DatastoreNotEligible(
                    'datastore %s is not one this backend may place the '
                    'image on (vmware_datastore_regex, clusters, free '
                    'space, maintenance, accessibility)' % name)
            if len(found) > 1:
                raise exceptions.DatastoreNotEligible(
                    'datastore name %s is ambiguous: %d datastores of the '
                    'backend carry it' % (name, len(found)))
            subsets.append(found)
        return subsets

    def _touch_if_found(self, entry, target, added):
        # A copy made now carries its last use already.
        if added is None:
            self.inventory.record_use(entry.ref, entry.name)

    def _with_copy(self, context, spec, image_service, meta, candidates,
                   choice, use, trigger, pinned=False):
        """Call ``use(copy, target, added)`` with a copy for the request.

        The copy is one on the target datastore: found, seeded from
        another datastore of the datacenter, or filled from Glance when the
        datacenter has none. Finding one takes no lock, so concurrent hits
        run in parallel on every host; a seed takes the lock of its
        datastore and a fill the image's lock, each waiting for what is
        left of one image_cache_wait_timeout. A copy that ``use`` finds
        broken is dropped in the background (``upkeep.Upkeep._delete``).

        :param spec: the volume (or fill volume) to place.
        :param choice: the stock Placement of ``spec``.
        :param pinned: use ``choice`` as the target, never prefer another.
        :returns: (the copy, ADDED_FILLED, ADDED_SEEDED or None).
        """
        image_id = meta['id']
        adapter = self._stock.adapter_type(spec, meta)
        folder = self.inventory.folder_for(choice.datacenter)
        name = locks.lock_name(self.backend, image_id)
        deadline = locks.Deadline(self.policy.wait_timeout)

        def local_copy(ready, exclusive):
            target = choice if pinned else self._target(
                spec, candidates, choice, ready)
            return self._local_copy(context, folder, target, ready, adapter,
                                    exclusive, trigger, deadline) + (target,)

        try:
            known = self._known_local(folder, image_id, adapter, spec,
                                      candidates, choice, pinned)
            if known is not None:
                entry, added, target = known[0], None, known[1]
            else:
                ready = _usable(self._list_copies(folder, image_id), adapter)
                if ready:
                    entry, added, target = local_copy(ready, exclusive=False)
                else:
                    with locks.held(name, blocking=deadline.left()):
                        entry, added, target = self._fill_or_find(
                            context, spec, image_service, meta, folder,
                            choice if pinned else self._fresh_choice(
                                spec, choice), adapter, local_copy)
            use(entry, target, added)
        except exceptions.TemplateUnusable as exc:
            # Other clones may still read it: wait for them, then drop it so
            # the next request rebuilds it; the request falls back meanwhile.
            wait = self.policy.wait_timeout
            self._in_background(
                'drop', self._delete,
                [(exc.entry, upkeep.REASON_UNUSABLE, None)],
                wait=wait, lock_wait=wait)
            raise
        self._after_adding(added, trigger)
        return entry, added

    def _fresh_choice(self, spec, choice):
        """The stock choice from fresh reads, for a fill.

        The stock import picks its own temporary folder from fresh reads;
        a fill placed by the snapshot's older free space could land apart
        from it, and the import would then copy its disk once more. Kept
        in the datacenter of ``choice``, whose copies were listed.
        """
        self._stock.snapshot.clear()
        fresh = self._stock.place(spec, self._stock.candidates(spec))
        return fresh if fresh.datacenter == choice.datacenter else choice

    def _fill_or_find(self, context, spec, image_service, meta, folder,
                      choice, adapter, local_copy):
        """Under the image's lock: a copy another request added, or a fill.

        :returns: (the copy, how it was added, the target to clone to).
        """
        image_id = meta['id']
        copies = self._list_copies(folder, image_id)
        ready = _usable(copies, adapter)
        if ready:
            return local_copy(ready, exclusive=True)
        entry = self._fill(
            context, self._fill_spec(meta, spec), image_service, meta,
            dataclasses.replace(choice, folder=folder),
            self._fill_name(image_id, copies, choice, adapter), adapter)
        return entry, ADDED_FILLED, choice

    def _known_local(self, folder, image_id, adapter, spec, candidates,
                     choice, pinned):
        """(copy, target) from what this process knows, or None.

        The copies of the last listing (kept current by this process's own
        changes) decide the target, so that a hit never lists the cache
        folder, whose size is the cache's. The copy on it is used as known
        when seen within policy.known_copy_seconds, else re-read (one VM);
        one that is gone or changed sends the caller to the listing.
        """
        value = vim_util.get_moref_value(folder)
        known = _usable([e for e in self._entries.values()
                         if e.image_id == image_id and e.folder == value],
                        adapter)
        if not known:
            return None
        target = choice if pinned else self._target(spec, candidates, choice,
                                                    known)
        for entry in known:
            if entry.datastore != target.datastore:
                continue
            if self._seen_within(entry, self.policy.known_copy_seconds):
                return entry, target
            current = self.inventory.reread(entry.ref)
            if current is not None and _usable([current], adapter):
                self._know([current])
                return current, target
            self._forget([entry.key])
        return None

    def _list_copies(self, folder, image_id):
        """The image's VMs in the folder, as vCenter lists them now."""
        copies = self.inventory.copies(folder, image_id)
        value = vim_util.get_moref_value(folder)
        self._forget([k for k, e in self._entries.items()
                      if e.image_id == image_id and e.folder == value])
        self._know(copies)
        return copies

    def _fill_name(self, image_id, copies, target, adapter):
        """The name of a new copy filled from Glance.

        The plain name when no copy holds it, so that hosts of the previous
        release find it; a not-ready VM that holds it (a crash of the
        previous release between its rename and MarkAsTemplate) is removed
        first. Under the image's exclusive lock.
        """
        plain = inv.template_name(image_id)
        holders = [c for c in copies if c.name == plain]
        for entry in holders:
            if not entry.ready:
                LOG.warning("Removing unusable cache VM %s.", entry.name)
                self._destroy(entry, upkeep.REASON_UNUSABLE)
        if any(c.ready for c in holders):
            return inv.template_name(image_id, inv.copy_key(
                target.datastore, adapter))
        return plain

    def _target(self, volume, candidates, choice, ready):
        """The placement of a volume, preferring datastores with a copy."""
        if not self.policy.prefers_cached:
            return choice
        subset = placement.preferred(
            candidates, {c.datastore for c in ready}, choice,
            self.policy.placement_max_utilization)
        if not subset:
            return choice
        try:
            return self._stock.place(volume, candidates, subset)
        except Exception as exc:
            LOG.debug("No usable host on a datastore holding a copy (%s); "
                      "keeping the stock choice.", exc)
            return choice

    def _local_copy(self, context, folder, target, ready, adapter, exclusive,
                    trigger, deadline):
        """The copy to clone from for ``target``: (entry, added).

        One on the target datastore when there is one; otherwise one is
        seeded there, unless image_cache_max_copies_per_image is reached,
        when the clone reads a copy on another datastore.
        """
        local = [c for c in ready if c.datastore == target.datastore]
        if local:
            return local[0], None
        if not self.policy.may_add_copy(ready):
            return ready[0], None
        return self._seed(context, folder, target, ready[0], adapter,
                          exclusive, trigger, deadline)

    def _seed(self, context, folder, target, source, adapter, exclusive,
              trigger, deadline):
        """Copy ``source`` to the target datastore: (entry, added).

        One seed per (backend, image, datastore) across hosts; a request
        that waited for another's seed uses its copy.
        """
        ds_key = inv.copy_key(target.datastore, source.adapter_type)
        lock = contextlib.nullcontext() if exclusive else locks.held(
            locks.lock_name(self.backend, source.image_id, ds_key),
            blocking=deadline.left())
        with lock:
            if not exclusive:
                for copy in _usable(self._list_copies(
                        folder, source.image_id), adapter):
                    if copy.datastore == target.datastore:
                        return copy, None
            started = time.monotonic()
            name = inv.template_name(source.image_id, ds_key)
            LOG.info("Seeding the image cache of backend %(be)s: copy of "
                     "image %(img)s to datastore %(ds)s.",
                     {'be': self.backend, 'img': source.image_id,
                      'ds': target.summary.name})
            self._confirm(source)
            try:
                # A seed given up on leaves a partial copy for the purge.
                with hang.bounded(self.policy.task_timeout,
                                  'the seed of %s' % name):
                    vm = self.inventory.seed(source, name, dataclasses.replace(
                        target, folder=folder))
            except Exception as exc:
                raise exceptions.ImageCacheError(
                    'seeding a copy of image %s on datastore %s failed: %s'
                    % (source.image_id, target.summary.name, exc))
        self._stock.took_space(target, source.size_bytes)
        entry = self._remember(source.image_id, name, vm, source.size_bytes,
                               target.datastore, source.folder,
                               source.adapter_type)
        self._notifier.emit(notify.SEED, entry, context, started,
                            trigger=trigger, source_template=source.name,
                            source_datastore=source.datastore)
        return entry, ADDED_SEEDED

    def _remember(self, image_id, name, vm, size, datastore, folder,
                  adapter):
        """The entry of a copy just published, kept for the stats."""
        now = timeutils.utcnow()
        entry = pol.CacheEntry(image_id=image_id, name=name, ref=vm,
                               ready=True, size_bytes=size,
                               datastore=datastore, created_at=now,
                               last_used=now, folder=folder,
                               adapter_type=adapter)
        self._know([entry])
        return entry

    def _after_adding(self, added, trigger):
        """Apply the caps after a copy was added.

        A request's volume exists by now and never waits for the eviction,
        which runs in the background; a command or the periodic task
        applies them before it returns.
        """
        if added is None or not self.policy.capped:
            return
        if trigger == notify.TRIGGER_REQUEST:
            self._enforce_caps_soon(trigger)
        else:
            self._enforce_caps(trigger)

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
            'volume_type_id': (volume or {}).get('volume_type_id'),
            'metadata': {},
        }

    def _fill(self, context, fill, image_service, meta, target, name,
              adapter):
        """Import the image once, under a partial name, then publish it.

        :param target: the Placement of the new copy, in the cache folder:
            the datastore the request clones to, so fill and clone agree.
        :param name: the new copy's final name.
        :param adapter: the adapter type the stock import gives its disk.
        """
        image_id = meta['id']
        LOG.info("Filling the image cache of backend %(be)s with image "
                 "%(img)s on datastore %(ds)s.",
                 {'be': self.backend, 'img': image_id,
                  'ds': target.summary.name})
        try:
            with hang.bounded(self.policy.task_timeout,
                              'the fill of image %s' % image_id):
                self._stock.import_image(context, fill, image_service,
                                         image_id, target)
            vm = self._stock.volumeops.get_backing(fill['name'], fill['id'])
            if not self.inventory.disk_bytes(vm, target.summary.datastore):
                raise exceptions.ImageCacheError(
                    'the imported disk of image %s holds no data' % image_id)
            size = self.inventory.disk_size(vm)
            self.inventory.publish(vm, image_id, size, target.datastore,
                                   name, adapter)
        except Exception:
            with excutils.save_and_reraise_exception():
                self._remove_backing(fill['name'], fill['id'])
        self._stock.took_space(target, size)
        return self._remember(image_id, name, vm, size, target.datastore,
                              vim_util.get_moref_value(target.folder),
                              adapter)

    def _record_use(self, entry):
        """Note a use of a copy; record it in vCenter when due.

        As relatime: the recorded last use (``entry``'s, as vCenter has it)
        is rewritten only when older than policy.use_record_seconds, in the
        background, once at a time per copy; so a burst of hits costs no
        SetField each, and a request never waits for one.
        """
        now = timeutils.utcnow()
        self._uses[entry.key] = now
        if entry.last_used is not None and (
                now - entry.last_used).total_seconds() < (
                self.policy.use_record_seconds):
            return
        with self._guard:
            if entry.key in self._recording:
                return
            self._recording.add(entry.key)
        self._in_background('last use', self._write_use, entry, now)

    def _write_use(self, entry, when):
        try:
            if self.inventory.record_use(entry.ref, entry.name):
                known = self._entries.get(entry.key)
                if known is not None:
                    self._entries[entry.key] = dataclasses.replace(
                        known, last_used=when)
        finally:
            with self._guard:
                self._recording.discard(entry.key)

    def _confirm(self, entry):
        """Re-read a copy last seen over policy.clone_start_seconds ago.

        A deletion retires a copy, then waits retire_grace_seconds for
        the clones of those who saw it before to show as tasks; a hit that
        has not sent its clone by clone_start_seconds looks again.
        """
        if self._seen_within(entry, self.policy.clone_start_seconds):
            return
        current = self.inventory.reread(entry.ref)
        if current is None or not current.ready:
            self._forget([entry.key])
            raise exceptions.ImageCacheError(
                'cache entry %s was deleted or retired meanwhile' %
                entry.name)
        self._know([current])

    def _clone(self, volume, entry, target):
        vops = self._stock.volumeops
        self._confirm(entry)
        self._record_use(entry)
        disk_type = self._stock.disk_type(volume)
        extra_config = dict(self._stock.extra_config(volume),
                            **_CLEARED_MARKERS)
        try:
            clone = self._stock.clone_template(
                volume['name'], entry.ref, target, disk_type, extra_config,
                timeout=self.policy.task_timeout)
        except Exception as exc:
            # The datastore may be fuller than the snapshot says.
            self._stock.snapshot.clear()
            if isinstance(exc, exceptions.TaskHung):
                raise
            if self._broken(entry, exc):
                raise exceptions.TemplateUnusable(entry, exc)
            raise exceptions.ImageCacheError(
                'cloning %s to datastore %s failed (%s); the copy is kept'
                % (entry.name, target.summary.name, exc))
        self._stock.took_space(target, volume['size'] * units.Gi)
        vops.update_backing_disk_uuid(clone, volume['id'])
        # As the stock image path: the volume type's storage profile.
        profile_id = self._stock.storage_profile_id(volume)
        if profile_id:
            vops.change_backing_profile(clone, profile_id)
        if volume['size'] * units.Gi > entry.size_bytes:
            self._stock.extend(clone, volume['size'], disk_type)

    def _broken(self, entry, exc):
        """Whether a failed clone shows its source copy broken."""
        try:
            current = self.inventory.reread(entry.ref)
        except Exception:
            LOG.debug("Could not re-read cache VM %s after a failed clone.",
                      entry.name, exc_info=True)
            current = entry
        return faults.template_broken(exc, current)

    def _remove_backing(self, name, backing_uuid):
        try:
            backing = self._stock.volumeops.get_backing(name, backing_uuid)
            if backing:
                self._stock.volumeops.delete_backing(backing)
        except Exception:
            LOG.warning("Could not remove partial backing %s.", name,
                        exc_info=True)

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
                             trigger=notify.TRIGGER_PERIODIC)[0][1]:
                    filled.append(image_id)
            except Exception as exc:
                self._say_once(
                    ('warm', image_id, str(exc)),
                    'Could not warm image %s of image_cache_warm_images '
                    '(%s); the periodic task retries.', image_id, exc)
        return filled
