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

"""The cinder-vmware-image-cache command: its App and main().

Most tests run main() in this process with vCenter, the cache and the
driver mocked (autospec); the exit-code and secrecy tests also run the real
command in a subprocess.
"""

import logging
import os
import socket
import time
from unittest import mock

from cinder import version
import ddt
from oslo_config import cfg
from oslo_vmware import exceptions as vexc

from cinder_vmware_cache.cli import records
from cinder_vmware_cache.cmd import image_cache
from tests import common
from tests.unit.cli import base

CONF = cfg.CONF


@ddt.ddt
class ArgumentsTestCase(base.MainTestBase):

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

    def test_global_options_after_the_command(self):
        # The old place of --format, and cliff takes the others there too.
        self.assertEqual(0, self.main('list', '--backend', 'be1',
                                      '--vcenter-timeout', '5',
                                      '--format', 'json'))
        self.probe.assert_called_once_with('192.0.2.10', 443, 5)
        self.assertEqual(2, len(self.json_out()))

    def test_main_can_run_again(self):
        self.assertEqual(0, self.main('list'))
        self.assertEqual(0, self.main('show', base.IMAGE_A))
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

    def test_connection_lost_during_command(self):
        self.cache.list_all.side_effect = vexc.VimConnectionException('gone')
        self.assertEqual(3, self.main('list'))
        self.assertEqual('ERROR: lost the connection to vCenter: gone\n',
                         self.stderr.getvalue())
        self.session.logout.assert_called_once_with()

    def test_unexpected_error_is_one_masked_line(self):
        self.cache.list_all.side_effect = RuntimeError('boom %s' % base.SECRET)
        self.assertEqual(1, self.main('list'))
        self.assertEqual('ERROR: RuntimeError: boom *** (run with --debug '
                         'for the traceback)\n', self.stderr.getvalue())
        self.assertEqual('', self.stdout.getvalue())

    def test_unexpected_error_traceback_with_debug_is_masked(self):
        self.cache.list_all.side_effect = RuntimeError('boom %s' % base.SECRET)
        self.assertEqual(1, self.main('--debug', 'list'))
        err = self.stderr.getvalue()
        self.assertTrue(err.startswith('ERROR: RuntimeError: boom ***\n'),
                        err)
        self.assertIn('Traceback (most recent call last)', err)
        self.assertIn('RuntimeError: boom ***', err.splitlines()[-1])
        self.assertNotIn(base.SECRET, self.output())

    def test_interrupted(self):
        self.cache.list_all.side_effect = KeyboardInterrupt
        self.assertEqual(130, self.main('list'))
        self.assertEqual('Interrupted.\n', self.stderr.getvalue())
        self.session.logout.assert_called_once_with()


class SubprocessTestCase(common.TestCase):
    """The installed behaviour: a real process, real logging, real exit."""

    def setUp(self):
        super().setUp()
        self.confdir = self.useFixture(common.ConfigDir())

    def conf(self, **overrides):
        values = base.credentials(vmware_api_retry_count=1,
                                  vmware_task_poll_interval=0.1)
        values.update(overrides)
        return self.confdir.cinder_conf(
            sections={'be1': {k: v for k, v in values.items()
                              if v is not None}})

    def assertSecretKept(self, out, err):
        self.assertNotIn(base.SECRET, out)
        self.assertNotIn(base.SECRET, err)

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
        self.assertIs(records.FIELDS, image_cache.FIELDS)
