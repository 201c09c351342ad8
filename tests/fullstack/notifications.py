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

"""Listen to the stack's notifications on RabbitMQ, as monitoring does.

An oslo.messaging notification listener in its own pool (so it takes
copies, not messages meant for others) on the topic cinder's notifier
sends to; it keeps the events of the image-template cache.
"""

import threading
import time
import warnings

# oslo.messaging imports eventlet, which warns that it is deprecated: a
# matter of the libraries, not of this test's screen.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402

PREFIX = 'image_template_cache.'
TOPIC = 'notifications'


class Listener(object):

    def __init__(self, transport_url, pool='cvc-fullstack'):
        self._transport = oslo_messaging.get_notification_transport(
            cfg.ConfigOpts(), url=transport_url)
        self._listener = oslo_messaging.get_notification_listener(
            self._transport, [oslo_messaging.Target(topic=TOPIC)], [self],
            executor='threading', pool=pool)
        self._lock = threading.Lock()
        self.events = []

    # oslo.messaging endpoint: INFO priority.
    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        if event_type.startswith(PREFIX):
            with self._lock:
                self.events.append((event_type[len(PREFIX):], payload))

    def start(self):
        self._listener.start()

    def stop(self):
        self._listener.stop()
        self._listener.wait()
        self._transport.cleanup()

    def of_image(self, image_id):
        """(action, payload) pairs about one image, in arrival order."""
        with self._lock:
            return [(a, p) for a, p in self.events
                    if p.get('image_id') == image_id]

    def wait_for(self, image_id, actions, timeout=30, ordered=True):
        """Wait for exactly these actions about an image; return them.

        :param ordered: whether they must arrive in this order (hits of
            waiting requests may overtake the miss of the request that
            filled the cache, which is sent after its own clone).
        """
        deadline = time.monotonic() + timeout
        want = list(actions) if ordered else sorted(actions)
        while True:
            seen = self.of_image(image_id)
            got = [a for a, _ in seen]
            if (got if ordered else sorted(got)) == want:
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(
                    'expected notifications %s for image %s within %ss, '
                    'got %s' % (list(actions), image_id, timeout,
                                [a for a, _ in seen]))
            time.sleep(0.2)
