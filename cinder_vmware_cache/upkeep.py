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

"""The cache's upkeep: what it counts, what it deletes and when.

The half of ``cache.ImageTemplateCache`` that works without a request: the
backend's view of its copies for the stats, deletions under the image lock
(with their notifications), the purge of expired copies, leftovers,
copies of images deleted in Glance and copies over the caps, and the
periodic task that runs it. The operator command uses it without a stock
driver.
"""

import dataclasses
import threading
import time

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import loopingcall
from oslo_utils import timeutils

from cinder_vmware_cache import exceptions
from cinder_vmware_cache import inventory as inv
from cinder_vmware_cache import locks
from cinder_vmware_cache import notify
from cinder_vmware_cache import policy as pol

LOG = logging.getLogger(__name__)

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


class Upkeep(object):
    """Counting, deleting and the periodic purge of one backend's cache.

    :param stock: the backend's ``stock.StockDriver``; None for a cache
        that only lists and purges (the operator command).
    :param policy: the backend's ``policy.CachePolicy``.
    :param inventory: the backend's ``inventory.TemplateInventory``.
    :param images: an ``image_access.GlanceImages``; None: no Glance
        access of the cache's own (no deleted-image check, no warm list).
    :param notifier: a ``notify.Notifier``.

    The periodic task also calls ``keep_warm()``, which the subclass gives.
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
        # When each entry was last seen in vCenter (time.monotonic()).
        self._seen = {}
        self._served = None
        self._loop = None
        self._said = set()
        self._guard = threading.Lock()
        self._background = []
        self._caps_due = self._caps_running = False
        # Uses this process made that vCenter may not have recorded yet
        # (policy.use_record_seconds), by entry key.
        self._uses = {}
        self._recording = set()
        self._sleep = time.sleep

    def _say_once(self, key, message, *args):
        """Log a warning the first time only: periodic runs repeat it."""
        if key in self._said:
            LOG.debug(message, *args)
            return
        self._said.add(key)
        LOG.warning(message, *args)

    # ---- background work -----------------------------------------------
    def _in_background(self, what, func, *args, **kwargs):
        """Run work a request must not wait for; errors are logged.

        A thread: green under cinder's eventlet patching, native in its
        threading mode.
        """
        thread = threading.Thread(target=self._logged,
                                  args=(what, func) + args, kwargs=kwargs,
                                  name='image-cache-%s' % what, daemon=True)
        with self._guard:
            self._background = [t for t in self._background
                                if t.is_alive()] + [thread]
        thread.start()

    def _logged(self, what, func, *args, **kwargs):
        try:
            func(*args, **kwargs)
        except Exception:
            LOG.warning("Image cache background work (%s) of backend %s "
                        "failed; the purge task retries.", what,
                        self.backend, exc_info=True)

    def wait_background(self, timeout=None):
        """Wait until the background work started so far has ended."""
        with self._guard:
            threads = list(self._background)
        for thread in threads:
            thread.join(timeout)

    def _enforce_caps_soon(self, trigger):
        """Apply the caps in the background; one run at a time.

        Additions during a run get one more run after it, so a burst of
        fills costs two listings, not one per fill.
        """
        with self._guard:
            self._caps_due = True
            if self._caps_running:
                return
            self._caps_running = True
        self._in_background('caps', self._caps_loop, trigger)

    def _caps_loop(self, trigger):
        while True:
            with self._guard:
                if not self._caps_due:
                    self._caps_running = False
                    return
                self._caps_due = False
            self._enforce_caps(trigger)

    def _enforce_caps(self, trigger):
        # The volume exists by now: a failure here must not fail it.
        try:
            self._refresh(self.inventory.list_entries())
            # Victims that clones read are waited for (as long as a request
            # waits for a fill), so the caps hold once this has finished.
            wait = self.policy.wait_timeout
            self._delete([(e, REASON_OVER_CAP, None)
                          for e in self.policy.evictions(
                              self._known(self._counted()))],
                         trigger, wait=wait, lock_wait=wait)
        except Exception:
            LOG.warning("Could not apply the image cache caps of backend "
                        "%s after adding a copy; the purge task retries.",
                        self.backend, exc_info=True)

    # ---- accounting ----------------------------------------------------
    def _refresh(self, entries):
        self._entries, self._seen = {}, {}
        self._know(entries)
        self._uses = {k: v for k, v in self._uses.items()
                      if k in self._entries}

    def _know(self, entries):
        """Take entries as vCenter has them now."""
        now = time.monotonic()
        for entry in entries:
            self._entries[entry.key] = entry
            self._seen[entry.key] = now

    def _forget(self, keys):
        for key in keys:
            self._entries.pop(key, None)
            self._seen.pop(key, None)

    def _seen_within(self, entry, seconds):
        seen = self._seen.get(entry.key)
        return seen is not None and time.monotonic() - seen < seconds

    def _known(self, entries):
        """The entries with the last uses this process knows of.

        Those vCenter records lag by up to policy.use_record_seconds; this
        process's own evictions and expiry count its uses exactly.
        """
        known = []
        for entry in entries:
            used = self._uses.get(entry.key)
            if used is not None and (entry.last_used is None or
                                     used > entry.last_used):
                entry = dataclasses.replace(entry, last_used=used)
            known.append(entry)
        return known

    def entries(self):
        """The entries of the last listing, kept current by our changes."""
        return list(self._entries.values())

    def list_all(self):
        """List every cache VM of the backend afresh (all datacenters).

        Also re-reads which datastores the backend serves: backends that
        share a name share the cache folder, and each counts only the
        copies on its own datastores.
        """
        if self._stock is not None:
            self._served = self._stock.served_datastores()
        self._refresh(self.inventory.list_entries(
            self.inventory.discover_folders()))
        return self.entries()

    def _counted(self):
        """The entries this backend counts in its stats and caps.

        Those on datastores it serves (all, when that is not known).
        """
        return [e for e in self._entries.values()
                if self._served is None or e.datastore in self._served]

    def provisioned_gb(self):
        """The cache's size for the scheduler, from the last listing."""
        return pol.gib(sum(e.size_bytes for e in self._counted()
                           if e.ready))

    def _destroy(self, entry, reason, trigger=notify.TRIGGER_REQUEST,
                 told=None):
        """Destroy a cache VM that no request clones.

        :param told: the entry as the notification tells it (default:
            ``entry``); a retired copy is told by its name before.
        :returns: whether it is gone; a vCenter error is logged, and the
            next purge retries.
        """
        try:
            self.inventory.delete(entry.ref)
        except Exception as exc:
            LOG.warning("Could not delete cache entry %(name)s (%(exc)s); "
                        "the next purge retries.",
                        {'name': entry.name, 'exc': exc})
            return False
        self._forget([entry.key])
        told = told or entry
        LOG.info("Deleted cache entry %(name)s of backend %(be)s "
                 "(%(why)s).", {'name': told.name, 'be': self.backend,
                                'why': reason})
        self._notifier.emit(_DELETION_EVENTS.get(reason, notify.PURGE),
                            told, reason=reason, trigger=trigger)
        return True

    def _promote(self, deleted):
        """Give the datacenter's plain name to another ready copy.

        Hosts of the previous release look a copy up by the plain name
        only; without this they would import the image again next to the
        copies this release keeps. Under the image's exclusive lock.
        """
        try:
            successor = self.inventory.promote(deleted)
        except Exception as exc:
            LOG.warning("Could not rename a copy of image %(img)s to "
                        "%(name)s (%(exc)s); hosts of the previous release "
                        "fill it again.", {'img': deleted.image_id,
                                           'name': deleted.name, 'exc': exc})
            return
        if successor is not None:
            self._know([successor])

    def _retire(self, entry, keep_if, lock_wait):
        """Under the image's lock: re-check, then retire a ready copy.

        Retiring renames it (``inventory.retire``): from then on no lookup
        finds it. The lock keeps deletions, fills and seeds of an image
        apart; hits do not take it.

        :returns: the entry to destroy (retired, or as it was when it was
            never ready), or None when it is kept.
        """
        name = locks.lock_name(self.backend, entry.image_id)
        try:
            with locks.held(name, blocking=lock_wait):
                if keep_if is not None and keep_if(entry):
                    return None
                if not entry.ready:
                    return entry
                retired = self.inventory.retire(entry)
                self._forget([entry.key])
                self._know([retired])
                if entry.name == inv.template_name(entry.image_id):
                    self._promote(entry)
                return retired
        except exceptions.CacheWaitTimeout:
            LOG.debug("A fill or seed of image %s holds its lock; %s is not "
                      "deleted now.", entry.image_id, entry.name)
        except Exception as exc:
            # One entry's trouble (a lost connection, an overloaded session,
            # the coordination backend) must not stop the rest of a purge.
            LOG.warning("Could not delete cache entry %(name)s (%(exc)s); "
                        "the next purge retries.",
                        {'name': entry.name, 'exc': exc})
        return None

    def _delete(self, plan, trigger=notify.TRIGGER_REQUEST, wait=0,
                lock_wait=False):
        """Delete cache VMs without deleting one a clone reads.

        Hits take no lock, so a deletion must not rely on one. Each entry
        is retired first; then, once policy.retire_grace_seconds have
        passed (a hit sends its clone within clone_start_seconds of seeing
        the copy, or looks again and misses it), the entries no running
        clone task reads are destroyed. Those still read are waited for up
        to ``wait`` seconds, then left retired for the next purge.

        :param plan: [(entry, reason, keep_if)]; ``keep_if(entry)``, when
            given, is re-checked under the lock and keeps the entry when
            True.
        :param lock_wait: how long to wait for each image's lock, as for
            ``locks.held``; all of them within ``wait``.
        :returns: the deleted entries, as they were before retiring.
        """
        deadline = time.monotonic() + wait
        pending, retired_now = {}, False
        for entry, reason, keep_if in plan:
            if entry.key in pending:
                continue
            blocking = lock_wait if lock_wait is False else max(
                0, deadline - time.monotonic())
            doomed = self._retire(entry, keep_if, blocking)
            if doomed is not None:
                pending[entry.key] = (doomed, entry, reason)
                retired_now |= doomed is not entry and entry.ready
        if retired_now:
            self._sleep(self.policy.retire_grace_seconds)
        deleted = []
        while pending:
            try:
                busy = self.inventory.busy(
                    [doomed.ref for doomed, _e, _r in pending.values()])
            except Exception as exc:
                LOG.warning("Could not read vCenter's running tasks (%s); "
                            "retired cache entries are deleted by the next "
                            "purge.", exc)
                break
            for key in [k for k in pending if k not in busy]:
                doomed, entry, reason = pending.pop(key)
                if self._destroy(doomed, reason, trigger, told=entry):
                    deleted.append(entry)
            left = deadline - time.monotonic()
            if not pending or left <= 0:
                break
            self._sleep(min(1.0, left))
        for doomed, _entry, _reason in pending.values():
            LOG.info("Cache entry %s is still read by a clone; it stays "
                     "retired, and the next purge deletes it.", doomed.name)
        return deleted

    def _used_since_listing(self, entry):
        """Whether an expired entry was used again (or went) since listed."""
        current = self.inventory.reread(entry.ref)
        return current is None or not self.policy.is_expired(
            self._known([current])[0], timeutils.utcnow())

    def _images_deleted(self, entries):
        """Entries whose image Glance answers 404 for (never on doubt)."""
        if self._images is None:
            return []
        gone = self._images.deleted({e.image_id for e in entries})
        return [e for e in entries if e.image_id in gone]

    def purge(self, expired_only=True, image_id=None,
              trigger=notify.TRIGGER_COMMAND, keys=None):
        """Re-list the cache and delete what the policy (or caller) says.

        With expired_only (the periodic task): expired copies, leftovers
        of interrupted fills and seeds, copies of images deleted in Glance,
        copies beyond image_cache_max_copies_per_image, then least recently
        used copies until the caps hold. Otherwise every entry (of
        ``image_id``, and among ``keys``, when given). Returns the deleted
        entries.
        """
        entries = self.list_all()
        if image_id is not None:
            entries = [e for e in entries if e.image_id == image_id]
        if keys is not None:
            entries = [e for e in entries if e.key in keys]
        if not expired_only:
            return self._delete([(e, REASON_OPERATOR, None)
                                 for e in entries], trigger)
        now = timeutils.utcnow()
        plan = [(e, REASON_EXPIRED, self._used_since_listing)
                for e in self.policy.expired(self._known(entries), now)]
        plan += [(e, REASON_LEFTOVER, None)
                 for e in self.policy.leftovers(entries, now)]
        plan += [(e, REASON_IMAGE_DELETED, None)
                 for e in self._images_deleted(entries)]
        doomed = {e.key for e, _reason, _keep_if in plan}
        plan += [(e, REASON_OVER_CAP, None)
                 for e in self.policy.evictions(self._known(
                     [e for e in self._counted() if e.key not in doomed]))]
        deleted = self._delete(plan, trigger)
        self._check_warm_overflow()
        return deleted

    def _check_warm_overflow(self):
        overflow = self.policy.warm_overflow(self._entries.values())
        if overflow:
            self._say_once('warm overflow', 'Image cache of backend %s: %s.',
                           self.backend, overflow)

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
