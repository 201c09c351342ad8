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

"""The commands list, show, purge and warm, through main()."""

import csv
import dataclasses
import datetime
import io
from unittest import mock

from cinder import context as cinder_context
from cinder import exception as cinder_exception
from cinder.image import glance
import ddt
from oslo_config import cfg
from oslo_vmware import exceptions as vexc
import yaml

from cinder_vmware_cache import cache
from cinder_vmware_cache.cli import records
from cinder_vmware_cache.cmd import image_cache
from cinder_vmware_cache import driver
from cinder_vmware_cache import exceptions
from cinder_vmware_cache import image_access
from tests.unit.cli import base

CONF = cfg.CONF


@ddt.ddt
class ArgumentsTestCase(base.MainTestBase):

    @ddt.data(['purge', '--help'], ['help', 'purge'])
    def test_command_help(self, args):
        self.assertEqual(0, image_cache.main(args))
        text = self.stdout.getvalue()
        self.assertIn('--expired-only', text)
        self.assertIn('--image IMAGE_ID', text)
        for option in ('--format', '--column', '--sort-column'):
            self.assertIn(option, text)
        self.assertIn('json', text)

    def test_unknown_column_is_a_usage_error(self):
        self.assertEqual(2, self.main('list', '-c', 'image_id', '-c', 'nope'))
        self.assertIn('ERROR: unknown column nope (columns: image_id,',
                      self.stderr.getvalue())
        self.open_volumeops.assert_not_called()


