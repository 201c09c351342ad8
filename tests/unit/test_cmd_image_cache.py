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

"""The cinder-vmware-image-cache command.

Most tests run main() in this process with vCenter, the cache and the
driver mocked (autospec); the exit-code and secrecy tests also run the real
command in a subprocess.
"""

import csv
import datetime
import io
import json
import logging
import os
import socket
import time
from unittest import mock
import uuid

from cinder import context as cinder_context
from cinder import coordination
from cinder import exception as cinder_exception
from cinder.image import glance
from cinder import version
import ddt
import eventlet
import fixtures
from oslo_config import cfg
from oslo_log import formatters
from oslo_utils import units
from oslo_vmware import api
from oslo_vmware import exceptions as vexc
from oslo_vmware import vim_util
import yaml

from cinder_vmware_cache.cmd import image_cache
from cinder_vmware_cache import driver
from cinder_vmware_cache import exceptions
from cinder_vmware_cache import policy
from tests import common

CONF = cfg.CONF
REAL_PROBE = image_cache._probe
SECRET = 'Sup3r-S3cret-Passw0rd'
URL_SECRET = 'R3dis-S3cret'
IMAGE_A = '11111111-2222-3333-4444-555555555555'
IMAGE_B = '66666666-7777-8888-9999-000000000000'
CREATED = datetime.datetime(2024, 5, 1, 10, 0, 0, 123456)
USED = datetime.datetime(2024, 5, 2, 11, 30, 0)

READY = policy.CacheEntry(
    image_id=IMAGE_A, name='image-%s' % IMAGE_A, ref='vm-101', ready=True,
    size_bytes=2 * units.Gi + 1, datastore='datastore-11',
    created_at=CREATED, last_used=USED)
PARTIAL = policy.CacheEntry(
    image_id=IMAGE_B, name='image-%s.partial-0a1b2c3d' % IMAGE_B,
    ref='vm-102', ready=False, size_bytes=0, datastore='datastore-11',
    created_at=CREATED, last_used=None)
OTHER_READY = policy.CacheEntry(
    image_id=IMAGE_B, name='image-%s' % IMAGE_B, ref='vm-103', ready=True,
    size_bytes=units.Gi, datastore='datastore-12', created_at=CREATED,
    last_used=USED)
CACHE_POLICY = policy.CachePolicy(enabled=True, age_seconds=3600,
                                  leftover_grace_seconds=600)

READY_RECORD = {
    'image_id': IMAGE_A,
    'template': 'image-%s' % IMAGE_A,
    'state': 'ready',
    'datastore': 'ds-gold',
    'datastore_ref': 'datastore-11',
    'size_gb': 3,
    'size_bytes': 2 * units.Gi + 1,
    'created_at': '2024-05-01T10:00:00Z',
    'last_used': '2024-05-02T11:30:00Z',
    'purge_after': '2024-05-02T12:30:00Z',
    'ref': 'vm-101',
}
PARTIAL_RECORD = {
    'image_id': IMAGE_B,
    'template': PARTIAL.name,
    'state': 'partial',
    'datastore': 'ds-gold',
    'datastore_ref': 'datastore-11',
    'size_gb': None,
    'size_bytes': 0,
    'created_at': '2024-05-01T10:00:00Z',
    'last_used': None,
    'purge_after': '2024-05-01T10:10:00Z',
    'ref': 'vm-102',
}


def credentials(**overrides):
    values = {'volume_driver': image_cache.DRIVER_PATH,
              'volume_backend_name': 'cache-be1',
              'vmware_host_ip': '192.0.2.10',
              'vmware_host_username': 'administrator@vsphere.local',
              'vmware_host_password': SECRET,
              'image_cache_age_seconds': 4321}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def table(text):
    """The rows of cliff's table output (header first), as lists of cells."""
    return [[cell.strip() for cell in line.strip().strip('|').split('|')]
            for line in text.splitlines() if line.startswith('|')]


def fake_session():
    session = mock.create_autospec(api.VMwareAPISession, instance=True)
    session.invoke_api.side_effect = (
        lambda module, func, vim, ref, prop: {
            'datastore-11': 'ds-gold', 'datastore-12': 'ds-silver'}[
                ref.value])
    return session


class GlobalConf(fixtures.Fixture):
    """Lets main() parse the process-wide CONF, and forgets it afterwards."""

    def _setUp(self):
        CONF.clear()
        self.addCleanup(CONF.clear)


