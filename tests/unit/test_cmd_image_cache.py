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

Most tests run main() in this process with the driver mocked; the exit-code
and secrecy tests also run the real command in a subprocess, and one class
runs it against the vCenter named by VCENTER_HOST (skipped without one).
"""

# Monkey patching and objects first, as for every cinder test.
import cinder.tests.unit  # noqa: F401

import datetime  # noqa: I100
import io
import json
import logging
import os
import socket
import time
from unittest import mock
import uuid

from cinder import exception as cinder_exception
from cinder.tests.unit import test
import ddt
import eventlet
import fixtures
from oslo_config import cfg
from oslo_log import formatters
from oslo_utils import units
from oslo_vmware import api
from oslo_vmware import exceptions as vexc

from cinder_vmware_cache import cache as cache_mod
from cinder_vmware_cache.cmd import image_cache
from cinder_vmware_cache import driver
from cinder_vmware_cache import exceptions
from cinder_vmware_cache import policy
from tests import common

CONF = cfg.CONF
REAL_PROBE = image_cache._probe
SECRET = 'Sup3r-S3cret-Passw0rd'
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


def credentials(**overrides):
    values = {'volume_driver': image_cache.DRIVER_PATH,
              'volume_backend_name': 'be1',
              'vmware_host_ip': '192.0.2.10',
              'vmware_host_username': 'administrator@vsphere.local',
              'vmware_host_password': SECRET}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


class GlobalConf(fixtures.Fixture):
    """Lets main() parse the process-wide CONF, and undoes it afterwards.

    cinder's TestCase has parsed CONF (with its test defaults, which other
    cinder tests' options need to parse at all); main() parses it again.
    """

    def _setUp(self):
        CONF.clear()
        self.addCleanup(image_cache.unregister_cli_opts)
        self.addCleanup(CONF.clear)


class MainTestBase(test.TestCase):
    """main() in this process, with the driver and logging mocked."""

    mock_connect = True

    def setUp(self):
        super().setUp()
        self.useFixture(GlobalConf())
        self.confdir = self.useFixture(common.ConfigDir())
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', self.stdout))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', self.stderr))
        self.useFixture(fixtures.MockPatchObject(image_cache,
                                                 '_setup_logging'))
        self.coordinator = mock.Mock(started=False)
        self.useFixture(fixtures.MockPatchObject(
            image_cache.coordination, 'COORDINATOR', self.coordinator))
        self.drv = self.fake_driver([READY, PARTIAL])
        if self.mock_connect:
            self.connect = self.useFixture(fixtures.MockPatchObject(
                image_cache, 'connect', return_value=self.drv)).mock
        self.disconnect = self.useFixture(fixtures.MockPatchObject(
            image_cache, 'disconnect')).mock

    @staticmethod
    def fake_driver(entries, deleted=(), remaining=()):
        drv = mock.create_autospec(driver.VMwareVcVmdkCacheDriver,
                                   instance=True)
        drv.session = mock.create_autospec(api.VMwareAPISession,
                                           instance=True)
        cache = drv.image_cache = mock.create_autospec(
            cache_mod.ImageTemplateCache, instance=True)
        cache.policy = policy.CachePolicy(enabled=True, age_seconds=3600,
                                          leftover_grace_seconds=600)
        cache.list_all.return_value = list(entries)
        cache.purge.return_value = list(deleted)
        cache.entries.return_value = list(remaining)
        drv.session.invoke_api.side_effect = (
            lambda module, func, vim, ref, prop: {
                'datastore-11': 'ds-gold', 'datastore-12': 'ds-silver'}[
                    ref.value])
        return drv

    def conf(self, **overrides):
        return self.confdir.cinder_conf(
            sections={'be1': credentials(**overrides)})

    def main(self, *args, conf=None):
        argv = ['--config-file', conf or self.conf()] + list(args)
        return image_cache.main(argv)

    def output(self):
        return self.stdout.getvalue() + self.stderr.getvalue()


@ddt.ddt
class ArgumentsTestCase(MainTestBase):

    def test_help_documents_exit_codes(self):
        self.assertEqual(0, image_cache.main(['--help']))
        text = self.stdout.getvalue()
        self.assertIn('Exit codes: 0 success', text)
        for command in ('list', 'show', 'purge'):
            self.assertIn(command, text)
        self.connect.assert_not_called()

    def test_command_help(self):
        self.assertEqual(0, image_cache.main(['purge', '--help']))
        text = self.stdout.getvalue()
        self.assertIn('--expired-only', text)
        self.assertIn('--image IMAGE_ID', text)
        self.assertIn('--format {table,json}', text)

    @ddt.data([], ['frobnicate'], ['list', '--format', 'xml'], ['show'],
              ['purge', '--image'], ['list', 'extra'],
              ['--vcenter-timeout', '0', 'list'],
              ['--vcenter-timeout', 'soon', 'list'])
    def test_usage_errors(self, args):
        self.assertEqual(2, self.main(*args))
        self.connect.assert_not_called()
        self.assertEqual('', self.stdout.getvalue())
        self.assertIn('--' if '--vcenter-timeout' in args else 'usage:',
                      self.stderr.getvalue())

    def test_missing_config_file(self):
        missing = os.path.join(self.confdir.path, 'nope.conf')
        self.assertEqual(2, image_cache.main(['--config-file', missing,
                                              'list']))
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

        def connect(backend, conf, timeout):
            # Read while main() runs: it forgets the files when it ends.
            seen.update(ip=conf.vmware_host_ip,
                        cache=conf.enable_image_cache,
                        folder=conf.vmware_volume_folder)
            return self.drv
        self.connect.side_effect = connect
        self.assertEqual(0, self.main('--backend', 'be1', 'list'))
        self.connect.assert_called_once_with('be1', mock.ANY, 60)
        self.assertEqual({'ip': '192.0.2.10', 'cache': False,
                          'folder': 'Volumes'}, seen)
        self.disconnect.assert_called_once_with(self.drv)

    def test_main_can_run_again(self):
        self.assertEqual(0, self.main('list'))
        self.assertEqual(0, self.main('show', IMAGE_A))
        self.assertEqual(2, self.main('--backend', 'nope', 'list'))
        self.assertEqual(0, self.main('list'))
        self.assertEqual(3, self.connect.call_count)

    def test_timeout_option(self):
        self.assertEqual(0, self.main('--vcenter-timeout', '5', 'list'))
        self.connect.assert_called_once_with('be1', mock.ANY, 5)

    def test_single_enabled_backend_is_the_default(self):
        self.assertEqual(0, self.main('list'))
        self.assertEqual('be1', self.connect.call_args[0][0])

    def test_backend_required_when_several_are_enabled(self):
        conf = self.confdir.cinder_conf(
            enabled='be1,be2', sections={'be1': credentials(),
                                         'be2': credentials()})
        self.assertEqual(2, self.main('list', conf=conf))
        self.assertIn('--backend NAME is required (enabled backends: be1, '
                      'be2)', self.stderr.getvalue())
        self.assertEqual(0, self.main('--backend', 'be2', 'list', conf=conf))
        self.assertEqual('be2', self.connect.call_args[0][0])

    def test_unknown_backend(self):
        self.assertEqual(2, self.main('--backend', 'nope', 'list'))
        self.assertIn('unknown backend nope: it is not in [DEFAULT] '
                      'enabled_backends (be1)', self.stderr.getvalue())
        self.connect.assert_not_called()

    def test_enabled_backend_without_section(self):
        conf = self.confdir.cinder_conf(enabled='be1,ghost',
                                        sections={'be1': credentials()})
        self.assertEqual(2, self.main('--backend', 'ghost', 'list',
                                      conf=conf))
        self.assertIn('unknown backend ghost: the configuration has no '
                      '[ghost] section', self.stderr.getvalue())
        self.connect.assert_not_called()

    @ddt.data('vmware_host_ip', 'vmware_host_username',
              'vmware_host_password')
    def test_missing_credentials(self, name):
        conf = self.conf(**{name: None})
        self.assertEqual(2, self.main('--debug', 'list', conf=conf))
        self.assertIn('backend be1 has no vCenter credentials: %s not set' %
                      name, self.stderr.getvalue())
        self.assertNotIn(SECRET, self.output())
        self.connect.assert_not_called()

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
        self.assertIn('[be1] %s:' % name, self.stderr.getvalue())
        self.connect.assert_not_called()

    def test_other_volume_driver_is_only_a_warning(self):
        with self.assertLogs(image_cache.LOG.logger, 'WARNING') as logs:
            self.assertEqual(0, self.main('list', conf=self.conf(
                volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver')))
        self.assertIn('LVMVolumeDriver', logs.output[0])

    def test_connection_lost_during_command(self):
        self.drv.image_cache.list_all.side_effect = (
            vexc.VimConnectionException('gone'))
        self.assertEqual(3, self.main('list'))
        self.assertIn('lost the connection to vCenter: gone',
                      self.stderr.getvalue())
        self.disconnect.assert_called_once_with(self.drv)

    def test_unexpected_error_is_masked(self):
        self.drv.image_cache.list_all.side_effect = (
            RuntimeError('boom %s' % SECRET))
        self.assertEqual(1, self.main('list'))
        self.assertIn('ERROR: RuntimeError: boom ***',
                      self.stderr.getvalue())
        self.assertIn('--debug', self.stderr.getvalue())
        self.assertNotIn(SECRET, self.output())

    def test_unexpected_error_traceback_with_debug_is_masked(self):
        self.drv.image_cache.list_all.side_effect = (
            RuntimeError('boom %s' % SECRET))
        self.assertEqual(1, self.main('--debug', 'list'))
        self.assertIn('Traceback (most recent call last)',
                      self.stderr.getvalue())
        self.assertNotIn(SECRET, self.output())

    def test_interrupted(self):
        self.drv.image_cache.list_all.side_effect = (
            KeyboardInterrupt)
        self.assertEqual(130, self.main('list'))


@ddt.ddt
class OutputTestCase(MainTestBase):

    def test_list_table(self):
        self.assertEqual(0, self.main('list'))
        lines = self.stdout.getvalue().splitlines()
        self.assertEqual(4, len(lines))
        header, rule, first, second = lines
        self.assertEqual(['IMAGE', 'ID', 'TEMPLATE', 'DATASTORE', 'SIZE',
                          '(GiB)', 'CREATED', 'LAST', 'USED', 'STATE'],
                         header.split())
        self.assertEqual(set('- '), set(rule))
        self.assertEqual([IMAGE_A, 'image-%s' % IMAGE_A, 'ds-gold', '3',
                          '2024-05-01T10:00:00Z', '2024-05-02T11:30:00Z',
                          'ready'], first.split())
        self.assertEqual([IMAGE_B, PARTIAL.name, 'ds-gold', '-',
                          '2024-05-01T10:00:00Z', '-', 'partial'],
                         second.split())
        # Aligned: every column starts where its header starts.
        for title in ('TEMPLATE', 'DATASTORE', 'CREATED', 'STATE'):
            column = header.index(title)
            self.assertEqual(' ', first[column - 1])
            self.assertNotEqual(' ', first[column])
            self.assertNotEqual(' ', second[column])
        # The size column is right-aligned under its header.
        end = header.index('(GiB)') + len('(GiB)')
        self.assertEqual('3', first[end - 1])
        self.assertEqual('-', second[end - 1])
        self.assertEqual('', self.stderr.getvalue())

    def test_list_json(self):
        self.assertEqual(0, self.main('list', '--format', 'json'))
        records = json.loads(self.stdout.getvalue())
        self.assertEqual([{
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
        }, {
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
        }], records)
        for value in (records[0]['created_at'], records[0]['last_used']):
            self.assertEqual(
                datetime.timezone.utc,
                datetime.datetime.fromisoformat(value).tzinfo)
        # One name lookup per datastore; listing reads every folder.
        self.assertEqual(1, self.drv.session.invoke_api.call_count)
        self.drv.image_cache.list_all.assert_called_once_with()

    def test_list_sorted_by_image_ready_first(self):
        self.drv = self.fake_driver([PARTIAL, READY, OTHER_READY])
        self.connect.return_value = self.drv
        self.assertEqual(0, self.main('list', '--format', 'json'))
        self.assertEqual(['vm-101', 'vm-103', 'vm-102'],
                         [r['ref'] for r in
                          json.loads(self.stdout.getvalue())])

    def test_datastore_name_unknown(self):
        self.drv.session.invoke_api.side_effect = vexc.VimException('no')
        self.assertEqual(0, self.main('list', '--format', 'json'))
        records = json.loads(self.stdout.getvalue())
        self.assertEqual('datastore-11', records[0]['datastore'])

    @ddt.data(('table', 'The image cache of backend be1 is empty.\n'),
              ('json', '[]\n'))
    @ddt.unpack
    def test_list_empty(self, fmt, expected):
        self.drv.image_cache.list_all.return_value = []
        self.assertEqual(0, self.main('list', '--format', fmt))
        self.assertEqual(expected, self.stdout.getvalue())

    def test_show_table(self):
        self.assertEqual(0, self.main('show', IMAGE_A))
        rows = dict(line.split(None, 1) for line in
                    self.stdout.getvalue().splitlines()[2:])
        self.assertEqual(IMAGE_A, rows['image_id'])
        self.assertEqual('ready', rows['state'])
        self.assertEqual('3', rows['size_gb'])
        self.assertEqual(str(2 * units.Gi + 1), rows['size_bytes'])
        self.assertEqual('2024-05-02T12:30:00Z', rows['purge_after'])
        self.assertEqual('vm-101', rows['ref'])

    def test_show_every_entry_of_the_image(self):
        self.drv = self.fake_driver([READY, PARTIAL, OTHER_READY])
        self.connect.return_value = self.drv
        self.assertEqual(0, self.main('show', IMAGE_B, '--format', 'json'))
        records = json.loads(self.stdout.getvalue())
        self.assertEqual(['vm-103', 'vm-102'], [r['ref'] for r in records])
        self.assertEqual('ds-silver', records[0]['datastore'])

    @ddt.data('table', 'json')
    def test_show_image_not_cached(self, fmt):
        self.assertEqual(1, self.main('show', 'not-cached', '--format', fmt))
        self.assertEqual('', self.stdout.getvalue())
        self.assertIn('image not-cached is not in the image cache of backend '
                      'be1', self.stderr.getvalue())


@ddt.ddt
class PurgeTestCase(MainTestBase):

    @ddt.data(([], False, None),
              (['--expired-only'], True, None),
              (['--image', IMAGE_A], False, IMAGE_A),
              (['--expired-only', '--image', IMAGE_A], True, IMAGE_A))
    @ddt.unpack
    def test_arguments(self, args, expired_only, image_id):
        self.assertEqual(0, self.main('purge', *args))
        self.drv.image_cache.purge.assert_called_once_with(
            expired_only=expired_only, image_id=image_id)

    def test_takes_the_locks_of_cinder_volume(self):
        def purge(**kwargs):
            # The coordinator runs while the cache deletes.
            self.coordinator.start.assert_called_once_with()
            self.coordinator.stop.assert_not_called()
            return []
        self.drv.image_cache.purge.side_effect = purge
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
        self.assertIn('cannot start the lock coordinator of [coordination] '
                      'backend_url: no redis', self.stderr.getvalue())
        self.drv.image_cache.purge.assert_not_called()

    def test_list_and_show_need_no_coordinator(self):
        self.assertEqual(0, self.main('list'))
        self.assertEqual(0, self.main('show', IMAGE_A))
        self.coordinator.start.assert_not_called()

    def test_prints_what_was_deleted(self):
        self.drv.image_cache.purge.return_value = [READY, PARTIAL]
        self.assertEqual(0, self.main('purge'))
        lines = self.stdout.getvalue().splitlines()
        self.assertEqual('Deleted 2 cache entries of backend be1:', lines[0])
        self.assertEqual(IMAGE_A, lines[3].split()[0])
        self.assertEqual(PARTIAL.name, lines[4].split()[1])

    def test_deleted_json(self):
        self.drv.image_cache.purge.return_value = [READY]
        self.assertEqual(0, self.main('purge', '--image', IMAGE_A,
                                      '--format', 'json'))
        result = json.loads(self.stdout.getvalue())
        self.assertEqual([], result['failed'])
        self.assertEqual(['vm-101'], [r['ref'] for r in result['deleted']])

    def test_nothing_to_purge(self):
        self.assertEqual(0, self.main('purge', '--image', 'not-cached'))
        self.assertEqual('Nothing to purge in the image cache of backend '
                         'be1.\n', self.stdout.getvalue())

    @ddt.data('table', 'json')
    def test_entries_left_behind_fail(self, fmt):
        cache = self.drv.image_cache
        cache.purge.return_value = [READY]
        cache.entries.return_value = [PARTIAL]
        self.assertEqual(1, self.main('purge', '--format', fmt))
        self.assertIn('Could not delete 1 cache entry (in use by a request, '
                      'or refused by vCenter; see the log): %s' %
                      PARTIAL.name, self.stderr.getvalue())
        if fmt == 'json':
            result = json.loads(self.stdout.getvalue())
            self.assertEqual(['vm-102'], [r['ref'] for r in result['failed']])

    def test_entries_of_other_images_are_not_failures(self):
        cache = self.drv.image_cache
        cache.purge.return_value = [READY]
        cache.entries.return_value = [PARTIAL, OTHER_READY]
        self.assertEqual(0, self.main('purge', '--image', IMAGE_A))

    def test_expired_only_keeps_the_rest_without_failing(self):
        cache = self.drv.image_cache
        cache.purge.return_value = []
        cache.entries.return_value = [READY, PARTIAL]
        self.assertEqual(0, self.main('purge', '--expired-only'))
        self.assertIn('Nothing to purge', self.stdout.getvalue())


@ddt.ddt
class ConnectTestCase(common.TestCase):
    """connect(): the driver's setup, bounded, with errors mapped."""

    def setUp(self):
        super().setUp()
        self.conf = mock.Mock(vmware_host_ip='127.0.0.1',
                              vmware_host_port=443)
        self.probe = self.useFixture(fixtures.MockPatchObject(
            image_cache, '_probe')).mock
        self.driver_class = self.useFixture(fixtures.MockPatchObject(
            image_cache.cache_driver, 'VMwareVcVmdkCacheDriver')).mock
        self.drv = self.driver_class.return_value

    def test_sets_up_without_starting_the_periodic_task(self):
        self.assertIs(self.drv, image_cache.connect('be1', self.conf, 7))
        self.probe.assert_called_once_with('127.0.0.1', 443, 7)
        self.driver_class.assert_called_once_with(configuration=self.conf)
        self.drv.do_setup.assert_called_once_with(mock.ANY)
        self.drv.check_for_setup_error.assert_not_called()

    @ddt.data(
        (vexc.VimConnectionException('refused'), 3),
        (vexc.VimFaultException(['InvalidLogin'], 'Cannot complete login'),
         3),
        (vexc.VMwareDriverException('too old'), 3),
        (OSError('certificate verify failed'), 3),
        (exceptions.InvalidCacheOption('[be1] image_cache_age_seconds'), 2),
        (cinder_exception.InvalidInput(reason='bad regex'), 2))
    @ddt.unpack
    def test_setup_errors(self, error, code):
        self.drv.do_setup.side_effect = error
        exc = self.assertRaises(image_cache.CommandError,
                                image_cache.connect, 'be1', self.conf, 5)
        self.assertEqual(code, exc.code)

    def test_setup_that_hangs_is_bounded(self):
        self.drv.do_setup.side_effect = lambda ctx: eventlet.sleep(30)
        start = time.monotonic()
        exc = self.assertRaises(image_cache.CommandError,
                                image_cache.connect, 'be1', self.conf, 1)
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(3, exc.code)
        self.assertIn('did not answer within 1 seconds', str(exc))

    def test_probe_of_a_closed_port(self):
        port = common.free_port()
        exc = self.assertRaises(image_cache.CommandError, REAL_PROBE,
                                '127.0.0.1', port, 5)
        self.assertEqual(3, exc.code)
        self.assertIn('vCenter 127.0.0.1:%d is unreachable' % port, str(exc))

    def test_disconnect_logs_out(self):
        # (The driver class is patched in this test case.)
        drv = mock.NonCallableMock(spec_set=['_session'])
        drv._session = mock.create_autospec(api.VMwareAPISession,
                                            instance=True)
        image_cache.disconnect(drv)
        drv._session.logout.assert_called_once_with()
        drv._session.logout.side_effect = vexc.VimException('gone')
        image_cache.disconnect(drv)
        image_cache.disconnect(mock.Mock(_session=None))


