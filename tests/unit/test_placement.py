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

import ddt
from oslo_vmware import vim_util

from cinder_vmware_cache import placement
from tests import common


def summary(value, name, used_percent, capacity=1000):
    found = mock.Mock(datastore=vim_util.get_moref(value, 'Datastore'),
                      capacity=capacity,
                      freeSpace=capacity * (100 - used_percent) // 100)
    found.name = name
    return found


@ddt.ddt
class PreferredTestCase(common.TestCase):

    def setUp(self):
        super().setUp()
        self.summaries = [summary('ds-1', 'one', 50),
                          summary('ds-2', 'two', 70),
                          summary('ds-3', 'three', 95)]
        self.candidates = placement.Candidates(
            {s.datastore: {'summary': s} for s in self.summaries})
        self.stock = placement.Placement('host', 'rp', 'folder',
                                         self.summaries[0], 'dc')

    def names(self, found):
        return sorted(p['summary'].name for p in found.values())

    def test_stock_choice_holding_a_copy_is_kept(self):
        self.assertEqual({}, placement.preferred(
            self.candidates, {'ds-1', 'ds-2'}, self.stock, 80))

    def test_datastores_holding_a_copy_are_ranked(self):
        self.assertEqual(['two'], self.names(placement.preferred(
            self.candidates, {'ds-2'}, self.stock, 80)))

    def test_busy_datastore_is_not_preferred_over_a_calm_stock_choice(self):
        self.assertEqual(['two'], self.names(placement.preferred(
            self.candidates, {'ds-2', 'ds-3'}, self.stock, 80)))
        self.assertEqual([], self.names(placement.preferred(
            self.candidates, {'ds-3'}, self.stock, 80)))

    def test_when_the_stock_choice_is_busy_too_the_bound_is_off(self):
        busy = placement.Placement('host', 'rp', 'folder',
                                   summary('ds-4', 'four', 90), 'dc')
        self.assertEqual(['three'], self.names(placement.preferred(
            self.candidates, {'ds-3'}, busy, 80)))

    def test_copies_outside_the_candidates_are_never_preferred(self):
        self.assertEqual({}, placement.preferred(
            self.candidates, {'ds-9'}, self.stock, 80))

    @ddt.data((0, 100.0), (1000, 0.0))
    @ddt.unpack
    def test_utilization(self, free, expected):
        self.assertEqual(expected, placement.utilization(
            mock.Mock(capacity=1000, freeSpace=free)))
        self.assertEqual(100.0, placement.utilization(
            mock.Mock(capacity=0, freeSpace=0)))

    def test_by_name(self):
        twin = summary('ds-5', 'one', 10)
        self.candidates.datastores[twin.datastore] = {'summary': twin}
        found = placement.by_name(self.candidates, ['one', 'two', 'nope'])
        self.assertEqual([2, 1, 0], [len(found[n])
                                     for n in ('one', 'two', 'nope')])

    def test_placement_names_its_datastore(self):
        self.assertEqual('ds-1', self.stock.datastore)
