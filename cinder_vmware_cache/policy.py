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

    @property
    def last_activity(self):
        return self.last_used or self.created_at

    @property
    def key(self):
        return getattr(self.ref, 'value', self.ref)


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
    leftover_grace_seconds: int = 3600

    _FIELDS = {
        'enabled': 'enable_image_cache',
        'max_image_gb': 'image_cache_max_size_gb',
        'age_seconds': 'image_cache_age_seconds',
        'purge_interval': 'image_cache_purge_interval',
        'max_total_gb': 'image_cache_max_total_gb',
        'max_count': 'image_cache_max_count',
        'wait_timeout': 'image_cache_wait_timeout',
        'leftover_grace_seconds': 'image_cache_leftover_grace_seconds',
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
        return cls(**values)

    @property
    def max_image_bytes(self):
        return self.max_image_gb * units.Gi

    def refusal(self, image_meta):
        """Why this image cannot be cached, or None when it can."""
        if not self.enabled:
            return 'the image cache is disabled for this backend'
        if image_meta.get('disk_format') != _VMDK:
            return ('the image disk format is %r, not vmdk' %
                    image_meta.get('disk_format'))
        size = image_size(image_meta)
        if size is None:
            return 'the image has neither a virtual size nor a size'
        if size > self.max_image_bytes:
            return ('the image (%d bytes) is larger than '
                    'image_cache_max_size_gb (%d GiB)' %
                    (size, self.max_image_gb))
        return None

    def is_expired(self, entry, now):
        activity = entry.last_activity
        if activity is None:
            return False
        return (now - activity).total_seconds() > self.age_seconds

    def expired(self, entries, now):
        return [e for e in entries if e.ready and self.is_expired(e, now)]

    def leftovers(self, entries, now):
        """Unpublished entries past the grace period (age unknown: keep)."""
        return [e for e in entries
                if not e.ready and e.created_at is not None and
                (now - e.created_at).total_seconds() >=
                self.leftover_grace_seconds]

    def evictions(self, entries):
        """Least recently used ready entries to drop until both caps hold."""
        ready = sorted((e for e in entries if e.ready),
                       key=lambda e: (e.last_activity is not None,
                                      e.last_activity or 0))
        count = len(ready)
        total = sum(e.size_bytes for e in ready)
        max_total = self.max_total_gb * units.Gi
        victims = []
        for entry in ready:
            over_count = self.max_count and count > self.max_count
            over_size = self.max_total_gb and total > max_total
            if not (over_count or over_size):
                break
            victims.append(entry)
            count -= 1
            total -= entry.size_bytes
        return victims


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
