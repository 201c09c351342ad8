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

from cinder.scheduler.filters import capacity_filter
from cinder.scheduler import host_manager as stock
from cinder.scheduler.weights import capacity as capacity_weigher
from cinder.tests.unit import test
import ddt
from oslo_utils import timeutils

from cinder_vmware_cache.scheduler import host_manager


def capability(extra=None, **kw):
    cap = {'total_capacity_gb': 100, 'free_capacity_gb': 60,
           'allocated_capacity_gb': 50, 'reserved_percentage': 0,
           'timestamp': timeutils.utcnow(), 'volume_backend_name': 'vmw'}
    if extra is not None:
        cap['extra_provisioned_capacity_gb'] = extra
    cap.update(kw)
    return cap


@ddt.ddt
class HostManagerTestCase(test.TestCase):

    def backend(self, cls, cap):
        state = cls('host1@vmw', None)
        state.update_from_volume_capability(cap)
        return state.pools['vmw']

    def test_host_manager_uses_our_states(self):
        self.assertIs(host_manager.BackendState,
                      host_manager.HostManager.backend_state_cls)
        state = host_manager.HostManager.backend_state_cls('h@b', None)
        self.assertIs(host_manager.PoolState, state.pool_state_cls)

    @ddt.data((None, 50), (0, 50), (30, 80), (12.5, 62.5))
    @ddt.unpack
    def test_provisioned_includes_extra(self, extra, expected):
        pool = self.backend(host_manager.BackendState, capability(extra))
        self.assertEqual(expected, pool.provisioned_capacity_gb)

    def test_pool_report_shows_the_sum(self):
        pool = self.backend(host_manager.BackendState, capability(30))
        self.assertEqual(80, pool.capabilities['provisioned_capacity_gb'])
        self.assertEqual(30,
                         pool.capabilities['extra_provisioned_capacity_gb'])

    def test_get_pools_reports_the_sum(self):
        manager = host_manager.HostManager()
        state = host_manager.BackendState('h@vmw', None)
        state.update_from_volume_capability(capability(30))
        manager.backend_state_map = {'h@vmw': state}
        with mock.patch.object(manager, '_update_backend_state_map'):
            pools = manager.get_pools(mock.sentinel.ctx)
        self.assertEqual(['h@vmw#vmw'], [p['name'] for p in pools])
        self.assertEqual(80,
                         pools[0]['capabilities']['provisioned_capacity_gb'])

    def test_without_key_same_as_stock(self):
        cap = capability()
        ours = self.backend(host_manager.BackendState, cap)
        theirs = self.backend(stock.BackendState, cap)
        for attr in ('provisioned_capacity_gb', 'allocated_capacity_gb',
                     'free_capacity_gb', 'total_capacity_gb'):
            self.assertEqual(getattr(theirs, attr), getattr(ours, attr))
        self.assertEqual(dict(theirs.capabilities), dict(ours.capabilities))

    def test_reported_provisioned_plus_extra(self):
        pool = self.backend(host_manager.BackendState,
                            capability(10, provisioned_capacity_gb=70))
        self.assertEqual(80, pool.provisioned_capacity_gb)

    def test_stale_update_is_ignored(self):
        state = host_manager.BackendState('h@vmw', None)
        new = capability(30)
        state.update_from_volume_capability(new)
        old = capability(99, timestamp=new['timestamp'].replace(year=2000))
        state.update_from_volume_capability(old)
        self.assertEqual(80, state.pools['vmw'].provisioned_capacity_gb)

    def test_capacity_filter_and_weigher_see_the_cache(self):
        # total 100, allocated 50, cache 30: 20 GiB virtually free (thick).
        props = {'size': 25, 'request_spec': {'volume_id': 'v1'}}
        # The scheduler filters and weighs pool states.
        ours = self.backend(host_manager.BackendState, capability(30))
        theirs = self.backend(stock.BackendState, capability(30))
        flt = capacity_filter.CapacityFilter()
        self.assertFalse(flt.backend_passes(ours, props))
        self.assertTrue(flt.backend_passes(theirs, props))
        weigher = capacity_weigher.CapacityWeigher()
        self.assertEqual(20, weigher._weigh_object(ours, {}))
        self.assertEqual(50, weigher._weigh_object(theirs, {}))
