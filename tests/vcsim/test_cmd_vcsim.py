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


class CommandTestCase(base.SimulatorTestCase):
    """The real command against VCENTER_HOST (the simulator or a vCenter).

    The cache is filled through the driver in this process; the command
    runs in a subprocess with a cinder.conf for the same backend.
    """

    def write_conf(self):
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
            enabled=self.backend, sections={self.backend: values})

    def cli(self, conf, *args):
        return common.run_cli(
            ['--config-file', conf, '--backend', self.backend] + list(args))

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
        self.assertTrue(record['datastore'])
        self.assertTrue(record['created_at'].endswith('Z'))
        self.assertTrue(record['last_used'].endswith('Z'))

        code, out, err = self.cli(conf, '--debug', 'list')
        self.assertEqual(0, code, err)
        self.assertIn('image-%s' % image_id, out)
        password = self.driver_endpoint['vmware_host_password']
        self.assertNotIn(password, out + err)

        code, out, err = self.cli(conf, 'show', image_id)
        self.assertEqual(0, code, err)
        self.assertIn('image-%s' % image_id, out)

        # Not expired: the periodic task's purge keeps it.
        code, out, err = self.cli(conf, 'purge', '--expired-only',
                                  '--format', 'json')
        self.assertEqual(0, code, err)
        self.assertEqual([], json.loads(out)['deleted'])

        code, out, err = self.cli(conf, 'purge', '--image', image_id,
                                  '--format', 'json')
        self.assertEqual(0, code, err)
        result = json.loads(out)
        self.assertEqual([image_id],
                         [r['image_id'] for r in result['deleted']])
        self.assertEqual([], result['failed'])

        code, out, err = self.cli(conf, 'list', '--format', 'json')
        self.assertEqual(0, code, err)
        self.assertEqual([], json.loads(out))
        # The volume cloned from the template is untouched.
        self.assertEqual(volume.name, self.prop(backing, 'name'))
        self.assertEqual([], self.entries())
