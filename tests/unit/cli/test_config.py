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

"""cinder.conf and the backend's section, through main()."""

import os

import ddt

from cinder_vmware_cache.cli import config
from cinder_vmware_cache.cmd import image_cache
from tests.unit.cli import base


@ddt.ddt
class ConfigurationTestCase(base.MainTestBase):

    def test_missing_config_file(self):
        missing = os.path.join(self.confdir.path, 'nope.conf')
        self.assertEqual(2, image_cache.main(['--config-file', missing,
                                              'list']))
        self.assertIn('ERROR: cannot read configuration file(s): ',
                      self.stderr.getvalue())
        self.assertIn('nope.conf', self.stderr.getvalue())

    def test_unparsable_config_file_does_not_quote_the_line(self):
        path = self.confdir.write('[DEFAULT]\nenabled_backends = be1\n'
                                  '[be1]\n%s\n' % base.SECRET)
        self.assertEqual(2, image_cache.main(['--config-file', path,
                                              'list']))
        self.assertIn('cannot parse configuration file %s at line 4' % path,
                      self.stderr.getvalue())
        self.assertNotIn(base.SECRET, self.output())

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

    def test_single_enabled_backend_is_the_default(self):
        self.assertEqual(0, self.main('list'))
        self.inventory_class.assert_called_once_with(
            self.session, self.vops, 'cache-be1', 'Volumes', 100)

    def test_backend_required_when_several_are_enabled(self):
        conf = self.confdir.cinder_conf(
            enabled='be1,be2', sections={
                'be1': base.credentials(),
                'be2': base.credentials(volume_backend_name='cache-be2')})
        self.assertEqual(2, self.main('list', conf=conf))
        self.assertEqual('ERROR: --backend NAME is required (enabled '
                         'backends: be1, be2)\n', self.stderr.getvalue())
        self.assertEqual(0, self.main('--backend', 'be2', 'list', conf=conf))
        self.assertEqual('cache-be2', self.inventory_class.call_args[0][2])

    def test_unknown_backend(self):
        self.assertEqual(2, self.main('--backend', 'nope', 'list'))
        self.assertEqual('ERROR: unknown backend nope: it is not in [DEFAULT] '
                         'enabled_backends (be1)\n', self.stderr.getvalue())
        self.open_volumeops.assert_not_called()

    def test_enabled_backend_without_section(self):
        conf = self.confdir.cinder_conf(enabled='be1,ghost',
                                        sections={'be1': base.credentials()})
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
        self.assertNotIn(base.SECRET, self.output())
        self.open_volumeops.assert_not_called()

    def test_credentials_from_backend_defaults(self):
        conf = self.confdir.cinder_conf(
            sections={'be1': base.credentials(vmware_host_username=None),
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
        with self.assertLogs(config.LOG.logger, 'WARNING') as logs:
            self.assertEqual(0, self.main('list', conf=self.conf(
                volume_driver='cinder.volume.drivers.lvm.LVMVolumeDriver')))
        self.assertIn('LVMVolumeDriver', logs.output[0])