@ddt.ddt
class OutputTestCase(base.MainTestBase):

    def test_list_table(self):
        self.assertEqual(0, self.main('list'))
        self.assertEqual([
            list(records.LIST_COLUMNS),
            [base.IMAGE_A, 'image-%s' % base.IMAGE_A, 'ds-gold', 'DC0',
             '3', '2024-05-01T10:00:00Z', '2024-05-02T11:30:00Z', 'ready'],
            [base.IMAGE_B, base.PARTIAL.name, 'ds-gold', 'DC0', '-',
             '2024-05-01T10:00:00Z', '-', 'partial'],
        ], base.table(self.stdout.getvalue()))
        self.assertEqual('', self.stderr.getvalue())

    def test_list_json_has_every_key(self):
        self.assertEqual(0, self.main('list', '--format', 'json'))
        found = self.json_out()
        self.assertEqual([base.READY_RECORD, base.PARTIAL_RECORD], found)
        self.assertEqual(list(records.FIELDS), list(found[0]))
        for value in (found[0]['created_at'], found[0]['last_used']):
            self.assertEqual(
                datetime.timezone.utc,
                datetime.datetime.fromisoformat(value).tzinfo)
        # One name lookup per datastore; listing reads every folder.
        self.assertEqual(1, self.session.invoke_api.call_count)
        self.cache.list_all.assert_called_once_with()

    def test_list_yaml_has_every_key(self):
        self.assertEqual(0, self.main('list', '-f', 'yaml'))
        self.assertEqual([base.READY_RECORD, base.PARTIAL_RECORD],
                         yaml.safe_load(self.stdout.getvalue()))

    def test_list_csv_has_the_table_columns(self):
        self.assertEqual(0, self.main('list', '-f', 'csv'))
        rows = list(csv.reader(io.StringIO(self.stdout.getvalue())))
        self.assertEqual(list(records.LIST_COLUMNS), rows[0])
        self.assertEqual(3, len(rows))

    @ddt.data('table', 'json')
    def test_list_columns(self, fmt):
        self.assertEqual(0, self.main('list', '-f', fmt, '-c', 'ref',
                                      '-c', 'image_id'))
        if fmt == 'json':
            self.assertEqual([{'image_id': base.IMAGE_A, 'ref': 'vm-101'},
                              {'image_id': base.IMAGE_B, 'ref': 'vm-102'}],
                             self.json_out())
        else:
            self.assertEqual([['image_id', 'ref'], [base.IMAGE_A, 'vm-101'],
                              [base.IMAGE_B, 'vm-102']],
                             base.table(self.stdout.getvalue()))

    def test_list_value(self):
        self.assertEqual(0, self.main('list', '-f', 'value', '-c',
                                      'template'))
        self.assertEqual('image-%s\n%s\n' % (base.IMAGE_A, base.PARTIAL.name),
                         self.stdout.getvalue())

    def test_list_sorted_by_image_ready_first(self):
        self.cache.list_all.return_value = [base.PARTIAL, base.READY,
                                            base.OTHER_READY]
        self.assertEqual(0, self.main('list', '--format', 'json'))
        self.assertEqual(['vm-101', 'vm-103', 'vm-102'],
                         [r['ref'] for r in self.json_out()])

    @ddt.data(([], ['vm-103', 'vm-101', 'vm-102']),
              (['--sort-descending'], ['vm-102', 'vm-101', 'vm-103']))
    @ddt.unpack
    def test_sort_column_with_unknown_values(self, args, refs):
        # An unknown size sorts as cliff sorts None: last when ascending.
        self.cache.list_all.return_value = [base.PARTIAL, base.READY,
                                            base.OTHER_READY]
        self.assertEqual(0, self.main('list', '-f', 'json', '--sort-column',
                                      'size_gb', *args))
        self.assertEqual(refs, [r['ref'] for r in self.json_out()])
        self.assertEqual('', self.stderr.getvalue())

    def test_datastore_name_unknown(self):
        self.session.invoke_api.side_effect = vexc.VimException('no')
        self.assertEqual(0, self.main('list', '--format', 'json'))
        self.assertEqual('datastore-11', self.json_out()[0]['datastore'])

    @ddt.data(('table', ''), ('json', '[]'))
    @ddt.unpack
    def test_list_empty(self, fmt, expected):
        self.cache.list_all.return_value = []
        self.assertEqual(0, self.main('list', '--format', fmt))
        self.assertEqual(expected, self.stdout.getvalue().strip())
        self.assertEqual('The image cache of backend be1 is empty.\n',
                         self.stderr.getvalue())

    def test_show_table_has_every_field(self):
        self.assertEqual(0, self.main('show', base.IMAGE_A))
        header, row = base.table(self.stdout.getvalue())
        self.assertEqual(list(records.FIELDS), header)
        self.assertEqual([str(base.READY_RECORD[f]) for f in header], row)

    def test_show_every_entry_of_the_image(self):
        self.cache.list_all.return_value = [base.READY, base.PARTIAL,
                                            base.OTHER_READY]
        self.assertEqual(0, self.main('show', base.IMAGE_B, '--format',
                                      'json'))
        found = self.json_out()
        self.assertEqual(['vm-103', 'vm-102'], [r['ref'] for r in found])
        self.assertEqual('ds-silver', found[0]['datastore'])
        self.assertEqual(base.PARTIAL_RECORD, found[1])

    def test_show_column(self):
        self.assertEqual(0, self.main('show', base.IMAGE_A, '-f', 'value',
                                      '-c', 'purge_after'))
        self.assertEqual('2024-05-02T12:30:00Z\n', self.stdout.getvalue())

    @ddt.data('table', 'json')
    def test_show_image_not_cached(self, fmt):
        self.assertEqual(1, self.main('show', 'not-cached', '--format', fmt))
        self.assertEqual('', self.stdout.getvalue())
        self.assertEqual('ERROR: image not-cached is not in the image cache '
                         'of backend be1\n', self.stderr.getvalue())


