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

"""VMDK driver with a per-backend cache of Glance images as VM templates.

Enable it in the backend's section of cinder.conf::

    volume_driver = cinder_vmware_cache.driver.VMwareVcVmdkCacheDriver
    enable_image_cache = true

The class only wires cinder's hooks to an ImageTemplateCache; everything
else is the stock VMwareVcVmdkDriver.
"""

from cinder.volume.drivers.vmware import vmdk
from oslo_log import log as logging

from cinder_vmware_cache import cache
from cinder_vmware_cache import image_access
from cinder_vmware_cache import inventory
from cinder_vmware_cache import notify
from cinder_vmware_cache import opts
from cinder_vmware_cache import policy
from cinder_vmware_cache import request
from cinder_vmware_cache import stock

LOG = logging.getLogger(__name__)

STATS_KEY = 'extra_provisioned_capacity_gb'


class VMwareVcVmdkCacheDriver(vmdk.VMwareVcVmdkDriver):
    """Stock VMDK driver plus the image-template cache.

    Set ``volume_driver`` to this class and ``enable_image_cache = true``
    in the backend's section; everything but create-from-image requests
    that ask for the cache is the stock driver.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(opts.image_cache_opts)
        self._image_cache = None

    @staticmethod
    def get_driver_options():
        return vmdk.vmdk_opts + opts.image_cache_opts

    @property
    def image_cache(self):
        """The backend's ImageTemplateCache (None before do_setup)."""
        return self._image_cache

    @property
    def backend_name(self):
        return (self.configuration.safe_get('volume_backend_name') or
                self.__class__.__name__)

    def do_setup(self, context):
        # Check the cache options before anything touches vCenter, so a bad
        # value stops the start with a message that names the option.
        cache_policy = policy.CachePolicy.from_configuration(
            self.configuration, self.backend_name)
        super().do_setup(context)
        if self._image_cache is not None:
            # init_host retries do_setup; never run two purge loops.
            self._image_cache.stop()
        self._image_cache = cache.ImageTemplateCache(
            stock.StockDriver(self), cache_policy, inventory.TemplateInventory(
                self.session, self.volumeops, self.backend_name,
                self.configuration.vmware_volume_folder,
                self.configuration.vmware_max_objects_retrieval),
            images=image_access.GlanceImages(),
            notifier=notify.Notifier(self.backend_name, self.host))

    def check_for_setup_error(self):
        super().check_for_setup_error()
        if self._image_cache is None:
            return
        if (self._image_cache.policy.enabled and not
                self.configuration.safe_get('vmware_enable_volume_stats')):
            LOG.warning("enable_image_cache is on but "
                        "vmware_enable_volume_stats is off: the backend "
                        "reports unknown capacity, so the scheduler cannot "
                        "count the image cache (%s).", STATS_KEY)
        if self._image_cache.policy.enabled:
            self._check_last_use_field()
        self._image_cache.start()

    def _check_last_use_field(self):
        # Recording last use is bookkeeping: the cache works without it,
        # but expiry then counts from a copy's creation.
        try:
            self._image_cache.inventory.ensure_last_used_field()
        except Exception as exc:
            LOG.warning("The image cache cannot define its last-use custom "
                        "field (%s): cached copies are used, but expire by "
                        "their age since creation. Fix: grant the cinder "
                        "user Global.ManageCustomFields and "
                        "Global.SetCustomField (README: vCenter "
                        "privileges).", exc)

    def clone_image(self, context, volume, image_location, image_meta,
                    image_service):
        outcome = cache.Outcome(False)
        if self._image_cache is not None:
            outcome = self._image_cache.create_volume(context, volume,
                                                      image_meta,
                                                      image_service)
        if outcome.served:
            model_update, cloned = None, True
        else:
            model_update, cloned = super().clone_image(
                context, volume, image_location, image_meta, image_service)
        if outcome.result and self._image_cache.policy.result_metadata:
            # The stock clone_image reports cloned=True on its download path
            # too, so cinder keeps this model update either way.
            model_update = request.with_result(volume, model_update,
                                               outcome.result)
        return model_update, cloned

    def _update_volume_stats(self):
        super()._update_volume_stats()
        if self._image_cache is not None:
            self._stats[STATS_KEY] = self._image_cache.provisioned_gb()
