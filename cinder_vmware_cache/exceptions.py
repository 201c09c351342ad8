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

"""Typed errors of the image-template cache.

Every error raised inside the cache path is one of these (or an
oslo.vmware/cinder error) so that the driver can fall back to the normal
download path and say why.
"""


from cinder import exception as cinder_exception


class ImageCacheError(Exception):
    """Base class: the cache could not serve this request."""


class InvalidCacheOption(cinder_exception.InvalidConfigurationValue):
    """An image-cache option has a value the driver cannot run with.

    cinder's own type for a configuration error, with the reason that
    oslo.config gave.
    """

    message = 'Invalid value for option %(option)s: %(reason)s'


class ImageNotCacheable(ImageCacheError):
    """The policy refuses this image (disabled, not vmdk, too large)."""


class NoServiceCredentials(ImageCacheError):
    """No keystoneauth options to ask Glance without a user's token."""


class CacheWaitTimeout(ImageCacheError):
    """Another request held the image's cache lock for too long."""


class TaskHung(ImageCacheError):
    """vCenter work did not end within image_cache_task_timeout."""


class TemplateUnusable(ImageCacheError):
    """Cloning from a cached template failed; the template is dropped."""

    def __init__(self, entry, cause):
        super().__init__('template %s: %s' % (entry.name, cause))
        self.entry = entry
        self.cause = cause


class DatastoreNotEligible(ImageCacheError):
    """A named datastore cannot hold the copy, or the name is ambiguous."""