class LoginErrorTestCase(MainTestBase):
    """A login failure reaches the user masked, with exit code 3."""

    mock_connect = False

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MockPatchObject(image_cache, '_probe'))
        driver_class = self.useFixture(fixtures.MockPatchObject(
            image_cache.cache_driver, 'VMwareVcVmdkCacheDriver')).mock
        self.drv = driver_class.return_value

    def test_login_failure(self):
        self.drv.do_setup.side_effect = vexc.VimFaultException(
            ['InvalidLogin'], 'login with %s refused' % SECRET)
        self.assertEqual(3, self.main('--debug', 'list'))
        self.assertIn('cannot log in to vCenter 192.0.2.10:443',
                      self.stderr.getvalue())
        self.assertIn('login with *** refused', self.stderr.getvalue())
        self.assertNotIn(SECRET, self.output())


@ddt.ddt
class FormattingTestCase(common.TestCase):

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

    def test_table(self):
        columns = (('A', 'a', False), ('LONG B', 'b', True),
                   ('C', 'c', False))
        text = image_cache.format_table(
            [{'a': 'x', 'b': 7, 'c': None}, {'a': 'yyyy', 'b': 1234,
                                             'c': 'z'}], columns)
        self.assertEqual(['A     LONG B  C',
                          '----  ------  -',
                          'x          7  -',
                          'yyyy    1234  z'], text.splitlines())

    def test_fields(self):
        text = image_cache.format_fields([{'a': 1}, {'a': 2}], ('a',))
        self.assertEqual('FIELD  VALUE\n-----  -----\na      1\n\n'
                         'FIELD  VALUE\n-----  -----\na      2', text)


