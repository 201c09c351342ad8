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


"""The operator CLI against a real vSphere API (simulator or vCenter)."""

import json

from cinder_vmware_cache.cmd import image_cache
from tests import common
from tests.vcsim import base

# The command, with the steps of a driver's set-up that list, show and
# purge skip made to fail: do_setup, the vCenter extension registration
# and the scan of every VM.
WITHOUT_DRIVER_SETUP = '''
import sys

from cinder_vmware_cache.cmd import image_cache
from cinder.volume.drivers.vmware import vmdk
from cinder.volume.drivers.vmware import volumeops
from cinder_vmware_cache import driver


def forbidden(*args, **kwargs):
    raise AssertionError('the command set a driver up')


driver.VMwareVcVmdkCacheDriver.do_setup = forbidden
vmdk.VMwareVcVmdkDriver.do_setup = forbidden
vmdk.VMwareVcVmdkDriver._register_extension = forbidden
volumeops.VMwareVolumeOps.build_backing_ref_cache = forbidden
sys.exit(image_cache.main())
'''


class CommandTestCase(base.SimulatorTestCase):
    """The real command against VCENTER_HOST (the simulator or a vCenter).

    The cache is filled through the driver in this process; the command
    runs in a subprocess with a cinder.conf for the same backend.
    """

    def write_conf(self, extra=''):
        endpoint = self.driver_endpoint
        values = {
            'volume_driver': image_cache.DRIVER_PATH,
            'volume_backend_name': self.backend,
            'enable_image_cache': 'true',
            'vmware_host_ip': endpoint['vmware_host_ip'],
            'vmware_host_port': endpoint['vmware_host_port'],
            'vmware_host_username': endpoint['vmware_host_username'],
            'vmware_host_password': endpoint['vmware_host_password'],
            'vmware_insecure': str(endpoint['vmware_insecure']).lower(),
            'vmware_api_retry_count': 2,
        }
        if endpoint['vmware_wsdl_location']:
            values['vmware_wsdl_location'] = endpoint['vmware_wsdl_location']
        return self.useFixture(common.ConfigDir()).cinder_conf(
            enabled=self.backend, sections={self.backend: values},
            extra=extra)

    def cli(self, conf, *args):
        return common.run_cli(
            ['--config-file', conf, '--backend', self.backend] + list(args),
            program=('-c', WITHOUT_DRIVER_SETUP))

    def test_list_show_purge(self):
        image_id = self.add_image()
        volume, backing = self.create(image_id, {'use_image_cache': 'true'})
        conf = self.write_conf()

        code, out, err = self.cli(conf, 'list', '--format', 'json')
        self.assertEqual(0, code, err)
        records = {r['image_id']: r for r in json.loads(out)}
        self.assertEqual({image_id}, set(records))
        record = records[image_id]
        self.assertEqual('image-%s' % image_id, record['template'])
        self.assertEqual('ready', record['state'])
        self.assertEqual(1, record['size_gb'])
        # The datastore's name, looked up by its moref.
        self.assertTrue(record['datastore'])
        self.assertNotEqual(record['datastore_ref'], record['datastore'])
        self.assertTrue(record['created_at'].endswith('Z'))
        self.assertTrue(record['last_used'].endswith('Z'))
        self.assertEqual(set(image_cache.FIELDS), set(record))

        code, out, err = self.cli(conf, '--debug', 'list')
        self.assertEqual(0, code, err)
        self.assertIn('image-%s' % image_id, out)
        password = self.driver_endpoint['vmware_host_password']
        self.assertNotIn(password, out + err)

        code, out, err = self.cli(conf, 'show', image_id, '-f', 'value',
                                  '-c', 'template', '-c', 'state')
        self.assertEqual(0, code, err)
        self.assertEqual('image-%s ready\n' % image_id, out)

        # Not expired: the periodic task's purge keeps it.
        code, out, err = self.cli(conf, 'purge', '--expired-only',
                                  '--format', 'json')
        self.assertEqual(0, code, err)
        self.assertEqual([], json.loads(out))

        code, out, err = self.cli(conf, 'purge', '--image', image_id,
                                  '--format', 'json')
        self.assertEqual(0, code, err)
        self.assertEqual([(image_id, 'image-%s' % image_id, 'deleted')],
                         [(r['image_id'], r['template'], r['result'])
                          for r in json.loads(out)])

        code, out, err = self.cli(conf, 'list', '--format', 'json')
        self.assertEqual(0, code, err)
        self.assertEqual([], json.loads(out))
        # The volume cloned from the template is untouched.
        self.assertEqual(volume.name, self.prop(backing, 'name'))
        self.assertEqual([], self.entries())

    def test_the_wrapper_refuses_a_driver_set_up(self):
        # warm sets the driver up (after a service context, here without
        # credentials), so the wrapper makes it fail.
        conf = self.write_conf(extra=(
            '[DEFAULT]\nglance_api_servers = http://127.0.0.1:9\n'
            '[service_user]\nauth_type = none\n'))
        code, out, err = self.cli(conf, 'warm', 'some-image')
        self.assertEqual(1, code, err)
        self.assertIn('ERROR: AssertionError: the command set a driver up',
                      err)
        self.assertEqual('', out)