@ddt.ddt
class PurgeTestCase(base.MainTestBase):

    @ddt.data(([], False, None),
              (['--expired-only'], True, None),
              (['--image', base.IMAGE_A], False, base.IMAGE_A),
              (['--expired-only', '--image', base.IMAGE_A], True,
               base.IMAGE_A))
    @ddt.unpack
    def test_arguments(self, args, expired_only, image_id):
        self.assertEqual(0, self.main('purge', *args))
        self.cache.purge.assert_called_once_with(
            expired_only=expired_only, image_id=image_id, keys=None)

    def test_asks_glance_and_notifies_as_cinder(self):
        self.assertEqual(0, self.main('purge'))
        self.notify_setup.assert_called_once_with(CONF)
        self.glance_images.assert_called_once_with()
        self.cache_class.assert_called_once_with(
            None, mock.ANY, self.inventory_class.return_value,
            images=self.glance_images.return_value)

    def test_list_and_show_ask_no_glance(self):
        self.assertEqual(0, self.main('list'))
        self.assertEqual(0, self.main('show', base.IMAGE_A))
        self.glance_images.assert_not_called()
        self.notify_setup.assert_not_called()
        self.coordinator.start.assert_not_called()

    def test_password_of_the_coordination_url_is_masked(self):
        url = 'redis://:%s@127.0.0.1:1' % base.URL_SECRET
        self.coordinator.start.side_effect = RuntimeError(
            'cannot connect to %s' % url)
        conf = self.confdir.cinder_conf(
            sections={'be1': base.credentials()},
            extra='[coordination]\nbackend_url = %s\n' % url)
        self.assertEqual(2, self.main('--debug', 'purge', conf=conf))
        self.assertIn('cannot connect to redis://:***@127.0.0.1:1',
                      self.stderr.getvalue())
        self.assertNotIn(base.URL_SECRET, self.output())

    def test_table(self):
        self.cache.purge.return_value = [base.READY, base.PARTIAL]
        self.assertEqual(0, self.main('purge'))
        rows = base.table(self.stdout.getvalue())
        self.assertEqual(list(records.LIST_COLUMNS) + ['result'],
                         rows[0])
        self.assertEqual([(base.IMAGE_A, 'deleted'),
                          (base.IMAGE_B, 'deleted')],
                         [(r[0], r[-1]) for r in rows[1:]])
        self.assertEqual('', self.stderr.getvalue())

    def test_json_lists_the_entries_with_their_result(self):
        cache = self.cache
        cache.purge.return_value = [base.PARTIAL]
        cache.entries.return_value = [base.READY]
        self.assertEqual(1, self.main('purge', '--format', 'json'))
        self.assertEqual([dict(base.READY_RECORD, result='failed'),
                          dict(base.PARTIAL_RECORD, result='deleted')],
                         self.json_out())

    def test_nothing_to_purge(self):
        self.assertEqual(0, self.main('purge', '--image', 'not-cached',
                                      '-f', 'json'))
        self.assertEqual([], self.json_out())
        self.assertEqual('Nothing to purge in the image cache of backend '
                         'be1.\n', self.stderr.getvalue())

    @ddt.data('table', 'json')
    def test_entries_left_behind_fail(self, fmt):
        self.cache.purge.return_value = [base.READY]
        self.cache.entries.return_value = [base.READY, base.PARTIAL]
        self.assertEqual(1, self.main('purge', '--format', fmt))
        self.assertEqual('ERROR: could not delete 1 cache entry (in use by a '
                         'request, or refused by vCenter; see the log; the '
                         'periodic purge retries): %s\n' % base.PARTIAL.name,
                         self.stderr.getvalue())
        if fmt == 'json':
            self.assertEqual([('vm-101', 'deleted'), ('vm-102', 'failed')],
                             [(r['ref'], r['result'])
                              for r in self.json_out()])
        else:
            self.assertEqual(['deleted', 'failed'],
                             [r[-1] for r in
                              base.table(self.stdout.getvalue())[1:]])

    def test_entries_of_other_images_are_not_failures(self):
        self.cache.purge.return_value = [base.READY]
        self.cache.entries.return_value = [base.PARTIAL, base.OTHER_READY]
        self.assertEqual(0, self.main('purge', '--image', base.IMAGE_A))

    def test_datastore_picks_its_copies(self):
        self.cache.list_all.return_value = [base.READY, base.PARTIAL,
                                            base.OTHER_READY]
        self.cache.purge.return_value = [base.OTHER_READY]
        self.cache.entries.return_value = [base.READY, base.PARTIAL]
        self.assertEqual(0, self.main('purge', '--datastore', 'ds-silver',
                                      '-f', 'value', '-c', 'ref',
                                      '-c', 'result'))
        self.assertEqual('vm-103 deleted\n', self.stdout.getvalue())
        self.cache.purge.assert_called_once_with(
            expired_only=False, image_id=None, keys={'vm-103'})

    def test_datastore_name_in_two_datacenters(self):
        twin = dataclasses.replace(base.OTHER_READY, ref='vm-104',
                                   folder='group-1')
        self.cache.list_all.return_value = [base.OTHER_READY, twin]
        self.assertEqual(2, self.main('purge', '--datastore', 'ds-silver'))
        self.assertEqual('ERROR: datastore ds-silver is in datacenters DC0, '
                         'DC1; name one with --datacenter\n',
                         self.stderr.getvalue())
        self.cache.purge.assert_not_called()
        self.assertEqual(0, self.main('purge', '--datastore', 'ds-silver',
                                      '--datacenter', 'DC1'))
        self.cache.purge.assert_called_once_with(
            expired_only=False, image_id=None, keys={'vm-103'})

    def test_datacenter_needs_a_datastore(self):
        self.assertEqual(2, self.main('purge', '--datacenter', 'DC1'))
        self.assertEqual('ERROR: --datacenter needs --datastore\n',
                         self.stderr.getvalue())

    def test_expired_only_keeps_the_rest_without_failing(self):
        self.cache.entries.return_value = [base.READY, base.PARTIAL]
        self.assertEqual(0, self.main('purge', '--expired-only'))
        self.assertIn('Nothing to purge', self.stderr.getvalue())