class SecrecyTestCase(common.TestCase):
    """The password never leaves through a log handler."""

    def setUp(self):
        super().setUp()
        self.redactor = image_cache.Redactor()
        self.redactor.add(SECRET)
        self.redactor.add(None)
        self.redactor.add('')

    def test_redactor(self):
        self.assertEqual('a *** b ***', self.redactor('a %s b %s' %
                                                      (SECRET, SECRET)))
        self.assertEqual('nothing', self.redactor('nothing'))
        self.redactor.add(SECRET[:5])
        self.assertEqual('x ***', self.redactor('x %s' % SECRET))

    def log_through(self, formatter, emit):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(image_cache.RedactingFormatter(formatter,
                                                            self.redactor))
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
        self.assertIn('Exit codes:', out)
        self.assertIn('--backend NAME', out)

    def test_unknown_backend(self):
        code, out, err = common.run_cli(
            ['--config-file', self.conf(), '--backend', 'nope', 'list'])
        self.assertEqual(2, code, err)
        self.assertEqual('', out)
        self.assertIn('ERROR: unknown backend nope', err)

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
        code, out, err = common.run_cli(
            ['--config-file', conf, '--debug', 'list'])
        self.assertEqual(3, code, err)
        self.assertLess(time.monotonic() - start, 60)
        self.assertIn('vCenter 127.0.0.1:%d is unreachable' % port, err)
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
