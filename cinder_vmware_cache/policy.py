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

"""Cache policy: what may be cached, what expires, what is evicted.

Pure functions over CacheEntry records, so the rules are tested without
cinder or vCenter.
"""

import dataclasses
import datetime
import math

from oslo_utils import units

from cinder_vmware_cache import exceptions

_VMDK = 'vmdk'
_USE_RECORD_MAX_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """One VM in a backend's cache folder, as vCenter reports it."""

    image_id: str
    name: str
    ref: object
    ready: bool
    size_bytes: int = 0
    datastore: str = None
    created_at: datetime.datetime = None
    last_used: datetime.datetime = None
    folder: str = None
    adapter_type: str = None
    # When it was retired (renamed for deletion), None when it was not.
    retired_at: datetime.datetime = None

    @property
    def last_activity(self):
        return self.last_used or self.created_at

    @property
    def key(self):
        return getattr(self.ref, 'value', self.ref)


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why an image is not cached: a short stable reason, and the detail."""

    reason: str
    detail: str

    def __str__(self):
        return self.detail


@dataclasses.dataclass(frozen=True)
class CachePolicy:
    """A backend's cache options, and the rules that follow from them.

    The defaults are the options' defaults (``opts.image_cache_opts``).
    """

    enabled: bool = False
    max_image_gb: int = 100
    age_seconds: int = 86400
    purge_interval: int = 600
    max_total_gb: int = 0
    max_count: int = 0
    wait_timeout: int = 1800
    task_timeout: int = 3600
    leftover_grace_seconds: int = 3600
    result_metadata: bool = True
    warm_images: tuple = ()
    placement: str = 'prefer-cached'
    placement_max_utilization: int = 80
    max_copies_per_image: int = 0
    # Not options; the protocol between hits and deletions (README: How it
    # works). A hit clones a copy it saw in vCenter within
    # known_copy_seconds without reading it again, and sends its clone
    # within clone_start_seconds of that sight (or reads it again); a
    # deletion retires (renames) a copy, then waits retire_grace_seconds,
    # longer than that, before it looks for the clone tasks reading it.
    known_copy_seconds: float = 2.0
    clone_start_seconds: float = 5.0
    retire_grace_seconds: float = 10.0

    _FIELDS = {
        'enabled': 'enable_image_cache',
        'max_image_gb': 'image_cache_max_size_gb',
        'age_seconds': 'image_cache_age_seconds',
        'purge_interval': 'image_cache_purge_interval',
        'max_total_gb': 'image_cache_max_total_gb',
        'max_count': 'image_cache_max_count',
        'wait_timeout': 'image_cache_wait_timeout',
        'task_timeout': 'image_cache_task_timeout',
        'leftover_grace_seconds': 'image_cache_leftover_grace_seconds',
        'result_metadata': 'image_cache_result_metadata',
        'warm_images': 'image_cache_warm_images',
        'placement': 'image_cache_placement',
        'placement_max_utilization': 'image_cache_placement_max_utilization',
        'max_copies_per_image': 'image_cache_max_copies_per_image',
    }

    @classmethod
    def from_configuration(cls, configuration, backend='backend'):
        """The policy of a backend's configuration.

        oslo.config checks types and bounds when a value is read (and when
        one is set in code); an unusable value stops the driver's start.

        :param configuration: the backend's cinder ``Configuration``.
        :param backend: the backend's name, for the message.
        :raises InvalidCacheOption: (cinder's InvalidConfigurationValue)
            naming the option and the backend.
        """
        values = {}
        for field, name in cls._FIELDS.items():
            try:
                value = configuration.safe_get(name)
            except ValueError as exc:
                raise exceptions.InvalidCacheOption(
                    option='[%s] %s' % (backend, name), reason=exc)
            if value is not None:
                values[field] = value
        values['warm_images'] = tuple(
            i.strip() for i in values.get('warm_images') or () if i.strip())
        return cls(**values)

    @property
    def max_image_bytes(self):
        return self.max_image_gb * units.Gi

    def refusal(self, image_meta):
        """Why this image cannot be cached (a Refusal), or None when it can."""
        if not self.enabled:
            return Refusal('cache disabled',
                           'the image cache is disabled for this backend')
        if image_meta.get('disk_format') != _VMDK:
            return Refusal('not a vmdk image',
                           'the image disk format is %r, not vmdk' %
                           image_meta.get('disk_format'))
        size = image_size(image_meta)
        if size is None:
            return Refusal('image size unknown', 'the image has neither a '
                           'virtual size nor a size')
        if size > self.max_image_bytes:
            return Refusal('image too large',
                           'the image (%d bytes) is larger than '
                           'image_cache_max_size_gb (%d GiB)' %
                           (size, self.max_image_gb))
        return None

    def is_warm(self, entry):
        return entry.image_id in self.warm_images

    def is_expired(self, entry, now):
        activity = entry.last_activity
        if activity is None:
            return False
        return (now - activity).total_seconds() > self.age_seconds

    def expired(self, entries, now):
        """Ready entries past their age; a warm-listed image never expires."""
        return [e for e in entries if e.ready and not self.is_warm(e) and
                self.is_expired(e, now)]

    def leftovers(self, entries, now):
        """Entries to delete that were never or are no longer ready.

        Unpublished ones past image_cache_leftover_grace_seconds (age
        unknown: kept); retired ones past retire_grace_seconds.
        """
        def due(entry):
            if entry.retired_at is not None:
                return (now - entry.retired_at).total_seconds() >= (
                    self.retire_grace_seconds)
            return entry.created_at is not None and (
                now - entry.created_at).total_seconds() >= (
                self.leftover_grace_seconds)
        return [e for e in entries if not e.ready and due(e)]

    def _over_caps(self, count, total_bytes):
        return bool((self.max_count and count > self.max_count) or
                    (self.max_total_gb and
                     total_bytes > self.max_total_gb * units.Gi))

    @property
    def use_record_seconds(self):
        """How far a copy's recorded last use may lag (as relatime).

        A tenth of the age, at most a minute: expiry by another host is at
        most that early, and a burst of hits records one use, not one each.
        """
        return min(_USE_RECORD_MAX_SECONDS, self.age_seconds / 10.0)

    @property
    def capped(self):
        """Whether any cap can make an addition evict a copy."""
        return bool(self.max_count or self.max_total_gb or
                    self.max_copies_per_image)

    @property
    def prefers_cached(self):
        return self.placement == 'prefer-cached'

    def may_add_copy(self, copies):
        """Whether an image with these ready copies may get one more.

        The bound holds per image and adapter type, as copies of another
        adapter type cannot serve the same volumes.
        """
        return not self.max_copies_per_image or (
            len(copies) < self.max_copies_per_image)

    def evictions(self, entries):
        """Ready entries to drop, each copy counted on its own.

        First the least recently used copies beyond the per-image bound,
        then the least recently used until both caps hold.

        Warm-listed images count against the caps but are never victims of
        them.
        """
        ready = sorted((e for e in entries if e.ready), key=_lru)
        victims = []
        if self.max_copies_per_image:
            kept = {}
            for entry in reversed(ready):
                kind = (entry.image_id, entry.adapter_type)
                kept[kind] = kept.get(kind, 0) + 1
                if kept[kind] > self.max_copies_per_image:
                    victims.append(entry)
        count = len(ready) - len(victims)
        total = sum(e.size_bytes for e in ready) - sum(
            e.size_bytes for e in victims)
        for entry in ready:
            if not self._over_caps(count, total):
                break
            if self.is_warm(entry) or entry in victims:
                continue
            victims.append(entry)
            count -= 1
            total -= entry.size_bytes
        return victims

    def warm_overflow(self, entries=()):
        """Why the caps cannot hold the warm list, or None when they can.

        Before the listed images are cached only their number is known.
        """
        warm = [e for e in entries if e.ready and self.is_warm(e)]
        count = max(len(self.warm_images), len(warm))
        total = sum(e.size_bytes for e in warm)
        if not self._over_caps(count, total):
            return None
        return ('image_cache_warm_images lists %d images (%d GiB cached) but '
                'image_cache_max_count is %d and image_cache_max_total_gb %d '
                '(0: no bound); other images are evicted first and the '
                'caps are exceeded' % (len(self.warm_images), gib(total),
                                       self.max_count, self.max_total_gb))


def _lru(entry):
    """Sort key: least recently used first, unknown use first of all."""
    return (entry.last_activity is not None, entry.last_activity or 0)


def image_size(image_meta):
    """Bytes the image occupies as a disk: virtual size first, file size else.

    For streamOptimized images the file size is the compressed size, so the
    virtual size is the honest one whenever Glance knows it.
    """
    for key in ('virtual_size', 'size'):
        value = image_meta.get(key)
        if value:
            return int(value)
    return None


def gib(size_bytes):
    """Whole GiB that hold ``size_bytes`` (rounded up; 0 for 0)."""
    return int(math.ceil(size_bytes / float(units.Gi)))
