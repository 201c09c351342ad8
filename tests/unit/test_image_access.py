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

from cinder import context
from cinder import exception
from cinder.image import glance
from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

from cinder_vmware_cache import exceptions
from cinder_vmware_cache import image_access
from tests import common


GLANCE_URL = 'http://127.0.0.1:9292'
API_SERVERS = '[DEFAULT]\nglance_api_servers = %s\n' % GLANCE_URL


def token_auth(group, token):
    """A keystoneauth section with a bare token: no catalog, no roles."""
    return ('[%s]\nauth_type = admin_token\nendpoint = %s\ntoken = %s\n' %
            (group, GLANCE_URL, token))


class ServiceContextTestCase(common.TestCase):
    """keystoneauth plugins loaded from a real configuration file."""

    def conf(self, text, groups=('service_user',)):
        conf = cfg.ConfigOpts()
        conf.register_opt(cfg.ListOpt('glance_api_servers'))
        for group in groups:
            ks_loading.register_auth_conf_options(conf, group)
            ks_loading.register_session_conf_options(conf, group)
        path = self.useFixture(common.ConfigDir()).write(text)
        conf(['--config-file', path], project='cinder')
        return conf

    def test_without_credentials_says_what_to_set(self):
        error = self.assertRaises(exceptions.NoServiceCredentials,
                                  image_access.service_context,
                                  self.conf(API_SERVERS))
        self.assertIn('[service_user] or [glance]', str(error))

    def test_service_user_token(self):
        ctx = image_access.service_context(self.conf(
            API_SERVERS + token_auth('service_user', 'admin:services')))
        self.assertEqual('admin:services', ctx.auth_token)
        # A bare token tells no roles: the operator vouches for it.
        self.assertTrue(ctx.is_admin)
        self.assertEqual([], ctx.service_catalog)

    def test_token_without_catalog_needs_glance_api_servers(self):
        error = self.assertRaises(
            exceptions.NoServiceCredentials, image_access.service_context,
            self.conf(token_auth('service_user', 'admin:services')))
        self.assertIn('set it to the Glance API URL', str(error))

    def test_glance_group_first_when_cinder_has_it(self):
        ctx = image_access.service_context(self.conf(
            API_SERVERS + token_auth('glance', 'glance-token') +
            token_auth('service_user', 'service-token'),
            groups=('glance', 'service_user')))
        self.assertEqual('glance-token', ctx.auth_token)

    def test_cinder_without_glance_auth_options(self):
        # cinder 26 registers no keystoneauth options in [glance].
        conf = self.conf(API_SERVERS +
                         token_auth('service_user', 'service-token'))
        conf.register_opts([cfg.StrOpt('api_servers')], group='glance')
        self.assertEqual('service-token',
                         image_access.service_context(conf).auth_token)


class GlanceImagesTestCase(common.TestCase):

    def setUp(self):
        super().setUp()
        service = mock.create_autospec(glance.GlanceImageService,
                                       instance=True)
        patcher = mock.patch.object(glance, 'get_default_image_service',
                                    return_value=service)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.service = service
        self.images = image_access.GlanceImages()

    @mock.patch.object(image_access, 'service_context', autospec=True)
    def test_only_404_means_deleted(self, service_context):
        answers = {
            'gone': exception.ImageNotFound(image_id='gone'),
            'forbidden': exception.ImageNotAuthorized(image_id='forbidden'),
            'down': exception.GlanceConnectionFailed(reason='timed out'),
            'odd': RuntimeError('boom'),
            'there': {'id': 'there'},
        }

        service_context.return_value = context.RequestContext(is_admin=True)

        def show(ctx, image_id):
            self.assertIs(service_context.return_value, ctx)
            answer = answers[image_id]
            if isinstance(answer, Exception):
                raise answer
            return answer

        self.service.show.side_effect = show
        with self.assertLogs(image_access.LOG.logger, 'WARNING') as logs:
            self.assertEqual({'gone'}, self.images.deleted(answers))
        self.assertEqual(3, len(logs.output))
        self.assertIn('its template is kept', logs.output[0])

    @mock.patch.object(image_access, 'service_context', autospec=True)
    def test_credentials_without_admin_role_delete_nothing(
            self, service_context):
        service_context.return_value = context.RequestContext(
            user_id='cinder', project_id='service', roles=['service'],
            is_admin=False)
        with self.assertLogs(image_access.LOG.logger, 'WARNING') as logs:
            self.assertEqual(set(), self.images.deleted(['a']))
        self.assertIn('lack the admin role', logs.output[0])
        self.service.show.assert_not_called()

    @mock.patch.object(image_access, 'service_context', autospec=True)
    def test_without_credentials_nothing_is_deleted_and_said_once(
            self, service_context):
        service_context.side_effect = exceptions.NoServiceCredentials('set')
        with self.assertLogs(image_access.LOG.logger, 'WARNING') as logs:
            self.assertEqual(set(), self.images.deleted(['a']))
            self.assertEqual(set(), self.images.deleted(['a']))
        self.assertEqual(1, len(logs.output))
        self.assertIn('does not remove templates of images deleted',
                      logs.output[0])
        self.service.show.assert_not_called()
