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

"""Reads of vCenter inventory shared by concurrent requests for a while.

The stock datastore selection reads every datastore, then the hosts and
resource pool of the one it picks, for every volume: a burst of cache hits
spent most of its round trips and time there. A snapshot keeps each read
for a few seconds, and one request reads at a time, so a burst reads once;
the cache's own changes (a clone's space, a new or failed copy) update or
drop it.
"""

import threading
import time

# How long a read serves. The stock selection does not see the scheduler's
# reservations either; a few seconds of staleness in free space is what a
# datastore's own summary refresh already has.
TTL_SECONDS = 10.0


class Snapshot(object):
    """Values by key, read on first use and kept ``ttl`` seconds."""

    def __init__(self, ttl=TTL_SECONDS, clock=time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._values = {}
        # One read at a time: concurrent requests wait for the first one's
        # answer instead of asking vCenter the same question.
        self._reading = threading.RLock()

    def _fresh(self, key):
        found = self._values.get(key)
        if found is not None and self._clock() - found[0] < self._ttl:
            return found
        return None

    def get(self, key, read):
        """The value of ``key``, from ``read()`` when missing or old."""
        found = self._fresh(key)
        if found is None:
            with self._reading:
                found = self._fresh(key)
                if found is None:
                    found = (self._clock(), read())
                    self._values[key] = found
        return found[1]

    def memoize(self, func, key=lambda *args: args):
        """``func`` reading through the snapshot, keyed by its arguments."""
        def read(*args):
            return self.get((func.__name__, key(*args)),
                            lambda: func(*args))
        return read

    def clear(self):
        self._values.clear()
