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

"""Bad input: request values, images and options the cache must survive.

Documented outcomes (README): use_image_cache is read with oslo's
bool_from_string after stripping whitespace; a blank value lets the next
place decide; any other non-boolean is logged at WARNING (shortened) and
means no caching. An image the cache cannot take (not vmdk, no size, too
large) goes the stock way, with the stock driver's own outcome. An invalid
option stops the driver's start with a message naming the option and the
backend, before vCenter is contacted. Never a crash: nothing but the stock
driver's own errors leaves the driver.
"""

import configparser
import logging
import os
import shutil
import tempfile

import fixtures
from oslo_utils import units

from cinder_vmware_cache.testing import vcenter
from tests import common
from tests.reliability import harness

# (value of use_image_cache, served from the cache)
METADATA_VALUES = [
    ('true', True), ('True', True), ('TRUE', True), ('tRuE', True),
    ('1', True), ('yes', True), ('YES', True), ('on', True), ('y', True),
    ('t', True), (' true ', True), ('\ttrue\n', True),
    # Python's strip() also removes Unicode spaces.
    ('\u00a0true\u2003', True),
    ('', False), ('   ', False), ('\t\n', False),
    ('false', False), ('False', False), ('0', False), ('no', False),
    ('off', False), ('n', False), ('f', False),
    ('2', False), ('-1', False), ('1.0', False), ('01', False),
    ('0x1', False), ('None', False), ('null', False),
    ('<is> True', False), ('true; rm -rf /', False),
    ('x' * 65536, False), ('true' * 1000, False),
    ('\uff54\uff52\uff55\uff45', False),  # fullwidth "true"
    ('\u771f', False), ('tru\u00e9', False), ('true\u200b', False),
    ('true\x00', False), ('\U0001F44D', False),
]

# (image property vmware_use_image_cache, volume metadata, served)
PRECEDENCE = [
    (True, None, True),
    (1, None, True),
    (0, None, False),
    ('yes', {'use_image_cache': '  '}, True),
    ('true', {'use_image_cache': 'false'}, False),
    ('maybe', {'use_image_cache': 'true'}, True),
    ('maybe', None, False),
]


class UseImageCacheValuesTestCase(harness.ReliabilityTestCase):

    def test_every_volume_metadata_value(self):
        log = self.useFixture(fixtures.FakeLogger(
            name='cinder_vmware_cache', level=logging.WARNING))
        image_id = self.add_image()
        volumes = [self.request(image_id)]
        self.assertEqual(1, len(self.ready_templates()))
        wrong = []
        for value, cached in METADATA_VALUES:
            before = self.downloads(image_id)
            volumes.append(self.request(
                image_id, metadata={'use_image_cache': value}))
            served = self.downloads(image_id) == before
            if served != cached:
                wrong.append((value[:20], 'cached' if served else 'stock'))
        self.assertEqual([], wrong)
        # Warnings name the key and show at most 64 characters of a value.
        self.assertIn('Ignoring use_image_cache=', log.output)
        self.assertNotIn('x' * 65, log.output)
        self.assertLess(max(len(line) for line in log.output.splitlines()),
                        300)
        self.assert_vcenter_state(volumes, [image_id])
        self.assert_clean()

    def test_image_property_values_and_precedence(self):
        volumes = []
        wrong = []
        for prop, metadata, cached in PRECEDENCE:
            image_id = self.add_image(
                properties={'vmware_use_image_cache': prop})
            volumes.append(self.request(image_id, metadata=metadata))
            served = bool([t for t in self.ready_templates()
                           if t.image_id == image_id])
            if served != cached:
                wrong.append((prop, metadata, served))
        self.assertEqual([], wrong)
        cached_ids = [t.image_id for t in self.ready_templates()]
        self.assertEqual(sum(1 for row in PRECEDENCE if row[2]),
                         len(cached_ids))
        self.assert_vcenter_state(volumes, cached_ids)
        self.assert_clean()


