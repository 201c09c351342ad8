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

"""The vCenter login, session, driver set-up and lock coordinator."""

import time
from unittest import mock

from cinder import exception as cinder_exception
import ddt
import eventlet
import fixtures
from oslo_vmware import api
from oslo_vmware import exceptions as vexc

from cinder_vmware_cache.cli import errors
from cinder_vmware_cache.cli import vcenter
from cinder_vmware_cache import exceptions
from tests import common
from tests.unit.cli import base

REAL_PROBE = vcenter._probe


@ddt.ddt
class LoginTestCase(common.TestCase):
    """The login of every command: probed, bounded, errors mapped."""

    def setUp(self):
        super().setUp()
        self.conf = mock.Mock(vmware_host_ip='127.0.0.1',
                              vmware_host_port=443)
        self.probe = self.useFixture(fixtures.MockPatchObject(
            vcenter, '_probe', autospec=True)).mock
        self.login = mock.Mock(return_value=mock.sentinel.session)

    def test_probes_then_logs_in(self):
        self.assertIs(mock.sentinel.session, vcenter._login(
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
        exc = self.assertRaises(errors.CommandError, vcenter._login,
                                'be1', self.conf, 5, self.login)
        self.assertEqual(code, exc.code)

    def test_login_that_hangs_is_bounded(self):
        self.login.side_effect = lambda: eventlet.sleep(30)
        start = time.monotonic()
        exc = self.assertRaises(errors.CommandError, vcenter._login,
                                'be1', self.conf, 1, self.login)
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(3, exc.code)
        self.assertEqual('vCenter 127.0.0.1:443 did not answer within 1 '
                         'seconds (--vcenter-timeout)', str(exc))

    def test_probe_of_a_closed_port(self):
        port = common.free_port()
        exc = self.assertRaises(errors.CommandError, REAL_PROBE,
                                '127.0.0.1', port, 5)
        self.assertEqual(3, exc.code)
        self.assertIn('vCenter 127.0.0.1:%d is unreachable' % port, str(exc))

    def test_logout_errors_are_ignored(self):
        session = mock.create_autospec(api.VMwareAPISession, instance=True)
        session.logout.side_effect = vexc.VimException('gone')
        vcenter._logout(session)
        session.logout.assert_called_once_with()
        vcenter._logout(None)


class LoginErrorTestCase(base.MainTestBase):
    """A login failure reaches the user masked, with exit code 3."""

    def test_login_failure(self):
        self.open_volumeops.side_effect = vexc.VimFaultException(
            ['InvalidLogin'], 'login with %s refused' % base.SECRET)
        self.assertEqual(3, self.main('--debug', 'list'))
        err = self.stderr.getvalue()
        self.assertIn('ERROR: cannot log in to vCenter 192.0.2.10:443: login '
                      'with *** refused', err)
        self.assertIn('Traceback', err)
        self.assertNotIn(base.SECRET, self.output())


@ddt.ddt
class CacheSessionTestCase(base.MainTestBase):
    """list, show and purge: a bare session, not a driver."""

    @ddt.data(['list'], ['show', base.IMAGE_A], ['purge'])
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

    def test_backend_name_defaults_to_the_driver_class(self):
        conf = self.conf(volume_backend_name=None)
        self.assertEqual(0, self.main('list', conf=conf))
        self.assertEqual('VMwareVcVmdkCacheDriver',
                         self.inventory_class.call_args[0][2])


class LockCoordinatorTestCase(base.MainTestBase):
    """The locks of cinder-volume, through purge."""

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
