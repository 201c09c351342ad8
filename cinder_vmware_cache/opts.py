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

"""Every option of the image-template cache, in one place.

The options are per backend: they are read from the backend's section of
cinder.conf, falling back to ``[backend_defaults]``, like the VMDK driver's
own options.
"""

from oslo_config import cfg

image_cache_opts = [
    cfg.BoolOpt('enable_image_cache',
                default=False,
                help='Cache Glance images as vCenter VM templates for this '
                     'backend. Volumes created from an image with the '
                     'volume metadata use_image_cache=true (or the volume '
                     'type extra spec vmware:use_image_cache, or the image '
                     'property vmware_use_image_cache) are cloned from the '
                     'cached template instead of downloading the image '
                     'again. Templates live in the folder '
                     'OpenStack/Project (<backend>_image_cache)/Volumes. '
                     'Turning this off stops new caching; templates already '
                     'cached keep being counted and expired.'),
    cfg.IntOpt('image_cache_max_size_gb',
               default=100,
               min=0,
               help='Largest image, in GiB, that is cached. The image\'s '
                    'virtual size is compared when Glance knows it, its file '
                    'size otherwise. Larger images take the normal '
                    'download path.'),
    cfg.IntOpt('image_cache_age_seconds',
               default=86400,
               min=1,
               help='A cached template that has not been used (filled or '
                    'cloned from) for this many seconds is deleted by the '
                    'periodic purge.'),
    cfg.IntOpt('image_cache_purge_interval',
               default=600,
               min=1,
               help='Seconds between runs of the periodic task that expires '
                    'and evicts cached templates and removes leftovers of '
                    'interrupted fills.'),
    cfg.IntOpt('image_cache_max_total_gb',
               default=0,
               min=0,
               help='Upper bound, in GiB, on the provisioned size of all '
                    'templates in this backend\'s cache. Least recently used '
                    'templates are evicted after each fill and purge until '
                    'it holds. 0 means no bound.'),
    cfg.IntOpt('image_cache_max_count',
               default=0,
               min=0,
               help='Upper bound on the number of templates in this '
                    'backend\'s cache. Least recently used templates are '
                    'evicted after each fill and purge until it holds. '
                    '0 means no bound.'),
    cfg.IntOpt('image_cache_wait_timeout',
               default=1800,
               min=1,
               help='Seconds a request waits in all for other requests: one '
                    'filling the cache with the same image, or seeding a '
                    'copy of it on the same datastore. A request that '
                    'waits longer creates its volume through the normal '
                    'download path instead. Cache hits never wait.'),
    cfg.IntOpt('image_cache_task_timeout',
               default=3600,
               min=0,
               help='Seconds after which a fill (the image import), a seed '
                    '(a copy to another datastore) or a clone from the '
                    'cache that has not ended is abandoned: its request '
                    'creates the volume through the normal download path '
                    'and a clone task is cancelled. 0 means no bound. '
                    'Applied in cinder\'s eventlet mode (the default).'),
    cfg.IntOpt('image_cache_leftover_grace_seconds',
               default=3600,
               min=0,
               help='Unpublished templates (from a fill that crashed or '
                    'failed) older than this are deleted by the periodic '
                    'purge, provided no fill of that image holds its lock.'),
    cfg.BoolOpt('image_cache_result_metadata',
                default=True,
                help='Record in each volume that asked for the image cache '
                     'what the cache did, in the volume metadata key '
                     'image_cache_result: "hit", "filled" or "not used: '
                     '<reason>" (visible in openstack volume show). The '
                     'user\'s own metadata keys are never changed.'),
    cfg.ListOpt('image_cache_warm_images',
                default=[],
                help='Glance image ids that the periodic task keeps in the '
                     'cache: it fills a listed image that is not cached and '
                     'never expires or evicts one. Listed images count '
                     'against image_cache_max_total_gb and '
                     'image_cache_max_count. Needs Glance credentials of '
                     'cinder\'s own: the keystoneauth options of [glance] '
                     '(cinder 27 and later) or [service_user].'),
    cfg.StrOpt('image_cache_placement',
               default='prefer-cached',
               choices=[('prefer-cached', 'Among the datastores the stock '
                         'selection accepts for the volume, prefer one that '
                         'holds a copy of the image.'),
                        ('stock', 'Always the stock selection\'s datastore; '
                         'a copy is made there when it has none.')],
               help='Where a volume that asks for the image cache is '
                    'placed. Each datastore holds its own copy of an image, '
                    'so a volume on a datastore with a copy is cloned inside '
                    'that datastore (offloaded to the array), and a volume '
                    'elsewhere first gets a copy there, seeded from another '
                    'datastore of the datacenter.'),
    cfg.IntOpt('image_cache_placement_max_utilization',
               default=80,
               min=0,
               max=100,
               help='With image_cache_placement = prefer-cached, a datastore '
                    'holding a copy is not preferred when more than this '
                    'percentage of it is used while the stock choice is '
                    'below it, so a burst of volumes does not fill the one '
                    'datastore that holds the copy.'),
    cfg.IntOpt('image_cache_max_copies_per_image',
               default=0,
               min=0,
               help='Upper bound on the copies of one image (one per '
                    'datastore at most). A volume on a datastore without a '
                    'copy is cloned across datastores once the bound is '
                    'reached; the purge drops the least recently used '
                    'copies beyond it. 0 means one copy per datastore.'),
]


def list_opts():
    """Options for oslo-config-generator (namespace cinder_vmware_cache)."""
    return [('backend_defaults', image_cache_opts)]
