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

"""The masking of secrets in messages and log lines."""

import io
import logging
import uuid

from oslo_config import cfg
from oslo_log import formatters
from oslo_vmware import exceptions as vexc

from cinder_vmware_cache.cli import masking
from tests import common
from tests.unit.cli import base

CONF = cfg.CONF


class SecrecyTestCase(common.TestCase):
    """Secrets never leave through a message or a log handler."""

    def setUp(self):
        super().setUp()
        self.secrets = masking.Secrets()
        self.secrets.add(base.SECRET)
        self.secrets.add(None)
        self.secrets.add('')

    def test_known_values(self):
        self.assertEqual('a *** b ***', self.secrets(
            'a %s b %s' % (base.SECRET, base.SECRET)))
        self.assertEqual('nothing', self.secrets('nothing'))
        self.secrets.add(base.SECRET[:5])
        self.assertEqual('x ***', self.secrets('x %s' % base.SECRET))

    def test_oslo_patterns_without_known_values(self):
        self.assertEqual('<password>***</password> password=***',
                         masking.Secrets()(
                             '<password>abc</password> password=abc'))

    def log_through(self, formatter, emit):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(masking.RedactingFormatter(formatter,
                                                        self.secrets))
        logger = logging.getLogger('test.secrecy.%s' % uuid.uuid4().hex)
        logger.propagate = False
        logger.addHandler(handler)
        emit(logger)
        return stream.getvalue()

    def test_message_arguments_and_traceback(self):
        def emit(logger):
            try:
                raise ValueError('bad password %s' % base.SECRET)
            except ValueError:
                logger.exception('login as %s failed', base.SECRET)
        text = self.log_through(logging.Formatter(), emit)
        self.assertIn('login as *** failed', text)
        self.assertIn('ValueError: bad password ***', text)
        self.assertNotIn(base.SECRET, text)

    def test_oslo_log_error_summary(self):
        # oslo.log appends the active exception to warnings by itself.
        def emit(logger):
            try:
                raise vexc.VimException('fault for %s' % base.SECRET)
            except vexc.VimException:
                logger.warning('could not log in')
        text = self.log_through(formatters.ContextFormatter(config=CONF),
                                emit)
        self.assertIn('could not log in', text)
        self.assertIn('fault for ***', text)
        self.assertNotIn(base.SECRET, text)


class UrlPasswordTestCase(common.TestCase):
    """The password of [coordination] backend_url is a secret too."""

    def test_password(self):
        self.assertEqual(base.URL_SECRET, masking.url_password(
            'redis://:%s@127.0.0.1:6379' % base.URL_SECRET))

    def test_no_password(self):
        # The last URL does not parse.
        for url in (None, '', 'file:///var/lib/cinder/locks',
                    'redis://[::1:6379'):
            self.assertIsNone(masking.url_password(url))
