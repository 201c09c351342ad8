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

"""The one seam between the cache and cinder's stock VMDK driver.

Every use of the stock driver's private methods goes through here, and so
does everything that differs between the cinder releases we support (26
to 29), so that a change in cinder shows in one module and its tests.

What differs, measured on cinder 26.3.0, 27.0.0, 28.0.0 and 29.0.0: the
private methods used here have the same signatures in all four, and
``volumeops`` is the same; cinder 28 and later retry a streamOptimized
import that hits ``DuplicateName`` (26 and 27 fail it, and the cache then
takes the normal path, as after any failed fill); ``cinder.monkey_patch``
exists from cinder 29 on. ``_create_session`` and the constructor of
``VMwareVolumeOps`` (``open_volumeops``) are the same in all four.
"""


class StockDriver(object):
    """What the cache asks of a backend's stock VMDK driver.

    :param driver: the backend's ``VMwareVcVmdkDriver`` (set up).
    """

    def __init__(self, driver):
        self._driver = driver

    @property
    def volumeops(self):
        """The driver's ``VMwareVolumeOps``: public vCenter operations."""
        return self._driver.volumeops

    def placement(self, volume):
        """Where the stock driver would create ``volume``.

        :returns: (host, resource pool, folder, datastore summary), with
            the stock rules: size, storage profile, datastore regex, hosts.
        """
        return self._driver._select_ds_for_volume(volume)

    def datacenter(self, resource_pool):
        return self._driver._get_dc(resource_pool)

    def disk_type(self, volume):
        """The volume type's disk type (thin, thick, eagerZeroedThick)."""
        return self._driver._get_disk_type(volume)

    def extra_config(self, volume):
        """The extraConfig the stock driver gives a volume's backing."""
        return self._driver._get_extra_config(volume)

    def extend(self, backing, size_gb, disk_type):
        self._driver._extend_backing(backing, size_gb, disk_type)

    def import_image(self, context, volume, image_service, image_id):
        """Create ``volume``'s backing from the image, the stock way."""
        self._driver.copy_image_to_volume(context, volume, image_service,
                                          image_id)


def open_volumeops(configuration):
    """Log in to a backend's vCenter: (session, ``VMwareVolumeOps``).

    Both are built as the stock driver's ``do_setup`` builds them (its own
    ``_create_session``, the same extension key), but without the rest of
    ``do_setup``: no version and PBM checks, no vCenter extension
    registration and no scan of every VM of the vCenter. Enough to read and
    delete cache entries, as the operator command does; not enough to
    create volumes. The caller logs the session out.

    :param configuration: the backend's cinder ``Configuration``.
    """
    # Imported here: this module is imported before the monkey patching.
    from cinder.volume.drivers.vmware import vmdk
    from cinder.volume.drivers.vmware import volumeops

    session = vmdk.VMwareVcVmdkDriver(
        configuration=configuration)._create_session()
    return session, volumeops.VMwareVolumeOps(
        session, configuration.vmware_max_objects_retrieval,
        vmdk.EXTENSION_KEY, vmdk.EXTENSION_TYPE)


def monkey_patch():
    """Apply cinder's eventlet monkey patching, as its commands do.

    cinder 29 has ``cinder.monkey_patch``; before it, each command patched
    eventlet itself.
    """
    try:
        from cinder import monkey_patch as cinder_monkey_patch
    except ImportError:
        import eventlet
        eventlet.monkey_patch()
    else:
        cinder_monkey_patch.patch()
