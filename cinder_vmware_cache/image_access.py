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

"""Glance access of the cache itself, without a user's token.

Warming an image and finding templates of deleted images happen outside
any user's request, so they ask Glance as cinder's own service user: the
keystoneauth options of ``[glance]`` (cinder 27 and later use them for
privileged image calls) or else of ``[service_user]``. Without either, the
features that need them are off and say so once.
"""

from cinder import context as cinder_context
from cinder import exception as cinder_exception
from keystoneauth1 import loading as ks_loading
from oslo_config import cfg
from oslo_log import log as logging

from cinder_vmware_cache import exceptions

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

AUTH_GROUPS = ('glance', 'service_user')


def _auth_group(conf):
    for group in AUTH_GROUPS:
        try:
            if conf[group].auth_type:
                return group
        except (cfg.NoSuchOptError, cfg.NoSuchGroupError, KeyError):
            continue
    return None


def service_context(conf=CONF, loaded=None):
    """A RequestContext that authenticates to Glance as cinder's service.

    :param loaded: a dict in which the keystoneauth plugin and session are
        kept between calls: the plugin keeps its token until it expires,
        so periodic work does not authenticate to Keystone on every run.
    :raises NoServiceCredentials: when neither group sets ``auth_type``.
    """
    group = _auth_group(conf)
    if group is None:
        raise exceptions.NoServiceCredentials(
            'no Glance credentials of cinder\'s own: set the keystoneauth '
            'options (auth_type, auth_url, username, password, ...) of '
            '[service_user] or [glance] in cinder.conf')
    loaded = {} if loaded is None else loaded
    if group not in loaded:
        auth = ks_loading.load_auth_from_conf_options(conf, group)
        loaded[group] = auth, ks_loading.load_session_from_conf_options(
            conf, group, auth=auth)
    auth, session = loaded[group]
    catalog, roles = [], None
    try:
        access = auth.get_access(session)
    except (AttributeError, NotImplementedError):
        # Token-only plugins know no catalog and no roles:
        # glance_api_servers serves, and the operator vouches for the token.
        pass
    else:
        catalog, roles = access.service_catalog.catalog, access.role_names
    if not catalog and not conf.glance_api_servers:
        # cinder's Glance client would fail with a bare StopIteration.
        raise exceptions.NoServiceCredentials(
            'the Glance credentials of [%s] give no service catalog and '
            '[DEFAULT] glance_api_servers is not set: set it to the Glance '
            'API URL' % group)
    return cinder_context.RequestContext(
        user_id=session.get_user_id(), project_id=session.get_project_id(),
        auth_token=session.get_token(), roles=roles or [],
        is_admin=roles is None or 'admin' in roles, service_catalog=catalog)


class GlanceImages(object):
    """Glance as the cache's own periodic work asks it."""

    def __init__(self, conf=CONF):
        # Imported here: cinder.image.glance imports cleanly only after
        # cinder.image.image_utils (a circular import in cinder 26 to 29),
        # which the VMDK driver has imported by the time a cache exists.
        from cinder.image import glance
        self._conf = conf
        self._loaded = {}
        self._said_off = False
        self.service = glance.get_default_image_service()

    def context(self):
        """A service context, or None (logged once) without credentials."""
        try:
            return service_context(self._conf, self._loaded)
        except exceptions.NoServiceCredentials as exc:
            self._say_off_once(exc)
            return None

    def _say_off_once(self, why):
        if not self._said_off:
            LOG.warning('The image cache does not remove templates of '
                        'images deleted in Glance: %s.', why)
            self._said_off = True

    def deleted(self, image_ids):
        """The ids Glance answers 404 for; any other answer keeps an id.

        401/403, timeouts and an unreachable Glance say nothing about the
        image, so they never mark it deleted.
        """
        if not image_ids:
            return set()
        ctx = self.context()
        if ctx is None:
            return set()
        if not ctx.is_admin:
            # Glance answers 404 for a private image its caller cannot see.
            self._say_off_once('the Glance credentials of cinder (roles %s) '
                               'lack the admin role, and Glance answers 404 '
                               'for private images of other projects' %
                               ', '.join(ctx.roles))
            return set()
        gone = set()
        for image_id in sorted(set(image_ids)):
            try:
                self.service.show(ctx, image_id)
            except cinder_exception.ImageNotFound:
                gone.add(image_id)
            except Exception as exc:
                LOG.warning('Could not ask Glance whether image %(img)s '
                            'still exists (%(exc)s); its template is kept.',
                            {'img': image_id, 'exc': exc})
        return gone