class MainTestBase(common.TestCase):
    """main() in this process: vCenter, cache, locks and logging mocked."""

    def setUp(self):
        super().setUp()
        self.useFixture(GlobalConf())
        self.confdir = self.useFixture(common.ConfigDir())
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', self.stdout))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', self.stderr))
        self.setup_logging = self.autospec(image_cache, '_setup_logging')
        self.coordinator = mock.create_autospec(coordination.Coordinator,
                                                instance=True)
        self.coordinator.started = False
        self.useFixture(fixtures.MockPatchObject(
            image_cache.coordination, 'COORDINATOR', self.coordinator))
        self.probe = self.autospec(image_cache, '_probe')
        self.session = fake_session()
        self.vops = mock.sentinel.volumeops
        self.open_volumeops = self.autospec(
            image_cache.stock, 'open_volumeops')
        self.open_volumeops.return_value = (self.session, self.vops)
        self.inventory_class = self.autospec(
            image_cache.inventory, 'TemplateInventory')
        self.cache_class = self.autospec(
            image_cache.cache, 'ImageTemplateCache')
        self.cache = self.cache_class.return_value
        self.cache.policy = CACHE_POLICY
        self.cache.list_all.return_value = [READY, PARTIAL]
        self.cache.purge.return_value = []
        self.cache.entries.return_value = []
        self.notify_setup = self.autospec(image_cache.notify, 'setup')
        self.glance_images = self.autospec(
            image_cache.image_access, 'GlanceImages')
        self.do_setup = self.autospec(
            driver.VMwareVcVmdkCacheDriver, 'do_setup')

    def autospec(self, obj, name):
        return self.useFixture(fixtures.MockPatchObject(
            obj, name, autospec=True)).mock

    def conf(self, **overrides):
        return self.confdir.cinder_conf(
            sections={'be1': credentials(**overrides)})

    def main(self, *args, conf=None):
        argv = ['--config-file', conf or self.conf()] + list(args)
        return image_cache.main(argv)

    def output(self):
        return self.stdout.getvalue() + self.stderr.getvalue()

    def json_out(self):
        return json.loads(self.stdout.getvalue())


