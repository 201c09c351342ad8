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


import dataclasses
import datetime
import os

from cinder import exception as cinder_exception
from cinder.volume import configuration as configuration_mod
import ddt
import fixtures
from oslo_config import cfg
from oslo_utils import units

from cinder_vmware_cache import exceptions
from cinder_vmware_cache import opts
from cinder_vmware_cache import policy
from tests import common

NOW = datetime.datetime(2026, 11, 21, 12, 0, 0)


def entry(image_id, ready=True, size_gb=1, idle=0, created_ago=None,
          ref=None):
    created = NOW - datetime.timedelta(
        seconds=idle if created_ago is None else created_ago)
    return policy.CacheEntry(
        image_id=image_id, name='image-%s' % image_id, ref=ref or image_id,
        ready=ready, size_bytes=size_gb * units.Gi, created_at=created,
        last_used=NOW - datetime.timedelta(seconds=idle) if ready else None)


def configuration(testcase, **values):
    """A backend's configuration read by oslo.config from a file.

    Values are written as text, as an operator writes them, so oslo.config
    does the type and bound checks it does in cinder-volume.
    """
    path = os.path.join(testcase.useFixture(fixtures.TempDir()).path,
                        'cinder.conf')
    with open(path, 'w') as conf_file:
        conf_file.write('[vmw1]\n')
        for name, value in values.items():
            conf_file.write('%s = %s\n' % (name, value))
    conf = cfg.ConfigOpts()
    conf(args=[], default_config_files=[path])
    # cinder's Configuration reads the global CONF: give it this one.
    testcase.useFixture(fixtures.MonkeyPatch(
        'cinder.volume.configuration.CONF', conf))
    return configuration_mod.Configuration(opts.image_cache_opts,
                                           config_group='vmw1')


@ddt.ddt
class FromConfigurationTestCase(common.TestCase):

    def test_defaults_when_unset(self):
        self.assertEqual(policy.CachePolicy(),
                         policy.CachePolicy.from_configuration(
                             configuration(self)))

    def test_values(self):
        conf = configuration(self, enable_image_cache='true',
                             image_cache_max_size_gb=5,
                             image_cache_age_seconds=10,
                             image_cache_purge_interval=2,
                             image_cache_max_total_gb=50,
                             image_cache_max_count=3,
                             image_cache_wait_timeout=7,
                             image_cache_leftover_grace_seconds=0,
                             image_cache_result_metadata='false',
                             image_cache_warm_images=' img-a, ,img-b',
                             image_cache_placement='stock',
                             image_cache_placement_max_utilization=90,
                             image_cache_max_copies_per_image=2)
        self.assertEqual(
            policy.CachePolicy(enabled=True, max_image_gb=5, age_seconds=10,
                               purge_interval=2, max_total_gb=50, max_count=3,
                               wait_timeout=7, leftover_grace_seconds=0,
                               result_metadata=False,
                               warm_images=('img-a', 'img-b'),
                               placement='stock',
                               placement_max_utilization=90,
                               max_copies_per_image=2),
            policy.CachePolicy.from_configuration(conf))

    def test_empty_value_is_the_default(self):
        conf = configuration(self, image_cache_age_seconds='')
        self.assertEqual(policy.CachePolicy(),
                         policy.CachePolicy.from_configuration(conf))

    @ddt.data(('image_cache_age_seconds', 0),
              ('image_cache_purge_interval', -5),
              ('image_cache_max_size_gb', -1),
              ('image_cache_max_size_gb', 1.5),
              ('image_cache_max_count', 'many'),
              ('image_cache_placement', 'nearest'),
              ('image_cache_placement_max_utilization', 101),
              ('enable_image_cache', 'perhaps'))
    @ddt.unpack
    def test_invalid_values_name_the_option(self, name, value):
        conf = configuration(self, **{name: value})
        error = self.assertRaises(cinder_exception.InvalidConfigurationValue,
                                  policy.CachePolicy.from_configuration,
                                  conf, 'vmw1')
        self.assertIsInstance(error, exceptions.InvalidCacheOption)
        self.assertIn('[vmw1] %s: ' % name, str(error))
        self.assertIn('is not valid', str(error))


@ddt.ddt
class RefusalTestCase(common.TestCase):

    def setUp(self):
        super().setUp()
        self.policy = policy.CachePolicy(enabled=True, max_image_gb=2)

    def meta(self, **kw):
        meta = {'disk_format': 'vmdk', 'size': units.Gi}
        meta.update(kw)
        return meta

    def test_eligible(self):
        self.assertIsNone(self.policy.refusal(self.meta()))

    def test_disabled(self):
        refusal = policy.CachePolicy().refusal(self.meta())
        self.assertEqual('cache disabled', refusal.reason)
        self.assertIn('disabled for this backend', str(refusal))

    @ddt.data('qcow2', 'raw', None)
    def test_not_vmdk(self, disk_format):
        refusal = self.policy.refusal(self.meta(disk_format=disk_format))
        self.assertEqual('not a vmdk image', refusal.reason)
        self.assertIn('%r, not vmdk' % disk_format, str(refusal))

    def test_size_at_limit_is_cached(self):
        self.assertIsNone(self.policy.refusal(self.meta(size=2 * units.Gi)))

    def test_virtual_size_is_compared_first(self):
        # A small compressed file with a large disk inside is too big.
        refusal = self.policy.refusal(
            self.meta(size=units.Mi, virtual_size=3 * units.Gi))
        self.assertEqual('image too large', refusal.reason)
        self.assertIn('(3221225472 bytes) is larger', str(refusal))

    def test_file_size_when_virtual_size_unknown(self):
        self.assertEqual('image too large', self.policy.refusal(
            self.meta(size=3 * units.Gi, virtual_size=None)).reason)

    def test_no_size_at_all(self):
        refusal = self.policy.refusal(self.meta(size=None, virtual_size=None))
        self.assertEqual('image size unknown', refusal.reason)
        self.assertIn('neither', str(refusal))


