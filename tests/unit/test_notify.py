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

from unittest import mock

from cinder import rpc
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import oslo_messaging
import oslo_messaging.opts
from oslo_utils import units

from cinder_vmware_cache import notify
from cinder_vmware_cache import policy
from tests import common

ENTRY = policy.CacheEntry(image_id='img', name='image-img', ref='vm-1',
                          ready=True, size_bytes=units.Gi + 1,
                          datastore='datastore-1')


class NotifierTestCase(common.TestCase):
    """Through cinder's real notifier, with oslo.messaging's test driver."""

    def setUp(self):
        super().setUp()
        conf = self.useFixture(config_fixture.Config(cfg.CONF))
        for group, opts in oslo_messaging.opts.list_opts():
            conf.register_opts(opts, group)
        conf.config(driver=['test'], group='oslo_messaging_notifications')
        conf.config(transport_url='fake:/')
        self.addCleanup(self._cleanup_rpc)
        notify.setup(cfg.CONF)
        self.messages = []
        test_driver = mock.patch(
            'oslo_messaging.notify._impl_test.NOTIFICATIONS', self.messages)
        test_driver.start()
        self.addCleanup(test_driver.stop)

    @staticmethod
    def _cleanup_rpc():
        if rpc.initialized():
            rpc.cleanup()

    def test_setup_is_idempotent(self):
        notifier = rpc.NOTIFIER
        notify.setup(cfg.CONF)
        self.assertIs(notifier, rpc.NOTIFIER)
        self.assertIsInstance(notifier, oslo_messaging.Notifier)

    def test_event_and_payload(self):
        with mock.patch.object(notify.time, 'monotonic', return_value=12.5):
            notify.Notifier('vmw', 'host-1').emit(
                notify.HIT, ENTRY, started=10.0, volume_id='vol-1',
                trigger=notify.TRIGGER_REQUEST)
        self.assertEqual(1, len(self.messages))
        _ctxt, message, priority, _retry = self.messages[0]
        self.assertEqual('INFO', priority)
        self.assertEqual('image_template_cache.hit', message['event_type'])
        self.assertEqual('image_template_cache.host-1',
                         message['publisher_id'])
        self.assertEqual(
            {'image_id': 'img', 'backend': 'vmw', 'host': 'host-1',
             'template': 'image-img', 'datastore': 'datastore-1',
             'size_bytes': units.Gi + 1, 'size_gb': 2,
             'duration_seconds': 2.5, 'volume_id': 'vol-1',
             'trigger': 'request'},
            message['payload'])

    def test_a_messaging_error_is_logged_not_raised(self):
        with mock.patch.object(rpc, 'get_notifier',
                               side_effect=RuntimeError('down')):
            with self.assertLogs(notify.LOG.logger, 'WARNING') as logs:
                notify.Notifier('vmw', 'h').emit(notify.EVICT, ENTRY,
                                                 reason='over cap')
        self.assertIn('image_template_cache.evict', logs.output[0])


class UninitialisedTestCase(common.TestCase):

    def test_nothing_is_sent_before_setup(self):
        self.assertIsNone(rpc.NOTIFIER)
        with mock.patch.object(rpc, 'get_notifier') as get_notifier:
            notify.Notifier('vmw', 'h').emit(notify.PURGE, ENTRY)
        get_notifier.assert_not_called()
