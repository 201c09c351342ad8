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

"""Notifications of the image-template cache, through cinder's notifier.

Like cinder's own image-volume cache (``image_volume_cache.hit`` ...), in a
namespace of our own: ``image_template_cache.<action>``. They follow
cinder's ``[oslo_messaging_notifications]`` settings, so they are off when
its driver is ``noop`` (the default). Sending never fails a request: an
error of the messaging layer is logged and the request goes on.

Payload: ``image_id``, ``backend``, ``host``, ``template``, ``datastore``
(the template's datastore, moref value), ``size_bytes``, ``size_gb``,
``duration_seconds`` (of the action; null for deletions), ``trigger``
(``request``, ``warm``, ``periodic`` or ``command``), and ``volume_id``
for hit and miss, ``reason`` for deletions, ``source_template`` and
``source_datastore`` for a seed (a copy made on a datastore from a copy on
another one; ``datastore`` is the new copy's).
"""

import time

from cinder import context as cinder_context
from cinder import rpc
from oslo_log import log as logging

from cinder_vmware_cache import policy

LOG = logging.getLogger(__name__)

PUBLISHER = 'image_template_cache'
HIT = 'hit'
MISS = 'miss'
SEED = 'seed'
EVICT = 'evict'
EXPIRE = 'expire'
PURGE = 'purge'

TRIGGER_REQUEST = 'request'
TRIGGER_WARM = 'warm'
TRIGGER_PERIODIC = 'periodic'
TRIGGER_COMMAND = 'command'


def setup(conf):
    """Initialise cinder's messaging layer once, as cinder's services do.

    For commands: cinder-volume has done it before the driver runs.
    """
    if not rpc.initialized():
        rpc.init(conf)


def event_type(action):
    return '%s.%s' % (PUBLISHER, action)


class Notifier(object):
    """Sends the cache events of one backend on one host."""

    def __init__(self, backend, host):
        self.backend = backend
        self.host = host

    def emit(self, action, entry, context=None, started=None, **fields):
        """Send ``image_template_cache.<action>`` about a cache entry.

        :param started: ``time.monotonic()`` when the action began.
        """
        payload = {
            'image_id': entry.image_id,
            'backend': self.backend,
            'host': self.host,
            'template': entry.name,
            'datastore': entry.datastore,
            'size_bytes': entry.size_bytes,
            'size_gb': policy.gib(entry.size_bytes),
            'duration_seconds': (None if started is None else
                                 round(time.monotonic() - started, 3)),
        }
        payload.update(fields)
        if rpc.NOTIFIER is None:
            LOG.debug('Messaging is not initialised; not sending %s.',
                      event_type(action))
            return
        try:
            rpc.get_notifier(PUBLISHER, self.host).info(
                context or cinder_context.get_admin_context(),
                event_type(action), payload)
        except Exception:
            LOG.warning('Could not send notification %s.',
                        event_type(action), exc_info=True)
