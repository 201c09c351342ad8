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


import ddt

from cinder_vmware_cache import request
from tests import common


@ddt.ddt
class ResolveTestCase(common.TestCase):

    @ddt.data('true', 'True', 'TRUE', '1', 'yes', 'on', ' true ', 'Y')
    def test_true_values(self, value):
        result = request.resolve({'use_image_cache': value})
        self.assertTrue(result.requested)
        self.assertEqual(request.METADATA_KEY, result.source)

    @ddt.data('false', 'False', '0', 'no', 'off', 'n')
    def test_false_values(self, value):
        result = request.resolve({'use_image_cache': value})
        self.assertFalse(result.requested)
        self.assertFalse(result.invalid)

    @ddt.data('N/A', 'maybe', 'tru', '2', 'x' * 5000, '\u00fcber', 'true!')
    def test_unparseable_values_warn_once_and_mean_no(self, value):
        with self.assertLogs(request.LOG.logger, 'WARNING') as logs:
            result = request.resolve({'use_image_cache': value})
        self.assertFalse(result.requested)
        self.assertTrue(result.invalid)
        self.assertEqual(1, len(logs.records))
        # A huge value is not copied into the log line whole.
        self.assertLess(len(logs.output[0]), 400)

    @ddt.data({}, None, {'use_image_cache': ''}, {'use_image_cache': '   '},
              {'other': 'true'})
    def test_absent_or_blank_means_no(self, metadata):
        self.assertEqual(request.Request(False), request.resolve(metadata))

    def test_metadata_wins_over_type_and_image(self):
        result = request.resolve({'use_image_cache': 'false'},
                                 {'vmware:use_image_cache': 'true'},
                                 {'vmware_use_image_cache': 'true'})
        self.assertFalse(result.requested)
        self.assertEqual(request.METADATA_KEY, result.source)

    def test_blank_metadata_defers_to_type(self):
        result = request.resolve({'use_image_cache': ' '},
                                 {'vmware:use_image_cache': 'true'})
        self.assertTrue(result.requested)
        self.assertEqual(request.EXTRA_SPEC_KEY, result.source)

    @ddt.data('<is> True', '<IS> true', 'true')
    def test_type_extra_spec(self, value):
        result = request.resolve({}, {'vmware:use_image_cache': value})
        self.assertTrue(result.requested)

    def test_type_wins_over_image(self):
        result = request.resolve({}, {'vmware:use_image_cache': 'no'},
                                 {'vmware_use_image_cache': 'yes'})
        self.assertFalse(result.requested)
        self.assertEqual(request.EXTRA_SPEC_KEY, result.source)

    def test_image_property(self):
        result = request.resolve(None, None, {'vmware_use_image_cache': 'on'})
        self.assertTrue(result.requested)
        self.assertEqual(request.IMAGE_PROPERTY_KEY, result.source)


class ResultTestCase(common.TestCase):

    def test_merges_with_the_volumes_own_metadata(self):
        volume = {'metadata': {'use_image_cache': 'true', 'owner': 'ops'}}
        self.assertEqual(
            {'metadata': {'use_image_cache': 'true', 'owner': 'ops',
                          'image_cache_result': 'hit'}},
            request.with_result(volume, None, 'hit'))
        # The volume itself is not changed.
        self.assertNotIn('image_cache_result', volume['metadata'])

    def test_keeps_the_drivers_model_update(self):
        self.assertEqual(
            {'provider_location': 'x',
             'metadata': {'a': '1', 'b': '2',
                          'image_cache_result': 'not used: cache error'}},
            request.with_result({'metadata': {'a': '1'}},
                                {'provider_location': 'x',
                                 'metadata': {'b': '2'}},
                                request.not_used('cache error')))

    def test_never_changes_a_users_own_key(self):
        update = {'size': 1}
        self.assertIs(update, request.with_result(
            {'metadata': {'image_cache_result': 'mine'}}, update, 'filled'))

    def test_unreadable_metadata(self):
        self.assertEqual({'metadata': {'image_cache_result': 'filled'}},
                         request.with_result(object(), None, 'filled'))