class ImageInputTestCase(harness.ReliabilityTestCase):

    def outcome(self, image_id, metadata, size=1):
        """'created' or the exception class the driver raised."""
        volume = vcenter.new_volume(self.ctx, size, metadata)
        self.volumes.append(volume)
        try:
            result = self.driver.clone_image(
                self.ctx, volume, None, self.images.show(self.ctx, image_id),
                self.images)
        except Exception as exc:
            self.assertIsNone(self.vops.get_backing(volume.name, volume.id))
            return type(exc).__name__
        self.assertTrue(result[1])
        backing = self.vops.get_backing(volume.name, volume.id)
        self.assertIsNotNone(backing)
        self.assert_volume(volume, backing)
        return 'created'

    def compare_with_stock(self, image_id, size=1):
        """The outcome with use_image_cache=true equals the stock one."""
        stock = self.outcome(image_id, None, size)
        asked = self.outcome(image_id, harness.ASK, size)
        self.assertEqual(stock, asked)
        return asked

    def check_nothing_cached(self):
        self.assertEqual([], self.entries())
        self.assert_clones_from_ready_templates()
        self.assert_clean()

    def test_non_vmdk_disk_formats(self):
        outcomes = {}
        for disk_format in ('qcow2', 'raw', 'iso', 'ami', 'VMDK', None, ''):
            image_id = self.add_image(disk_format=disk_format)
            outcomes[disk_format] = self.compare_with_stock(image_id)
        # The stock driver refuses other formats and takes any case of
        # vmdk, and no format at all, as vmdk; the cache takes only "vmdk".
        self.assertEqual({'qcow2': 'ImageUnacceptable',
                          'raw': 'ImageUnacceptable',
                          'iso': 'ImageUnacceptable',
                          'ami': 'ImageUnacceptable',
                          'VMDK': 'created', None: 'created',
                          '': 'created'}, outcomes)
        self.check_nothing_cached()

    def test_vmdk_that_the_stock_import_refuses(self):
        """The cache accepts these, its fill fails, the stock path refuses.

        No leftover; nothing cached; the stock error reaches the manager.
        """
        bad_disk = self.add_image(properties={'vmware_disktype': 'bogus'})
        bad_adapter = self.add_image(
            properties={'vmware_adaptertype': 'floppy'})
        bad_container = self.add_image()
        self.images.update_meta(bad_container, container_format='docker')
        outcomes = [self.compare_with_stock(image_id)
                    for image_id in (bad_disk, bad_adapter, bad_container)]
        self.assertEqual(['ImageUnacceptable', 'InvalidAdapterTypeException',
                          'ImageUnacceptable'], outcomes)
        self.check_nothing_cached()

    def test_images_without_size_or_virtual_size(self):
        """Sizes Glance may leave out; the cache needs one of them.

        Without either the cache refuses and the stock driver fails in its
        own way (TypeError in cinder 29). With the virtual size only the
        cache tries, the stock import fails inside the fill, and the normal
        path then fails the same way. With the file size only the image is
        cached.
        """
        outcomes = {}
        cases = {
            'no size, no virtual size': dict(size=None, virtual_size=None),
            'no size keys at all': None,
            'virtual size only': dict(size=None),
            'size only': dict(virtual_size=None),
        }
        for name, fields in sorted(cases.items()):
            image_id = self.add_image()
            if fields is None:
                meta = self.images._images[image_id]['meta']
                del meta['size']
                del meta['virtual_size']
            else:
                self.images.update_meta(image_id, **fields)
            outcomes[name] = self.compare_with_stock(image_id)
        self.assertEqual({'no size, no virtual size': 'TypeError',
                          'no size keys at all': 'KeyError',
                          'virtual size only': 'TypeError',
                          'size only': 'created'}, outcomes)
        self.assertEqual(1, len(self.ready_templates()))
        # Sizes of 0 mean "unknown" too: the cache does not even try (the
        # stock upload of such an image is racy, so its outcome is not
        # compared).
        zero = self.add_image()
        self.images.update_meta(zero, size=0, virtual_size=0)
        self.outcome(zero, harness.ASK)
        self.assertEqual(1, self.downloads(zero))
        self.assertEqual(1, len(self.ready_templates()))
        self.assert_clones_from_ready_templates()
        self.assert_clean()

    def test_image_larger_than_the_limit(self):
        self.set_policy(max_image_gb=1)
        exact = self.add_image(virtual_size=units.Gi)
        larger = self.add_image(virtual_size=units.Gi + 1)
        self.assertEqual('created', self.outcome(exact, harness.ASK))
        self.assertEqual('created', self.outcome(larger, harness.ASK, 2))
        self.assertEqual([exact], [t.image_id for t in self.ready_templates()])
        self.assertEqual(1, self.downloads(larger))
        self.set_policy(max_image_gb=0)
        other = self.add_image()
        self.assertEqual('created', self.outcome(other, harness.ASK))
        self.assertEqual([exact], [t.image_id for t in self.ready_templates()])
        self.assert_clean()


