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

"""Per-(backend, image) locks that hold across cinder-volume hosts.

They go through cinder's tooz coordinator, so ``[coordination] backend_url``
decides their reach: the default file backend serialises one host, a
redis/etcd backend the whole cluster. Fills and deletions take the lock
exclusively; clones take it shared where the backend supports shared locks
(tooz's file driver does), exclusively otherwise.
"""

import contextlib

from cinder import coordination
import tooz

from cinder_vmware_cache import exceptions


def lock_name(backend, image_id):
    return 'image-cache-%s-%s' % (backend, image_id)


@contextlib.contextmanager
def held(name, timeout=None, shared=False, coordinator=None):
    """Hold lock ``name``; wait ``timeout`` seconds (None: do not wait).

    Raises CacheWaitTimeout when the lock could not be had in time.
    """
    lock = (coordinator or coordination.COORDINATOR).get_lock(name)
    blocking = timeout is not None
    try:
        acquired = lock.acquire(blocking=blocking, shared=shared,
                                timeout=timeout)
    except tooz.NotImplemented:
        acquired = lock.acquire(blocking=blocking, timeout=timeout)
    if not acquired:
        raise exceptions.CacheWaitTimeout(
            'lock %s is held by another request' % name)
    try:
        yield
    finally:
        lock.release()