@ddt.ddt
class ArgumentsTestCase(MainTestBase):

    def test_help_lists_commands_and_exit_codes(self):
        self.assertEqual(0, image_cache.main(['--help']))
        text = self.stdout.getvalue()
        self.assertIn('Exit codes: 0 success', text)
        for option in ('--config-file PATH', '--backend NAME',
                       '--vcenter-timeout SECONDS', '--debug', '--version'):
            self.assertIn(option, text)
        for command in ('list', 'show', 'purge', 'warm'):
            self.assertRegex(text, r'\n  %s +\S' % command)
        self.open_volumeops.assert_not_called()

    @ddt.data(['purge', '--help'], ['help', 'purge'])
    def test_command_help(self, args):
        self.assertEqual(0, image_cache.main(args))
        text = self.stdout.getvalue()
        self.assertIn('--expired-only', text)
        self.assertIn('--image IMAGE_ID', text)
        for option in ('--format', '--column', '--sort-column'):
            self.assertIn(option, text)
        self.assertIn('json', text)

    def test_version(self):
        self.assertEqual(0, image_cache.main(['--version']))
        self.assertEqual(version.version_string(),
                         self.stdout.getvalue().strip())

    @ddt.data([], ['frobnicate'], ['list', '--format', 'xml'], ['show'],
              ['purge', '--image'], ['list', 'extra'], ['warm'],
              ['--vcenter-timeout', '0', 'list'],
              ['--vcenter-timeout', 'soon', 'list'])
    def test_usage_errors(self, args):
        self.assertEqual(2, self.main(*args))
        self.open_volumeops.assert_not_called()
        self.assertEqual('', self.stdout.getvalue())
        self.assertIn('usage:', self.stderr.getvalue())
        self.assertIn('error:', self.stderr.getvalue())

    def test_unknown_column_is_a_usage_error(self):
        self.assertEqual(2, self.main('list', '-c', 'image_id', '-c', 'nope'))
        self.assertIn('ERROR: unknown column nope (columns: image_id,',
                      self.stderr.getvalue())
        self.open_volumeops.assert_not_called()

    def test_missing_config_file(self):
        missing = os.path.join(self.confdir.path, 'nope.conf')
        self.assertEqual(2, image_cache.main(['--config-file', missing,
                                              'list']))
        self.assertIn('ERROR: cannot read configuration file(s): ',
                      self.stderr.getvalue())
        self.assertIn('nope.conf', self.stderr.getvalue())

    def test_unparsable_config_file_does_not_quote_the_line(self):
        path = self.confdir.write('[DEFAULT]\nenabled_backends = be1\n'
                                  '[be1]\n%s\n' % SECRET)
        self.assertEqual(2, image_cache.main(['--config-file', path,
                                              'list']))
        self.assertIn('cannot parse configuration file %s at line 4' % path,
                      self.stderr.getvalue())
        self.assertNotIn(SECRET, self.output())

    def test_defaults(self):
        seen = {}

        def open_volumeops(conf):
            # Read while main() runs: it is cinder's Configuration.
            seen.update(ip=conf.vmware_host_ip,
                        cache=conf.enable_image_cache,
                        folder=conf.vmware_volume_folder)
            return self.session, self.vops
        self.open_volumeops.side_effect = open_volumeops
        self.assertEqual(0, self.main('--backend', 'be1', 'list'))
        self.probe.assert_called_once_with('192.0.2.10', 443, 60)
        self.assertEqual({'ip': '192.0.2.10', 'cache': False,
                          'folder': 'Volumes'}, seen)
        self.session.logout.assert_called_once_with()

    def test_global_options_after_the_command(self):
        # The old place of --format, and cliff takes the others there too.
        self.assertEqual(0, self.main('list', '--backend', 'be1',
                                      '--vcenter-timeout', '5',
                                      '--format', 'json'))
        self.probe.assert_called_once_with('192.0.2.10', 443, 5)
        self.assertEqual(2, len(self.json_out()))

    def test_main_can_run_again(self):
        self.assertEqual(0, self.main('list'))
        self.assertEqual(0, self.main('show', IMAGE_A))
        self.assertEqual(2, self.main('--backend', 'nope', 'list'))
        self.assertEqual(0, self.main('list'))
        self.assertEqual(3, self.open_volumeops.call_count)

    @ddt.data(([], logging.WARNING, False), (['-q'], logging.WARNING, False),
              (['-v'], logging.INFO, False),
              (['--debug'], logging.DEBUG, True))
    @ddt.unpack
    def test_logging(self, args, console_level, debug):
        log_file = os.path.join(self.confdir.path, 'cli.log')
        seen = {}

        def setup_logging(secrets, level):
            seen.update(debug=CONF.debug, log_file=CONF.log_file)
        self.setup_logging.side_effect = setup_logging
        self.assertEqual(0, self.main(*args + ['--log-file', log_file,
                                               'list']))
        self.setup_logging.assert_called_once_with(mock.ANY, console_level)
        self.assertEqual({'debug': debug, 'log_file': log_file}, seen)

    def test_single_enabled_backend_is_the_default(self):
        self.assertEqual(0, self.main('list'))
        self.inventory_class.assert_called_once_with(
            self.session, self.vops, 'cache-be1', 'Volumes', 100)

    def test_backend_required_when_several_are_enabled(self):
        conf = self.confdir.cinder_conf(
            enabled='be1,be2', sections={
                'be1': credentials(),
                'be2': credentials(volume_backend_name='cache-be2')})
        self.assertEqual(2, self.main('list', conf=conf))
        self.assertEqual('ERROR: --backend NAME is required (enabled '
                         'backends: be1, be2)\n', self.stderr.getvalue())
        self.assertEqual(0, self.main('--backend', 'be2', 'list', conf=conf))
        self.assertEqual('cache-be2', self.inventory_class.call_args[0][2])

    def test_backend_name_defaults_to_the_driver_class(self):
        conf = self.conf(volume_backend_name=None)
        self.assertEqual(0, self.main('list', conf=conf))
        self.assertEqual('VMwareVcVmdkCacheDriver',
                         self.inventory_class.call_args[0][2])

    def test_unknown_backend(self):
        self.assertEqual(2, self.main('--backend', 'nope', 'list'))
        self.assertEqual('ERROR: unknown backend nope: it is not in [DEFAULT] '
                         'enabled_backends (be1)\n', self.stderr.getvalue())
        self.open_volumeops.assert_not_called()

    def test_enabled_backend_without_section(self):
        conf = self.confdir.cinder_conf(enabled='be1,ghost',
                                        sections={'be1': credentials()})
        self.assertEqual(2, self.main('--backend', 'ghost', 'list',
                                      conf=conf))
        self.assertIn('unknown backend ghost: the configuration has no '
                      '[ghost] section', self.stderr.getvalue())
        self.open_volumeops.assert_not_called()

    @ddt.data('vmware_host_ip', 'vmware_host_username',
              'vmware_host_password')
    def test_missing_credentials(self, name):
        conf = self.conf(**{name: None})
        self.assertEqual(2, self.main('--debug', 'list', conf=conf))
        self.assertIn('ERROR: backend be1 has no vCenter credentials: %s not '
                      'set' % name, self.stderr.getvalue())
        self.assertNotIn(SECRET, self.output())
        self.open_volumeops.assert_not_called()

    def test_credentials_from_backend_defaults(self):
        conf = self.confdir.cinder_conf(
            sections={'be1': credentials(vmware_host_username=None),
                      'backend_defaults': {'vmware_host_username': 'u'}})
        self.assertEqual(0, self.main('list', conf=conf))

    @ddt.data(('image_cache_age_seconds', '0'),
              ('vmware_host_port', 'https'),
              ('enable_image_cache', 'maybe'))
    @ddt.unpack
    def test_bad_option_value(self, name, value):
        self.assertEqual(2, self.main('list', conf=self.conf(**{name: value})))
        self.assertIn('ERROR: [be1] %s:' % name, self.stderr.getvalue())
        self.open_volumeops.assert_not_called()

    def test_other_volume_driver_is_only_a_warning(self):
        with self.assertLogs(image_cache.LOG.logger, 'WARNING') as logs:
            self.assertEqual(0, self.main('list', conf=self.conf(
                volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver')))
        self.assertIn('LVMVolumeDriver', logs.output[0])

    def test_connection_lost_during_command(self):
        self.cache.list_all.side_effect = vexc.VimConnectionException('gone')
        self.assertEqual(3, self.main('list'))
        self.assertEqual('ERROR: lost the connection to vCenter: gone\n',
                         self.stderr.getvalue())
        self.session.logout.assert_called_once_with()

    def test_unexpected_error_is_one_masked_line(self):
        self.cache.list_all.side_effect = RuntimeError('boom %s' % SECRET)
        self.assertEqual(1, self.main('list'))
        self.assertEqual('ERROR: RuntimeError: boom *** (run with --debug '
                         'for the traceback)\n', self.stderr.getvalue())
        self.assertEqual('', self.stdout.getvalue())

    def test_unexpected_error_traceback_with_debug_is_masked(self):
        self.cache.list_all.side_effect = RuntimeError('boom %s' % SECRET)
        self.assertEqual(1, self.main('--debug', 'list'))
        err = self.stderr.getvalue()
        self.assertTrue(err.startswith('ERROR: RuntimeError: boom ***\n'),
                        err)
        self.assertIn('Traceback (most recent call last)', err)
        self.assertIn('RuntimeError: boom ***', err.splitlines()[-1])
        self.assertNotIn(SECRET, self.output())

    def test_interrupted(self):
        self.cache.list_all.side_effect = KeyboardInterrupt
        self.assertEqual(130, self.main('list'))
        self.assertEqual('Interrupted.\n', self.stderr.getvalue())
        self.session.logout.assert_called_once_with()


@ddt.ddt
class OutputTestCase(MainTestBase):

    def test_list_table(self):
        self.assertEqual(0, self.main('list'))
        self.assertEqual([
            list(image_cache.LIST_COLUMNS),
            [IMAGE_A, 'image-%s' % IMAGE_A, 'ds-gold', '3',
             '2024-05-01T10:00:00Z', '2024-05-02T11:30:00Z', 'ready'],
            [IMAGE_B, PARTIAL.name, 'ds-gold', '-', '2024-05-01T10:00:00Z',
             '-', 'partial'],
        ], table(self.stdout.getvalue()))
        self.assertEqual('', self.stderr.getvalue())

    def test_list_json_has_every_key(self):
        self.assertEqual(0, self.main('list', '--format', 'json'))
        records = self.json_out()
        self.assertEqual([READY_RECORD, PARTIAL_RECORD], records)
        self.assertEqual(list(image_cache.FIELDS), list(records[0]))
        for value in (records[0]['created_at'], records[0]['last_used']):
            self.assertEqual(
                datetime.timezone.utc,
                datetime.datetime.fromisoformat(value).tzinfo)
        # One name lookup per datastore; listing reads every folder.
        self.assertEqual(1, self.session.invoke_api.call_count)
        self.cache.list_all.assert_called_once_with()

    def test_list_yaml_has_every_key(self):
        self.assertEqual(0, self.main('list', '-f', 'yaml'))
        self.assertEqual([READY_RECORD, PARTIAL_RECORD],
                         yaml.safe_load(self.stdout.getvalue()))

    def test_list_csv_has_the_table_columns(self):
        self.assertEqual(0, self.main('list', '-f', 'csv'))
        rows = list(csv.reader(io.StringIO(self.stdout.getvalue())))
        self.assertEqual(list(image_cache.LIST_COLUMNS), rows[0])
        self.assertEqual(3, len(rows))

    @ddt.data('table', 'json')
    def test_list_columns(self, fmt):
        self.assertEqual(0, self.main('list', '-f', fmt, '-c', 'ref',
                                      '-c', 'image_id'))
        if fmt == 'json':
            self.assertEqual([{'image_id': IMAGE_A, 'ref': 'vm-101'},
                              {'image_id': IMAGE_B, 'ref': 'vm-102'}],
                             self.json_out())
        else:
            self.assertEqual([['image_id', 'ref'], [IMAGE_A, 'vm-101'],
                              [IMAGE_B, 'vm-102']],
                             table(self.stdout.getvalue()))

    def test_list_value(self):
        self.assertEqual(0, self.main('list', '-f', 'value', '-c',
                                      'template'))
        self.assertEqual('image-%s\n%s\n' % (IMAGE_A, PARTIAL.name),
                         self.stdout.getvalue())

    def test_list_sorted_by_image_ready_first(self):
        self.cache.list_all.return_value = [PARTIAL, READY, OTHER_READY]
        self.assertEqual(0, self.main('list', '--format', 'json'))
        self.assertEqual(['vm-101', 'vm-103', 'vm-102'],
                         [r['ref'] for r in self.json_out()])

    @ddt.data(([], ['vm-103', 'vm-101', 'vm-102']),
              (['--sort-descending'], ['vm-102', 'vm-101', 'vm-103']))
    @ddt.unpack
    def test_sort_column_with_unknown_values(self, args, refs):
        # An unknown size sorts as cliff sorts None: last when ascending.
        self.cache.list_all.return_value = [PARTIAL, READY, OTHER_READY]
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
        self.assertEqual(0, self.main('show', IMAGE_A))
        header, row = table(self.stdout.getvalue())
        self.assertEqual(list(image_cache.FIELDS), header)
        self.assertEqual([str(READY_RECORD[f]) for f in header], row)

    def test_show_every_entry_of_the_image(self):
        self.cache.list_all.return_value = [READY, PARTIAL, OTHER_READY]
        self.assertEqual(0, self.main('show', IMAGE_B, '--format', 'json'))
        records = self.json_out()
        self.assertEqual(['vm-103', 'vm-102'], [r['ref'] for r in records])
        self.assertEqual('ds-silver', records[0]['datastore'])
        self.assertEqual(PARTIAL_RECORD, records[1])

    def test_show_column(self):
        self.assertEqual(0, self.main('show', IMAGE_A, '-f', 'value', '-c',
                                      'purge_after'))
        self.assertEqual('2024-05-02T12:30:00Z\n', self.stdout.getvalue())

    @ddt.data('table', 'json')
    def test_show_image_not_cached(self, fmt):
        self.assertEqual(1, self.main('show', 'not-cached', '--format', fmt))
        self.assertEqual('', self.stdout.getvalue())
        self.assertEqual('ERROR: image not-cached is not in the image cache '
                         'of backend be1\n', self.stderr.getvalue())

    @ddt.data(['list'], ['show', IMAGE_A], ['purge'])
    def test_opens_only_a_session(self, args):
        # No driver set-up: no extension registration, no scan of all VMs.
        self.assertEqual(0, self.main(*args))
        self.do_setup.assert_not_called()
        self.open_volumeops.assert_called_once_with(mock.ANY)
        self.inventory_class.assert_called_once_with(
            self.session, self.vops, 'cache-be1', 'Volumes', 100)
        stock, cache_policy, templates = self.cache_class.call_args[0]
        self.assertIsNone(stock)
        self.assertIs(self.inventory_class.return_value, templates)
        # The backend's own policy.
        self.assertEqual(4321, cache_policy.age_seconds)
        self.session.logout.assert_called_once_with()


@ddt.ddt
class PurgeTestCase(MainTestBase):

    @ddt.data(([], False, None),
              (['--expired-only'], True, None),
              (['--image', IMAGE_A], False, IMAGE_A),
              (['--expired-only', '--image', IMAGE_A], True, IMAGE_A))
    @ddt.unpack
    def test_arguments(self, args, expired_only, image_id):
        self.assertEqual(0, self.main('purge', *args))
        self.cache.purge.assert_called_once_with(
            expired_only=expired_only, image_id=image_id)

    def test_asks_glance_and_notifies_as_cinder(self):
        self.assertEqual(0, self.main('purge'))
        self.notify_setup.assert_called_once_with(CONF)
        self.glance_images.assert_called_once_with()
        self.cache_class.assert_called_once_with(
            None, mock.ANY, self.inventory_class.return_value,
            images=self.glance_images.return_value)

    def test_list_and_show_ask_no_glance(self):
        self.assertEqual(0, self.main('list'))
        self.assertEqual(0, self.main('show', IMAGE_A))
        self.glance_images.assert_not_called()
        self.notify_setup.assert_not_called()
        self.coordinator.start.assert_not_called()

    def test_takes_the_locks_of_cinder_volume(self):
        def purge(**kwargs):
            # The coordinator runs while the cache deletes.
            self.coordinator.start.assert_called_once_with()
            self.coordinator.stop.assert_not_called()
            return []
        self.cache.purge.side_effect = purge
        self.assertEqual(0, self.main('purge'))
        self.coordinator.stop.assert_called_once_with()

    def test_running_coordinator_is_kept(self):
        self.coordinator.started = True
        self.assertEqual(0, self.main('purge'))
        self.coordinator.start.assert_not_called()
        self.coordinator.stop.assert_not_called()

    def test_coordinator_failure(self):
        self.coordinator.start.side_effect = RuntimeError('no redis')
        self.assertEqual(2, self.main('purge'))
        self.assertEqual('ERROR: cannot start the lock coordinator of '
                         '[coordination] backend_url: no redis\n',
                         self.stderr.getvalue())
        self.open_volumeops.assert_not_called()
        self.cache.purge.assert_not_called()

    def test_password_of_the_coordination_url_is_masked(self):
        url = 'redis://:%s@127.0.0.1:1' % URL_SECRET
        self.coordinator.start.side_effect = RuntimeError(
            'cannot connect to %s' % url)
        conf = self.confdir.cinder_conf(
            sections={'be1': credentials()},
            extra='[coordination]\nbackend_url = %s\n' % url)
        self.assertEqual(2, self.main('--debug', 'purge', conf=conf))
        self.assertIn('cannot connect to redis://:***@127.0.0.1:1',
                      self.stderr.getvalue())
        self.assertNotIn(URL_SECRET, self.output())

    def test_table(self):
        self.cache.purge.return_value = [READY, PARTIAL]
        self.assertEqual(0, self.main('purge'))
        rows = table(self.stdout.getvalue())
        self.assertEqual(list(image_cache.LIST_COLUMNS) + ['result'],
                         rows[0])
        self.assertEqual([(IMAGE_A, 'deleted'), (IMAGE_B, 'deleted')],
                         [(r[0], r[-1]) for r in rows[1:]])
        self.assertEqual('', self.stderr.getvalue())

    def test_json_lists_the_entries_with_their_result(self):
        cache = self.cache
        cache.purge.return_value = [PARTIAL]
        cache.entries.return_value = [READY]
        self.assertEqual(1, self.main('purge', '--format', 'json'))
        self.assertEqual([dict(READY_RECORD, result='failed'),
                          dict(PARTIAL_RECORD, result='deleted')],
                         self.json_out())

    def test_nothing_to_purge(self):
        self.assertEqual(0, self.main('purge', '--image', 'not-cached',
                                      '-f', 'json'))
        self.assertEqual([], self.json_out())
        self.assertEqual('Nothing to purge in the image cache of backend '
                         'be1.\n', self.stderr.getvalue())

    @ddt.data('table', 'json')
    def test_entries_left_behind_fail(self, fmt):
        self.cache.purge.return_value = [READY]
        self.cache.entries.return_value = [READY, PARTIAL]
        self.assertEqual(1, self.main('purge', '--format', fmt))
        self.assertEqual('ERROR: could not delete 1 cache entry (in use by a '
                         'request, or refused by vCenter; see the log; the '
                         'periodic purge retries): %s\n' % PARTIAL.name,
                         self.stderr.getvalue())
        if fmt == 'json':
            self.assertEqual([('vm-101', 'deleted'), ('vm-102', 'failed')],
                             [(r['ref'], r['result'])
                              for r in self.json_out()])
        else:
            self.assertEqual(['deleted', 'failed'],
                             [r[-1] for r in
                              table(self.stdout.getvalue())[1:]])

    def test_entries_of_other_images_are_not_failures(self):
        self.cache.purge.return_value = [READY]
        self.cache.entries.return_value = [PARTIAL, OTHER_READY]
        self.assertEqual(0, self.main('purge', '--image', IMAGE_A))

    def test_expired_only_keeps_the_rest_without_failing(self):
        self.cache.entries.return_value = [READY, PARTIAL]
        self.assertEqual(0, self.main('purge', '--expired-only'))
        self.assertIn('Nothing to purge', self.stderr.getvalue())


@ddt.ddt
class WarmTestCase(MainTestBase):
    """warm sets the driver up (fills use the stock import)."""

    def setUp(self):
        super().setUp()
        self.driver_class = self.autospec(
            image_cache.cache_driver, 'VMwareVcVmdkCacheDriver')
        self.drv = self.driver_class.return_value
        self.drv.session = self.session
        self.drv.image_cache = self.cache
        self.cache.warm.return_value = (READY, True)
        self.service_context = self.autospec(
            image_cache.image_access, 'service_context')
        self.image_service = self.autospec(
            glance, 'get_default_image_service').return_value

    @ddt.data((True, 'filled'), (False, 'already cached'))
    @ddt.unpack
    def test_json(self, filled, result):
        self.cache.warm.return_value = (READY, filled)
        self.assertEqual(0, self.main('warm', IMAGE_A, '-f', 'json'))
        self.assertEqual(dict(READY_RECORD, result=result), self.json_out())
        self.cache.warm.assert_called_once_with(
            self.service_context.return_value, self.image_service, IMAGE_A)
        self.service_context.assert_called_once_with()
        self.notify_setup.assert_called_once_with(CONF)

    def test_table(self):
        self.assertEqual(0, self.main('warm', IMAGE_A))
        rows = dict(table(self.stdout.getvalue())[1:])
        self.assertEqual('filled', rows['result'])
        self.assertEqual('image-%s' % IMAGE_A, rows['template'])
        self.assertEqual('ds-gold', rows['datastore'])

    def test_column(self):
        self.assertEqual(0, self.main('warm', IMAGE_A, '-f', 'value', '-c',
                                      'result'))
        self.assertEqual('filled\n', self.stdout.getvalue())

    def test_sets_the_driver_up_without_its_periodic_task(self):
        def warm(*args):
            # Under the locks of cinder-volume.
            self.coordinator.start.assert_called_once_with()
            return READY, True
        self.cache.warm.side_effect = warm
        self.assertEqual(0, self.main('warm', IMAGE_A))
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
        self.assertEqual(2, self.main('warm', IMAGE_A))
        self.assertEqual('ERROR: set [service_user] options\n',
                         self.stderr.getvalue())
        self.driver_class.assert_not_called()

    @ddt.data(
        (exceptions.ImageNotCacheable('the image disk format is \'raw\', '
                                      'not vmdk'),
         'image %s cannot be cached on backend be1: the image disk format '
         'is \'raw\', not vmdk' % IMAGE_A),
        (exceptions.CacheWaitTimeout('lock'),
         'another request held the cache lock of image %s for longer than '
         'image_cache_wait_timeout; try again later' % IMAGE_A),
        (cinder_exception.ImageNotFound(image_id=IMAGE_A),
         'image %s is not in Glance, or cinder\'s service user cannot see '
         'it; check the id' % IMAGE_A),
        (cinder_exception.ImageNotAuthorized(image_id=IMAGE_A),
         'cinder\'s service user may not read image %s; check its '
         'visibility and the [glance] or [service_user] credentials' %
         IMAGE_A),
        (exceptions.ImageCacheError('the imported disk holds no data'),
         'ImageCacheError: the imported disk holds no data (run with '
         '--debug for the traceback)'))
    @ddt.unpack
    def test_failures(self, error, message):
        self.cache.warm.side_effect = error
        self.assertEqual(1, self.main('warm', IMAGE_A))
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
        self.assertEqual(code, self.main('warm', IMAGE_A))
        self.assertIn('ERROR: %s' % message, self.stderr.getvalue())
        self.cache.warm.assert_not_called()


@ddt.ddt
class LoginTestCase(common.TestCase):
    """The login of every command: probed, bounded, errors mapped."""

    def setUp(self):
        super().setUp()
        self.conf = mock.Mock(vmware_host_ip='127.0.0.1',
                              vmware_host_port=443)
        self.probe = self.useFixture(fixtures.MockPatchObject(
            image_cache, '_probe', autospec=True)).mock
        self.login = mock.Mock(return_value=mock.sentinel.session)

    def test_probes_then_logs_in(self):
        self.assertIs(mock.sentinel.session, image_cache._login(
            'be1', self.conf, 7, self.login, mock.sentinel.arg))
        self.probe.assert_called_once_with('127.0.0.1', 443, 7)
        self.login.assert_called_once_with(mock.sentinel.arg)

    @ddt.data(
        (vexc.VimConnectionException('refused'), 3),
        (vexc.VimFaultException(['InvalidLogin'], 'Cannot complete login'),
         3),
        (vexc.VMwareDriverException('too old'), 3),
        (OSError('certificate verify failed'), 3),
        (exceptions.InvalidCacheOption(option='[be1] x', reason='bad'), 2),
        (cinder_exception.InvalidInput(reason='bad regex'), 2))
    @ddt.unpack
    def test_errors(self, error, code):
        self.login.side_effect = error
        exc = self.assertRaises(image_cache.CommandError, image_cache._login,
                                'be1', self.conf, 5, self.login)
        self.assertEqual(code, exc.code)

    def test_login_that_hangs_is_bounded(self):
        self.login.side_effect = lambda: eventlet.sleep(30)
        start = time.monotonic()
        exc = self.assertRaises(image_cache.CommandError, image_cache._login,
                                'be1', self.conf, 1, self.login)
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(3, exc.code)
        self.assertEqual('vCenter 127.0.0.1:443 did not answer within 1 '
                         'seconds (--vcenter-timeout)', str(exc))

    def test_probe_of_a_closed_port(self):
        port = common.free_port()
        exc = self.assertRaises(image_cache.CommandError, REAL_PROBE,
                                '127.0.0.1', port, 5)
        self.assertEqual(3, exc.code)
        self.assertIn('vCenter 127.0.0.1:%d is unreachable' % port, str(exc))

    def test_logout_errors_are_ignored(self):
        session = mock.create_autospec(api.VMwareAPISession, instance=True)
        session.logout.side_effect = vexc.VimException('gone')
        image_cache._logout(session)
        session.logout.assert_called_once_with()
        image_cache._logout(None)


class LoginErrorTestCase(MainTestBase):
    """A login failure reaches the user masked, with exit code 3."""

    def test_login_failure(self):
        self.open_volumeops.side_effect = vexc.VimFaultException(
            ['InvalidLogin'], 'login with %s refused' % SECRET)
        self.assertEqual(3, self.main('--debug', 'list'))
        err = self.stderr.getvalue()
        self.assertIn('ERROR: cannot log in to vCenter 192.0.2.10:443: login '
                      'with *** refused', err)
        self.assertIn('Traceback', err)
        self.assertNotIn(SECRET, self.output())


@ddt.ddt
class RecordsTestCase(common.TestCase):

    @ddt.data((0, None), (1, 1), (units.Gi, 1), (units.Gi + 1, 2),
              (10 * units.Gi, 10))
    @ddt.unpack
    def test_size_gb_rounds_up(self, size_bytes, size_gb):
        entry = policy.CacheEntry(image_id='i', name='image-i', ref='vm-1',
                                  ready=True, size_bytes=size_bytes)
        record = image_cache.make_record(entry, policy.CachePolicy())
        self.assertEqual(size_gb, record['size_gb'])

    def test_iso_times(self):
        self.assertIsNone(image_cache._iso(None))
        self.assertEqual('2024-05-01T10:00:00Z', image_cache._iso(CREATED))
        aware = datetime.datetime(
            2024, 5, 1, 12, 0, tzinfo=datetime.timezone(
                datetime.timedelta(hours=2)))
        self.assertEqual('2024-05-01T10:00:00Z', image_cache._iso(aware))

    def test_purge_after_unknown_without_dates(self):
        entry = policy.CacheEntry(image_id='i', name='image-i', ref='vm-1',
                                  ready=True)
        record = image_cache.make_record(entry, policy.CachePolicy())
        self.assertIsNone(record['purge_after'])
        self.assertIsNone(record['datastore'])
        self.assertEqual(set(image_cache.FIELDS), set(record))

    def test_unknown_value(self):
        unknown = image_cache.Unknown()
        self.assertEqual('-', unknown.human_readable())
        self.assertIsNone(unknown.machine_readable())
        self.assertEqual([1, 3, unknown], sorted([unknown, 3, 1]))
        self.assertEqual(['a', unknown], sorted([unknown, 'a']))
        self.assertFalse(unknown < image_cache.Unknown())
        self.assertFalse(unknown > image_cache.Unknown())


class SecrecyTestCase(common.TestCase):
    """Secrets never leave through a message or a log handler."""

    def setUp(self):
        super().setUp()
        self.secrets = image_cache.Secrets()
        self.secrets.add(SECRET)
        self.secrets.add(None)
        self.secrets.add('')

    def test_known_values(self):
        self.assertEqual('a *** b ***', self.secrets('a %s b %s' %
                                                     (SECRET, SECRET)))
        self.assertEqual('nothing', self.secrets('nothing'))
        self.secrets.add(SECRET[:5])
        self.assertEqual('x ***', self.secrets('x %s' % SECRET))

    def test_oslo_patterns_without_known_values(self):
        self.assertEqual('<password>***</password> password=***',
                         image_cache.Secrets()(
                             '<password>abc</password> password=abc'))

    def log_through(self, formatter, emit):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(image_cache.RedactingFormatter(formatter,
                                                            self.secrets))
        logger = logging.getLogger('test.secrecy.%s' % uuid.uuid4().hex)
        logger.propagate = False
        logger.addHandler(handler)
        emit(logger)
        return stream.getvalue()

    def test_message_arguments_and_traceback(self):
        def emit(logger):
            try:
                raise ValueError('bad password %s' % SECRET)
            except ValueError:
                logger.exception('login as %s failed', SECRET)
        text = self.log_through(logging.Formatter(), emit)
        self.assertIn('login as *** failed', text)
        self.assertIn('ValueError: bad password ***', text)
        self.assertNotIn(SECRET, text)

    def test_oslo_log_error_summary(self):
        # oslo.log appends the active exception to warnings by itself.
        def emit(logger):
            try:
                raise vexc.VimException('fault for %s' % SECRET)
            except vexc.VimException:
                logger.warning('could not log in')
        text = self.log_through(formatters.ContextFormatter(config=CONF),
                                emit)
        self.assertIn('could not log in', text)
        self.assertIn('fault for ***', text)
        self.assertNotIn(SECRET, text)


class SubprocessTestCase(common.TestCase):
    """The installed behaviour: a real process, real logging, real exit."""

    def setUp(self):
        super().setUp()
        self.confdir = self.useFixture(common.ConfigDir())

    def conf(self, **overrides):
        values = credentials(vmware_api_retry_count=1,
                             vmware_task_poll_interval=0.1)
        values.update(overrides)
        return self.confdir.cinder_conf(
            sections={'be1': {k: v for k, v in values.items()
                              if v is not None}})

    def assertSecretKept(self, out, err):
        self.assertNotIn(SECRET, out)
        self.assertNotIn(SECRET, err)

    def test_help(self):
        code, out, err = common.run_cli(['--help'])
        self.assertEqual(0, code, err)
        self.assertIn('usage: cinder-vmware-image-cache', out)
        self.assertIn('Exit codes:', out)
        self.assertIn('--backend NAME', out)
        self.assertEqual('', err)

    def test_unknown_backend(self):
        code, out, err = common.run_cli(
            ['--config-file', self.conf(), '--backend', 'nope', 'list'])
        self.assertEqual(2, code, err)
        self.assertEqual('', out)
        self.assertEqual('ERROR: unknown backend nope: it is not in [DEFAULT] '
                         'enabled_backends (be1)\n', err)

    def test_missing_username_keeps_the_password(self):
        conf = self.conf(vmware_host_username=None)
        code, out, err = common.run_cli(
            ['--config-file', conf, '--debug', 'purge'])
        self.assertEqual(2, code, err)
        self.assertIn('vmware_host_username not set', err)
        self.assertSecretKept(out, err)

    def test_vcenter_unreachable(self):
        port = common.free_port()
        conf = self.conf(vmware_host_ip='127.0.0.1', vmware_host_port=port)
        start = time.monotonic()
        code, out, err = common.run_cli(['--config-file', conf, 'list'])
        self.assertEqual(3, code, err)
        self.assertLess(time.monotonic() - start, 60)
        self.assertRegex(err, r'^ERROR: vCenter 127.0.0.1:%d is unreachable: '
                         r'.*\n$' % port)
        self.assertEqual('', out)
        self.assertSecretKept(out, err)

    def test_vcenter_silent(self):
        # Accepts connections (the kernel's backlog) but never answers.
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(('127.0.0.1', 0))
        listener.listen(8)
        conf = self.conf(vmware_host_ip='127.0.0.1',
                         vmware_host_port=listener.getsockname()[1])
        code, out, err = common.run_cli(
            ['--config-file', conf, '--debug', '--vcenter-timeout', '1',
             'list'])
        self.assertEqual(3, code, err)
        self.assertIn('did not answer within 1 seconds', err)
        self.assertSecretKept(out, err)


class ModuleTestCase(common.TestCase):

    def test_names_other_code_uses(self):
        self.assertEqual(
            'cinder_vmware_cache.driver.VMwareVcVmdkCacheDriver',
            image_cache.DRIVER_PATH)
        self.assertEqual((0, 1, 2, 3, 130), (
            image_cache.EXIT_OK, image_cache.EXIT_FAILED,
            image_cache.EXIT_USAGE, image_cache.EXIT_VCENTER,
            image_cache.EXIT_INTERRUPTED))

    def test_datastore_names_ask_vcenter_once_per_datastore(self):
        session = fake_session()
        names = image_cache._datastore_names(
            session, [READY, PARTIAL, OTHER_READY,
                      policy.CacheEntry(image_id='i', name='image-i',
                                        ref='vm-9', ready=True)])
        self.assertEqual({'datastore-11': 'ds-gold',
                          'datastore-12': 'ds-silver'}, names)
        self.assertEqual(2, session.invoke_api.call_count)
        session.invoke_api.assert_any_call(
            vim_util, 'get_object_property', session.vim, mock.ANY, 'name')