class LifecycleTestCase(common.TestCase):

    def test_expired_by_last_use(self):
        pol = policy.CachePolicy(age_seconds=100)
        used = entry('used', idle=10, created_ago=1000)
        idle = entry('idle', idle=500)
        partial = entry('partial', ready=False, created_ago=1000)
        self.assertEqual([idle], pol.expired([used, idle, partial], NOW))

    def test_retired_entries_go_after_the_retire_grace(self):
        pol = policy.CachePolicy(retire_grace_seconds=10)
        fresh = dataclasses.replace(
            entry('a', ready=False, created_ago=99999),
            retired_at=NOW - datetime.timedelta(seconds=5))
        due = dataclasses.replace(
            entry('b', ready=False, created_ago=5),
            retired_at=NOW - datetime.timedelta(seconds=10))
        self.assertEqual([due], pol.leftovers([fresh, due], NOW))

    def test_leftovers_after_grace(self):
        pol = policy.CachePolicy(leftover_grace_seconds=60)
        old = entry('old', ready=False, created_ago=61)
        young = entry('young', ready=False, created_ago=5)
        unknown = policy.CacheEntry('u', 'image-u', 'u', ready=False)
        self.assertEqual([old], pol.leftovers(
            [old, young, unknown, entry('ready', created_ago=999)], NOW))

    def test_use_record_lag_is_a_tenth_of_the_age_at_most_a_minute(self):
        self.assertEqual(60, policy.CachePolicy().use_record_seconds)
        self.assertEqual(4, policy.CachePolicy(
            age_seconds=40).use_record_seconds)

    def test_capped_when_any_cap_is_set(self):
        self.assertFalse(policy.CachePolicy().capped)
        for cap in ('max_count', 'max_total_gb', 'max_copies_per_image'):
            self.assertTrue(policy.CachePolicy(**{cap: 1}).capped, cap)

    def test_evictions_by_count_in_lru_order(self):
        pol = policy.CachePolicy(max_count=2)
        a, b, c = entry('a', idle=30), entry('b', idle=10), entry('c', idle=20)
        self.assertEqual([a], pol.evictions([a, b, c]))

    def test_evictions_by_total_size(self):
        pol = policy.CachePolicy(max_total_gb=5)
        entries = [entry('a', size_gb=3, idle=3),
                   entry('b', size_gb=3, idle=2),
                   entry('c', size_gb=1, idle=1)]
        self.assertEqual(['a'], [e.image_id for e in pol.evictions(entries)])

    def test_both_caps(self):
        pol = policy.CachePolicy(max_total_gb=100, max_count=1)
        entries = [entry('a', idle=1), entry('b', idle=2), entry('c', idle=3)]
        self.assertEqual(['c', 'b'],
                         [e.image_id for e in pol.evictions(entries)])

    def test_warm_images_never_expire(self):
        pol = policy.CachePolicy(age_seconds=100, warm_images=('idle',))
        self.assertEqual([], pol.expired([entry('idle', idle=500)], NOW))

    def test_copies_count_each_and_the_bound_drops_the_oldest(self):
        pol = policy.CachePolicy(max_copies_per_image=2, max_count=3)
        copies = [entry('a', idle=idle, ref='a%d' % idle)
                  for idle in (5, 50, 20)]
        other = [entry('b', idle=1, ref='b1'), entry('b', idle=2, ref='b2')]
        # a50 is the least recently used copy of a beyond the bound; four
        # copies are left for a cap of three: the least recently used, a20.
        self.assertEqual(['a50', 'a20'],
                         [e.ref for e in pol.evictions(copies + other)])
        self.assertTrue(pol.may_add_copy(copies[:1]))
        self.assertFalse(pol.may_add_copy(copies[:2]))
        self.assertTrue(policy.CachePolicy().may_add_copy(copies))

    def test_warm_images_count_but_are_never_evicted(self):
        pol = policy.CachePolicy(max_count=2, warm_images=('a', 'b'))
        a, b, c = entry('a', idle=30), entry('b', idle=20), entry('c', idle=1)
        self.assertEqual([c], pol.evictions([a, b, c]))

    def test_warm_overflow(self):
        self.assertIsNone(policy.CachePolicy(
            max_count=2, warm_images=('a', 'b')).warm_overflow())
        pol = policy.CachePolicy(max_count=1, warm_images=('a', 'b'))
        self.assertIn('lists 2 images', pol.warm_overflow())
        by_size = policy.CachePolicy(max_total_gb=2, warm_images=('a', 'b'))
        self.assertIsNone(by_size.warm_overflow())
        self.assertIn('(4 GiB cached)', by_size.warm_overflow(
            [entry('a', size_gb=2), entry('b', size_gb=2)]))

    def test_no_caps_no_evictions(self):
        self.assertEqual([], policy.CachePolicy().evictions(
            [entry(str(i), idle=i) for i in range(50)]))


@ddt.ddt
class GibTestCase(common.TestCase):

    @ddt.data((0, 0), (1, 1), (units.Gi, 1), (units.Gi + 1, 2),
              (10 * units.Gi, 10), (units.Gi // 2, 1))
    @ddt.unpack
    def test_rounds_up(self, size_bytes, expected):
        self.assertEqual(expected, policy.gib(size_bytes))
