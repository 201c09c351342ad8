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

"""The printable records of cache entries."""

import datetime
from unittest import mock

import ddt
from oslo_utils import units
from oslo_vmware import vim_util

from cinder_vmware_cache.cli import records
from cinder_vmware_cache import policy
from tests import common
from tests.unit.cli import base


@ddt.ddt
class RecordsTestCase(common.TestCase):

    @ddt.data((0, None), (1, 1), (units.Gi, 1), (units.Gi + 1, 2),
              (10 * units.Gi, 10))
    @ddt.unpack
    def test_size_gb_rounds_up(self, size_bytes, size_gb):
        entry = policy.CacheEntry(image_id='i', name='image-i', ref='vm-1',
                                  ready=True, size_bytes=size_bytes)
        record = records.make_record(entry, policy.CachePolicy())
        self.assertEqual(size_gb, record['size_gb'])

    def test_iso_times(self):
        self.assertIsNone(records._iso(None))
        self.assertEqual('2024-05-01T10:00:00Z', records._iso(base.CREATED))
        aware = datetime.datetime(
            2024, 5, 1, 12, 0, tzinfo=datetime.timezone(
                datetime.timedelta(hours=2)))
        self.assertEqual('2024-05-01T10:00:00Z', records._iso(aware))

    def test_purge_after_unknown_without_dates(self):
        entry = policy.CacheEntry(image_id='i', name='image-i', ref='vm-1',
                                  ready=True)
        record = records.make_record(entry, policy.CachePolicy())
        self.assertIsNone(record['purge_after'])
        self.assertIsNone(record['datastore'])
        self.assertEqual(set(records.FIELDS), set(record))

    def test_unknown_value(self):
        unknown = records.Unknown()
        self.assertEqual('-', unknown.human_readable())
        self.assertIsNone(unknown.machine_readable())
        self.assertEqual([1, 3, unknown], sorted([unknown, 3, 1]))
        self.assertEqual(['a', unknown], sorted([unknown, 'a']))
        self.assertFalse(unknown < records.Unknown())
        self.assertFalse(unknown > records.Unknown())

    def test_datastore_names_ask_vcenter_once_per_datastore(self):
        session = base.fake_session()
        names = records.datastore_names(
            session, [base.READY, base.PARTIAL, base.OTHER_READY,
                      policy.CacheEntry(image_id='i', name='image-i',
                                        ref='vm-9', ready=True)])
        self.assertEqual({'datastore-11': 'ds-gold',
                          'datastore-12': 'ds-silver'}, names)
        self.assertEqual(2, session.invoke_api.call_count)
        session.invoke_api.assert_any_call(
            vim_util, 'get_object_property', session.vim, mock.ANY, 'name')