class StartupOptionsTestCase(common.TestCase):
    """Option values out of range, read from cinder.conf by a new process.

    oslo.config checks types and bounds when a value is read; do_setup reads
    every cache option before it contacts vCenter. The bad backends point
    at a closed port: starting them would fail differently if vCenter were
    contacted first.
    """

    BAD = {
        'enable_image_cache': ['maybe', '2'],
        'image_cache_max_size_gb': ['-1', 'abc', '1.5'],
        'image_cache_age_seconds': ['0', '-86400'],
        'image_cache_purge_interval': ['0'],
        'image_cache_max_total_gb': ['-1'],
        'image_cache_max_count': ['-3', '1e3'],
        'image_cache_wait_timeout': ['0'],
        'image_cache_task_timeout': ['-1'],
        'image_cache_leftover_grace_seconds': ['-1'],
        'image_cache_placement': ['nearest'],
        'image_cache_placement_max_utilization': ['101', '-1'],
        'image_cache_max_copies_per_image': ['-1'],
    }
    LIMITS = {
        'enable_image_cache': 'true',
        'image_cache_max_size_gb': '0',
        'image_cache_age_seconds': '1',
        'image_cache_purge_interval': '1',
        'image_cache_max_total_gb': str(10 ** 20),
        'image_cache_max_count': '0',
        'image_cache_wait_timeout': '1',
        'image_cache_task_timeout': '0',
        'image_cache_leftover_grace_seconds': '0',
        'image_cache_placement': 'stock',
        'image_cache_placement_max_utilization': '100',
        'image_cache_max_copies_per_image': '1',
    }

    def test_out_of_range_options_stop_the_start_with_a_clear_message(self):
        endpoint = vcenter.required_endpoint()
        parser = configparser.RawConfigParser()
        closed = common.free_port()
        expected = {}
        for option, values in sorted(self.BAD.items()):
            for number, value in enumerate(values):
                section = 'bad_%s_%d' % (option, number)
                parser[section] = {
                    'volume_backend_name': section,
                    'vmware_host_ip': '127.0.0.1',
                    'vmware_host_port': str(closed),
                    'vmware_host_username': 'user',
                    'vmware_host_password': 'pass',
                    'vmware_api_retry_count': '0',
                    option: value}
                expected[section] = option
        reachable = dict(
            vmware_host_ip=endpoint['vmware_host_ip'],
            vmware_host_port=str(endpoint['vmware_host_port']),
            vmware_host_username=endpoint['vmware_host_username'],
            vmware_host_password=endpoint['vmware_host_password'],
            vmware_wsdl_location=endpoint['vmware_wsdl_location'] or '',
            vmware_insecure=str(endpoint['vmware_insecure']),
            vmware_api_retry_count='0')
        parser['limits'] = dict(self.LIMITS, volume_backend_name='limits',
                                **reachable)
        # An empty value is no value: the default applies (oslo.config).
        parser['empty'] = dict(reachable, volume_backend_name='empty',
                               image_cache_max_size_gb='',
                               image_cache_age_seconds='')
        directory = tempfile.mkdtemp(prefix='cvc-conf-')
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, 'cinder.conf')
        with open(path, 'w') as conf:
            parser.write(conf)
        worker = harness.Worker({'mode': 'startup', 'config_file': path,
                                 'sections': sorted(expected) + [
                                     'limits', 'empty']})
        self.addCleanup(worker.close)
        results = worker.read_event()['results']

        wrong = {}
        for section, option in expected.items():
            result = results[section]
            if (result['started'] or
                    result['error'] != 'InvalidCacheOption' or
                    '[%s]' % section not in result['message'] or
                    option not in result['message']):
                wrong[section] = result
        self.assertEqual({}, wrong)
        limits = results['limits']
        self.assertTrue(limits['started'], limits)
        self.assertEqual({'enabled': True, 'max_image_gb': 0,
                          'age_seconds': 1, 'purge_interval': 1,
                          'max_total_gb': 10 ** 20, 'max_count': 0,
                          'wait_timeout': 1, 'leftover_grace_seconds': 0,
                          'result_metadata': True, 'warm_images': [],
                          'placement': 'stock',
                          'placement_max_utilization': 100,
                          'max_copies_per_image': 1, 'task_timeout': 0,
                          # Not options: the hit/deletion protocol.
                          'known_copy_seconds': 2.0,
                          'clone_start_seconds': 5.0,
                          'retire_grace_seconds': 10.0},
                         limits['policy'])
        empty = results['empty']
        self.assertTrue(empty['started'], empty)
        self.assertEqual((100, 86400), (empty['policy']['max_image_gb'],
                                        empty['policy']['age_seconds']))
