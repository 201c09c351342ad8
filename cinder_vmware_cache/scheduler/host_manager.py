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

"""Scheduler host manager that counts the image cache as provisioned space.

Select it in the scheduler's cinder.conf::

    [DEFAULT]
    scheduler_host_manager = \
        cinder_vmware_cache.scheduler.host_manager.HostManager

Cached templates are not cinder volumes, so the volume manager's
``allocated_capacity_gb`` misses them. A backend that reports
``extra_provisioned_capacity_gb`` has it added to each pool's
``provisioned_capacity_gb``, which the capacity filter and weigher use.
The pool's reported capabilities carry the same sum, so pool listings show
what the capacity filter and weigher see. Backends that do not report the
key are treated exactly as by the stock host manager.
"""

from cinder.scheduler import host_manager

EXTRA_KEY = 'extra_provisioned_capacity_gb'


class PoolState(host_manager.PoolState):
    """A pool whose provisioned capacity includes the backend's cache.

    Adds the reported ``extra_provisioned_capacity_gb`` (a positive number;
    anything else is ignored) to ``provisioned_capacity_gb`` on every fresh
    capability report, and shows the sum in the pool's capabilities.
    """

    def update_from_volume_capability(self, capability, service=None):
        # The stock update ignores a capability older than the last one.
        stale = bool(capability and self.updated and
                     self.updated > capability.get('timestamp', self.updated))
        super().update_from_volume_capability(capability, service)
        if stale or not capability or EXTRA_KEY not in capability:
            return
        extra = capability.get(EXTRA_KEY) or 0
        if isinstance(extra, (int, float)) and extra > 0:
            self.provisioned_capacity_gb += extra
        # Pool reports (get-pools, "openstack volume backend pool list")
        # show the capabilities: let them show what the filters use.
        shown = dict(self.capabilities)
        shown['provisioned_capacity_gb'] = self.provisioned_capacity_gb
        self.capabilities = host_manager.ReadOnlyDict(shown)


class BackendState(host_manager.BackendState):
    """A backend whose pools are ``PoolState``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pool_state_cls = PoolState


class HostManager(host_manager.HostManager):
    """cinder's host manager with cache-aware pool states.

    Set ``scheduler_host_manager`` to this class in cinder-scheduler.
    """

    backend_state_cls = BackendState
