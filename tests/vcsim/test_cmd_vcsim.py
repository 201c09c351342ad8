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
import uuid

import fixtures
from oslo_utils import units
from oslo_vmware import vim_util

from cinder_vmware_cache.cmd import image_cache
from tests import common
from tests.unit import test_cmd_image_cache as cli_tests


class SimulatorTestCase(common.TestCase):
    """The real command against VCENTER_HOST (the simulator or a vCenter).

    The cache is filled through the driver in this process; the command
    runs in a subprocess with a cinder.conf for the same backend.
    """

    def setUp(self):
        super().setUp()
        # Imported here: the harness needs nothing without a vCenter.
        from cinder_vmware_cache.testing import vcenter
        self.vcenter = vcenter
        self.endpoint = vcenter.required_endpoint()

    def write_conf(self, backend):
        confdir = self.useFixture(cli_tests.ConfigDir())
        endpoint = self.endpoint
        values = {
            'volume_driver': image_cache.DRIVER_PATH,
            'volume_backend_name': backend,
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
        return confdir.cinder_conf(enabled=backend,
                                   sections={backend: values})

    def cli(self, conf, backend, *args):
        return cli_tests.run_cli(
            ['--config-file', conf, '--backend', backend] + list(args))

    def test_list_show_purge(self):
        from cinder_vmware_cache.testing import images
        vcenter = self.vcenter
        # A backend of its own: other runs on the same vCenter are safe.
        backend = 'cli%s' % uuid.uuid4().hex[:6]
        drv = vcenter.make_driver(backend, enable_image_cache=True)
        cache = drv.image_cache
        self.addCleanup(cache.stop)
        svc = images.LocalImageService()
        image_id = svc.add(images.make_vmdk(
            self.useFixture(fixtures.TempDir()).path, units.Mi),
            virtual_size=units.Mi)
        self.addCleanup(cache.purge, expired_only=False, image_id=image_id)
        ctx = vcenter.admin_context()
        volume = vcenter.new_volume(ctx, 1, {'use_image_cache': 'true'})
        self.assertEqual((None, True), drv.clone_image(
            ctx, volume, None, svc.show(ctx, image_id), svc))
        backing = drv.volumeops.get_backing(volume.name, volume.id)
        self.assertIsNotNone(backing)
        self.addCleanup(drv.volumeops.delete_backing, backing)
        conf = self.write_conf(backend)

        code, out, err = self.cli(conf, backend, 'list', '--format', 'json')
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

        code, out, err = self.cli(conf, backend, '--debug', 'list')
        self.assertEqual(0, code, err)
        self.assertIn('image-%s' % image_id, out)
        password = self.endpoint['vmware_host_password']
        self.assertNotIn(password, out + err)

        code, out, err = self.cli(conf, backend, 'show', image_id)
        self.assertEqual(0, code, err)
        self.assertIn('image-%s' % image_id, out)

        # Not expired: the periodic task's purge keeps it.
        code, out, err = self.cli(conf, backend, 'purge', '--expired-only',
                                  '--format', 'json')
        self.assertEqual(0, code, err)
        self.assertEqual([], json.loads(out)['deleted'])

        code, out, err = self.cli(conf, backend, 'purge', '--image',
                                  image_id, '--format', 'json')
        self.assertEqual(0, code, err)
        result = json.loads(out)
        self.assertEqual([image_id],
                         [r['image_id'] for r in result['deleted']])
        self.assertEqual([], result['failed'])

        code, out, err = self.cli(conf, backend, 'list', '--format', 'json')
        self.assertEqual(0, code, err)
        self.assertEqual([], json.loads(out))
        # The volume cloned from the template is untouched.
        self.assertEqual(volume.name, drv.session.invoke_api(
            vim_util, 'get_object_property', drv.session.vim, backing,
            'name'))
