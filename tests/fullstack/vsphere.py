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

"""What vCenter holds, read with pyVmomi (no cinder, no oslo.vmware).

The end-to-end test checks the inventory itself, independently of the
driver's code: the cache folder ``OpenStack/Project (<backend>_image_cache)
/Volumes``, the volume backings in ``OpenStack/Project (<project id>)/
Volumes``, their disks, and the last-use custom field.
"""

import dataclasses
import datetime
import ssl
import time

from pyVim import connect
from pyVmomi import vim
from pyVmomi import vmodl

ROOT_FOLDER = 'OpenStack'
VOLUME_FOLDER = 'Volumes'
LAST_USED_FIELD = 'cinder-image-cache-last-used'


def cache_project(backend):
    return '%s_image_cache' % backend


@dataclasses.dataclass(frozen=True)
class VM:
    ref: str
    name: str
    template: bool
    instance_uuid: str
    disks: tuple
    last_used: datetime.datetime = None


class VCenter(object):

    def __init__(self, settings):
        port = int(settings['vmware_host_port'])
        kwargs = {}
        if str(settings.get('vmware_insecure', 'true')).lower() in (
                'true', '1', 'yes', 'on'):
            kwargs['sslContext'] = ssl._create_unverified_context()
        self._si = connect.SmartConnect(
            host=settings['vmware_host_ip'], port=port,
            user=settings['vmware_host_username'],
            pwd=settings['vmware_host_password'], **kwargs)
        self.content = self._si.RetrieveContent()

    def close(self):
        connect.Disconnect(self._si)

    # ---- folders ----------------------------------------------------------
    @staticmethod
    def _child(folder, name):
        for child in folder.childEntity:
            if isinstance(child, vim.Folder) and child.name == name:
                return child
        return None

    def project_folders(self, project):
        """``OpenStack/Project (<project>)`` of every datacenter."""
        found = []
        for dc in self.content.rootFolder.childEntity:
            if not isinstance(dc, vim.Datacenter):
                continue
            top = self._child(dc.vmFolder, ROOT_FOLDER)
            folder = top and self._child(top, 'Project (%s)' % project)
            if folder is not None:
                found.append(folder)
        return found

    def vms(self, project, subfolder=VOLUME_FOLDER):
        """The VMs in ``OpenStack/Project (<project>)/<subfolder>``."""
        result = []
        for project_folder in self.project_folders(project):
            folder = self._child(project_folder, subfolder)
            if folder is None:
                continue
            for child in folder.childEntity:
                if not isinstance(child, vim.VirtualMachine):
                    continue
                try:
                    result.append(self.describe(child))
                except vmodl.fault.ManagedObjectNotFound:
                    # Deleted (by the purge) since the folder was read.
                    continue
        return result

    def templates(self, backend):
        """What the cache folder of ``backend`` holds."""
        return self.vms(cache_project(backend))

    # ---- VMs --------------------------------------------------------------
    def _field_key(self):
        for field in self.content.customFieldsManager.field or []:
            if field.name == LAST_USED_FIELD:
                return field.key
        return None

    def describe(self, vm_obj):
        config = vm_obj.config
        disks = tuple(
            dev.backing.fileName for dev in config.hardware.device
            if isinstance(dev, vim.vm.device.VirtualDisk))
        key = self._field_key()
        stamps = []
        for value in vm_obj.customValue or []:
            if value.key == key and value.value:
                stamp = datetime.datetime.fromisoformat(
                    value.value.replace('Z', '+00:00'))
                stamps.append(stamp)
        return VM(ref=vm_obj._moId, name=vm_obj.name,
                  template=bool(config.template),
                  instance_uuid=config.instanceUuid, disks=disks,
                  last_used=max(stamps, default=None))

    def all_vms(self):
        """{moref: name} of every VM in the VM folders of all datacenters.

        Walks the folders rather than using a ContainerView: the simulator
        keeps destroyed templates in host and resource-pool views.
        """
        found = {}

        def walk(folder):
            for child in folder.childEntity:
                if isinstance(child, vim.Folder):
                    walk(child)
                elif isinstance(child, vim.VirtualMachine):
                    try:
                        found[child._moId] = child.name
                    except vmodl.fault.ManagedObjectNotFound:
                        continue  # deleted since the folder was read
        for dc in self.content.rootFolder.childEntity:
            if isinstance(dc, vim.Datacenter):
                walk(dc.vmFolder)
        return found

    # ---- clean-up ---------------------------------------------------------
    @staticmethod
    def _wait(task, timeout=60):
        deadline = time.monotonic() + timeout
        while task.info.state in (vim.TaskInfo.State.queued,
                                  vim.TaskInfo.State.running):
            if time.monotonic() > deadline:
                raise RuntimeError('vCenter task %s still running' %
                                   task._moId)
            time.sleep(0.1)
        if task.info.state != vim.TaskInfo.State.success:
            raise RuntimeError('vCenter task %s failed: %s' % (
                task._moId, task.info.error))

    def remove_projects(self, projects):
        """Destroy the given ``Project (...)`` folders and all they hold."""
        removed = []
        for project in projects:
            for folder in self.project_folders(project):
                removed.extend(self._destroy_tree(folder))
                self._wait(folder.Destroy_Task())
        return removed

    def _destroy_tree(self, folder):
        removed = []
        for child in list(folder.childEntity):
            if isinstance(child, vim.Folder):
                removed.extend(self._destroy_tree(child))
            elif isinstance(child, vim.VirtualMachine):
                removed.append(child.name)
                self._wait(child.Destroy_Task())
        return removed