@ddt.ddt
class WarmTestCase(base.MainTestBase):
    """warm sets the driver up (fills use the stock import)."""

    def setUp(self):
        super().setUp()
        self.driver_class = self.autospec(
            driver, 'VMwareVcVmdkCacheDriver')
        self.drv = self.driver_class.return_value
        self.drv.session = self.session
        self.drv.image_cache = self.cache
        self.cache.warm.return_value = [(base.READY, cache.ADDED_FILLED)]
        self.service_context = self.autospec(
            image_access, 'service_context')
        self.image_service = self.autospec(
            glance, 'get_default_image_service').return_value

    @ddt.data((cache.ADDED_FILLED, 'filled'), (None, 'already cached'),
              (cache.ADDED_SEEDED, 'seeded'))
    @ddt.unpack
    def test_json(self, added, result):
        self.cache.warm.return_value = [(base.READY, added)]
        self.assertEqual(0, self.main('warm', base.IMAGE_A, '-f', 'json'))
        self.assertEqual([dict(base.READY_RECORD, result=result)],
                         self.json_out())
        self.cache.warm.assert_called_once_with(
            self.service_context.return_value, self.image_service,
            base.IMAGE_A, datastores=None)
        self.service_context.assert_called_once_with()
        self.notify_setup.assert_called_once_with(CONF)

    def test_table(self):
        self.assertEqual(0, self.main('warm', base.IMAGE_A))
        [header, row] = base.table(self.stdout.getvalue())
        self.assertEqual(list(records.LIST_COLUMNS) + ['result'], header)
        rows = dict(zip(header, row))
        self.assertEqual('filled', rows['result'])
        self.assertEqual('image-%s' % base.IMAGE_A, rows['template'])
        self.assertEqual('ds-gold', rows['datastore'])
        self.assertEqual('DC0', rows['datacenter'])

    def test_on_named_datastores(self):
        self.cache.warm.return_value = [
            (base.READY, cache.ADDED_FILLED),
            (base.OTHER_READY, cache.ADDED_SEEDED)]
        self.assertEqual(0, self.main(
            'warm', base.IMAGE_A, '--datastore', 'ds-gold', '--datastore',
            'ds-silver', '-f', 'value', '-c', 'datastore', '-c', 'result'))
        self.assertEqual('ds-gold filled\nds-silver seeded\n',
                         self.stdout.getvalue())
        self.assertEqual(['ds-gold', 'ds-silver'],
                         self.cache.warm.call_args.kwargs['datastores'])

    def test_datastore_the_backend_cannot_use(self):
        self.cache.warm.side_effect = exceptions.DatastoreNotEligible(
            'datastore nope is not one this backend may place the image on')
        self.assertEqual(2, self.main('warm', base.IMAGE_A, '--datastore',
                                      'nope'))
        self.assertEqual(
            'ERROR: cannot warm image %s on backend be1: datastore nope is '
            'not one this backend may place the image on\n' % base.IMAGE_A,
            self.stderr.getvalue())

    def test_column(self):
        self.assertEqual(0, self.main('warm', base.IMAGE_A, '-f', 'value',
                                      '-c', 'result'))
        self.assertEqual('filled\n', self.stdout.getvalue())

    def test_sets_the_driver_up_without_its_periodic_task(self):
        def warm(*args, **kwargs):
            # Under the locks of cinder-volume.
            self.coordinator.start.assert_called_once_with()
            return [(base.READY, cache.ADDED_FILLED)]
        self.cache.warm.side_effect = warm
        self.assertEqual(0, self.main('warm', base.IMAGE_A))
        self.driver_class.assert_called_once_with(configuration=mock.ANY)
        self.drv.do_setup.assert_called_once_with(mock.ANY)
        context = self.drv.do_setup.call_args[0][0]
        self.assertIsInstance(context, cinder_context.RequestContext)
        self.assertTrue(context.is_admin)
        self.drv.check_for_setup_error.assert_not_called()
        self.probe.assert_called_once_with('192.0.2.10', 443, 60)
        self.session.logout.assert_called_once_with()
        self.coordinator.stop.assert_called_once_with()
        self.open_volumeops.assert_not_called()

    def test_no_service_credentials(self):
        self.service_context.side_effect = exceptions.NoServiceCredentials(
            'set [service_user] options')
        self.assertEqual(2, self.main('warm', base.IMAGE_A))
        self.assertEqual('ERROR: set [service_user] options\n',
                         self.stderr.getvalue())
        self.driver_class.assert_not_called()

    @ddt.data(
        (exceptions.ImageNotCacheable('the image disk format is \'raw\', '
                                      'not vmdk'),
         'image %s cannot be cached on backend be1: the image disk format '
         'is \'raw\', not vmdk' % base.IMAGE_A),
        (exceptions.CacheWaitTimeout('lock'),
         'another request held the cache lock of image %s for longer than '
         'image_cache_wait_timeout; try again later' % base.IMAGE_A),
        (cinder_exception.ImageNotFound(image_id=base.IMAGE_A),
         'image %s is not in Glance, or cinder\'s service user cannot see '
         'it; check the id' % base.IMAGE_A),
        (cinder_exception.ImageNotAuthorized(image_id=base.IMAGE_A),
         'cinder\'s service user may not read image %s; check its '
         'visibility and the [glance] or [service_user] credentials' %
         base.IMAGE_A),
        (exceptions.ImageCacheError('the imported disk holds no data'),
         'ImageCacheError: the imported disk holds no data (run with '
         '--debug for the traceback)'))
    @ddt.unpack
    def test_failures(self, error, message):
        self.cache.warm.side_effect = error
        self.assertEqual(1, self.main('warm', base.IMAGE_A))
        self.assertEqual('ERROR: %s\n' % message, self.stderr.getvalue())
        self.assertEqual('', self.stdout.getvalue())
        self.session.logout.assert_called_once_with()
        self.coordinator.stop.assert_called_once_with()

    @ddt.data(
        (vexc.VimConnectionException('refused'), 3,
         'cannot log in to vCenter 192.0.2.10:443: refused'),
        (vexc.VimFaultException(['InvalidLogin'], 'Cannot complete login'),
         3, 'cannot log in to vCenter 192.0.2.10:443: Cannot complete login'),
        (exceptions.InvalidCacheOption(option='[be1] image_cache_age_seconds',
                                       reason='too low'), 2,
         'backend be1: Invalid value for option [be1] '
         'image_cache_age_seconds: too low'),
        (cinder_exception.InvalidInput(reason='bad regex'), 2,
         'backend be1: Invalid input received: bad regex'))
    @ddt.unpack
    def test_setup_errors(self, error, code, message):
        self.drv.do_setup.side_effect = error
        self.assertEqual(code, self.main('warm', base.IMAGE_A))
        self.assertIn('ERROR: %s' % message, self.stderr.getvalue())
        self.cache.warm.assert_not_called()
