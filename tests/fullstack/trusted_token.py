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

"""A stand-in for keystonemiddleware's auth_token filter, for tests only.

cinder's ``auth_strategy = noauth`` never tells Glance who is asking: its
Glance client sends no token in that mode (cinder/image/glance.py), so a
private image would be visible to every caller or to none. To test
Glance's access rules through cinder, both cinder-api and glance-api run
their standard ``keystone`` paste pipelines with this filter in the place
of ``authtoken``. It trusts the token the way cinder's noauth middleware
and cinderclient's ``noauth`` plugin spell it, ``<user>:<project>``, and
sets the headers auth_token would set after validating a Keystone token;
cinder then forwards the same token to Glance as it does in production.

The user ``admin`` gets the roles admin, member and reader; every other
user gets member and reader. Identity headers sent by the client are
dropped first, as auth_token does.

Paste configuration::

    [filter:authtoken]
    paste.filter_factory = tests.fullstack.trusted_token:filter_factory
"""

ADMIN_USER = 'admin'
ADMIN_ROLES = 'admin,member,reader'
USER_ROLES = 'member,reader'

# Headers auth_token sets; a client must not be able to send them itself.
_IDENTITY_HEADERS = (
    'X_IDENTITY_STATUS', 'X_USER_ID', 'X_USER_NAME', 'X_USER_DOMAIN_ID',
    'X_USER_DOMAIN_NAME', 'X_PROJECT_ID', 'X_PROJECT_NAME',
    'X_PROJECT_DOMAIN_ID', 'X_PROJECT_DOMAIN_NAME', 'X_ROLES', 'X_ROLE',
    'X_TENANT_ID', 'X_TENANT_NAME', 'X_TENANT', 'X_USER', 'X_SERVICE_CATALOG',
    'X_IS_ADMIN_PROJECT', 'X_SYSTEM_SCOPE', 'X_DOMAIN_ID', 'X_DOMAIN_NAME',
)


class TrustedTokenMiddleware(object):

    def __init__(self, app):
        self._app = app

    def __call__(self, environ, start_response):
        for name in _IDENTITY_HEADERS:
            environ.pop('HTTP_' + name, None)
        token = environ.get('HTTP_X_AUTH_TOKEN', '').strip()
        user, _sep, project = token.partition(':')
        if not user:
            # auth_token with delay_auth_decision: the app decides.
            environ['HTTP_X_IDENTITY_STATUS'] = 'Invalid'
            return self._app(environ, start_response)
        project = project or user
        roles = ADMIN_ROLES if user == ADMIN_USER else USER_ROLES
        environ.update({
            'HTTP_X_IDENTITY_STATUS': 'Confirmed',
            'HTTP_X_USER_ID': user,
            'HTTP_X_USER_NAME': user,
            'HTTP_X_USER_DOMAIN_ID': 'default',
            'HTTP_X_USER_DOMAIN_NAME': 'Default',
            'HTTP_X_PROJECT_ID': project,
            'HTTP_X_PROJECT_NAME': project,
            'HTTP_X_PROJECT_DOMAIN_ID': 'default',
            'HTTP_X_PROJECT_DOMAIN_NAME': 'Default',
            'HTTP_X_ROLES': roles,
            'HTTP_X_IS_ADMIN_PROJECT': 'True',
        })
        return self._app(environ, start_response)


def filter_factory(global_conf, **local_conf):
    return TrustedTokenMiddleware
