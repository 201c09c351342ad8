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

"""Security: Glance's access rules, tenant data, the command's secrets.

The cached template is shared by every project of the backend, so the
cache must ask Glance, with the requesting user's context, whether the user
may see the image, every time; and the template must carry nothing of the
project that filled it.
"""

import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

from cinder import exception
from oslo_vmware import vim_util

from cinder_vmware_cache import inventory
from cinder_vmware_cache.testing import vcenter
from tests import common
from tests.reliability import harness

CLI_MODULE = 'cinder_vmware_cache.cmd.image_cache'


class GlanceAccessTestCase(harness.ReliabilityTestCase):

    def refused(self, image_id, ctx, meta):
        """A request Glance refuses: ImageNotFound and no volume."""
        volume = vcenter.new_volume(ctx, 1, harness.ASK)
        self.volumes.append(volume)
        self.assertRaises(exception.ImageNotFound, self.driver.clone_image,
                          ctx, volume, None, meta, self.images)
        self.assertIsNone(self.vops.get_backing(volume.name, volume.id))

    def template_state(self, image_id):
        [template] = [t for t in self.ready_templates()
                      if t.image_id == image_id]
        return template.key, sorted(self.extra_config(template.ref).items())

    def test_private_image_of_another_project(self):
        image_id = self.add_image(owner='project-a', visibility='private')
        volumes = [self.request(image_id)]
        before = self.template_state(image_id)
        # The manager's copy of the metadata (fetched before, or by an
        # admin); the driver must still ask Glance as project-b.
        meta = self.images.show(self.ctx, image_id)
        intruder = vcenter.user_context('project-b')
        self.refused(image_id, intruder, meta)
        self.assertEqual(before, self.template_state(image_id))
        self.assertEqual(1, self.downloads(image_id))
        self.assert_vcenter_state(volumes, [image_id])
        self.assert_clean()

    def test_image_made_private_after_it_was_cached(self):
        image_id = self.add_image(owner='project-a', visibility='public')
        other = vcenter.user_context('project-b')
        volumes = [self.request(image_id, ctx=other)]
        meta = self.images.show(other, image_id)
        self.images.set_visibility(image_id, 'private')
        self.refused(image_id, other, meta)
        # The owner and an admin still get clones of the template.
        volumes.append(self.request(image_id))
        volumes.append(self.request(image_id,
                                    ctx=vcenter.admin_context()))
        self.assertEqual(1, self.downloads(image_id))
        self.assert_vcenter_state(volumes, [image_id])
        self.assert_clean()

    def test_image_deleted_after_it_was_cached(self):
        image_id = self.add_image(owner='project-a')
        volumes = [self.request(image_id)]
        meta = self.images.show(self.ctx, image_id)
        self.images.remove(image_id)
        self.refused(image_id, self.ctx, meta)
        self.refused(image_id, vcenter.admin_context(), meta)
        self.assert_vcenter_state(volumes, [image_id])
        self.assert_clean()

    def test_cached_template_carries_no_tenant_metadata(self):
        secret = 'tenant-secret-%s' % uuid.uuid4().hex
        project = 'project-%s' % uuid.uuid4().hex[:8]
        ctx = vcenter.user_context(project)
        image_id = self.add_image(owner=project, visibility='private')
        metadata = dict(harness.ASK, note=secret)
        first = self.request(image_id, metadata=metadata, ctx=ctx)
        [template] = self.ready_templates()
        before = self.dump(template.ref)
        # Another tenant's hit does not write to the template either.
        self.images.set_visibility(image_id, 'public')
        other = self.request(image_id, metadata=metadata,
                             ctx=vcenter.user_context('project-z'))
        after = self.dump(template.ref)
        self.assertEqual(before['config'], after['config'])
        volume = first[0]
        for needle in (secret, project, 'user-' + project, volume.id,
                       volume.name, other[0].id):
            self.assertNotIn(needle, json.dumps(after), needle)
        # Only the cache's own markers and the last-use field.
        self.assertEqual(
            sorted(inventory.MARKERS),
            sorted(k for k in after['extra_config']
                   if k.startswith('cinder.')))
        self.assertEqual([inventory.LAST_USED_FIELD],
                         after['custom_field_names'])
        self.assertIn('/Project (%s_image_cache)/' % self.backend,
                      after['path'])
        self.assert_vcenter_state([first, other], [image_id])
        self.assert_clean()

    def dump(self, ref):
        """Everything a template shows, as text."""
        config = self.prop(ref, 'config')
        extra = self.extra_config(ref)
        values = self.prop(ref, 'customValue')
        fields = self.driver.session.invoke_api(
            vim_util, 'get_object_property', self.driver.session.vim,
            self.driver.session.vim.service_content.customFieldsManager,
            'field')
        names = {f.key: f.name for f in getattr(fields, 'CustomFieldDef',
                                                None) or []}
        keys = {v.key for v in getattr(values, 'CustomFieldValue', None)
                or []}
        return {'config': str(config), 'extra_config': extra,
                'name': self.prop(ref, 'name'),
                'annotation': getattr(config, 'annotation', None),
                'custom_field_names': sorted(names[k] for k in keys),
                'path': self.vops.get_inventory_path(ref)}


class CommandLineTestCase(harness.ReliabilityTestCase):
    """cinder-vmware-image-cache run as an operator would, in a process."""

    def setUp(self):
        super().setUp()
        self.password = 'Pw-%s!' % uuid.uuid4().hex
        self.dir = tempfile.mkdtemp(prefix='cvc-cli-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.log_file = os.path.join(self.dir, 'cli.log')
        endpoint = vcenter.endpoint()
        self.backend_section = {
            'volume_driver':
                'cinder_vmware_cache.driver.VMwareVcVmdkCacheDriver',
            'volume_backend_name': self.backend,
            'vmware_host_ip': endpoint['vmware_host_ip'],
            'vmware_host_port': str(endpoint['vmware_host_port']),
            'vmware_host_username': endpoint['vmware_host_username'],
            'vmware_host_password': self.password,
            'vmware_wsdl_location': endpoint['vmware_wsdl_location'] or '',
            'vmware_insecure': str(endpoint['vmware_insecure']),
            'vmware_api_retry_count': '0',
            'enable_image_cache': 'true',
        }

    def write_config(self, name, backend=None, raw_lines=(),
                     coordination_url=None):
        parser = configparser.RawConfigParser()
        parser['DEFAULT'] = {
            'enabled_backends': self.backend,
            'state_path': self.dir,
            'log_file': self.log_file,
        }
        parser['coordination'] = {
            'backend_url': coordination_url or 'file://%s' % os.path.join(
                self.dir, 'locks')}
        parser[self.backend] = (self.backend_section if backend is None
                                else backend)
        path = os.path.join(self.dir, name)
        with open(path, 'w') as conf:
            parser.write(conf)
            for line in raw_lines:
                conf.write(line + '\n')
        return path

    def start(self, config, *args):
        env = dict(os.environ, PYTHONWARNINGS='ignore')
        env['PYTHONPATH'] = os.pathsep.join(
            [harness.TOP_DIR] + [p for p in env.get('PYTHONPATH', '').split(
                os.pathsep) if p])
        return subprocess.Popen(
            [sys.executable, '-m', CLI_MODULE, '--config-file', config] +
            list(args), cwd=harness.TOP_DIR, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)

    def finish(self, proc):
        out, err = proc.communicate(timeout=120)
        out, err = out.decode(), err.decode()
        log = ''
        if os.path.exists(self.log_file):
            with open(self.log_file) as stream:
                log = stream.read()
        for where, text in (('stdout', out), ('stderr', err), ('log', log)):
            self.assertNotIn(self.password, text,
                             'the password is printed on %s' % where)
        self.log = log
        return proc.returncode, out, err

    def test_refuses_to_run_without_the_backends_credentials(self):
        runs = {}
        for missing in ('vmware_host_ip', 'vmware_host_username',
                        'vmware_host_password'):
            section = {k: v for k, v in self.backend_section.items()
                       if k != missing}
            config = self.write_config('%s.conf' % missing, section)
            runs[missing] = self.start(config, '--backend', self.backend,
                                       'list')
        for missing, proc in runs.items():
            code, out, err = self.finish(proc)
            self.assertEqual(2, code, err)
            self.assertIn(missing, err)
            self.assertEqual('', out)

    def test_list_with_debug_never_prints_the_password(self):
        image_id = self.add_image()
        volumes = [self.request(image_id)]
        config = self.write_config('cinder.conf')
        code, out, err = self.finish(self.start(
            config, '--debug', '--backend', self.backend, 'list',
            '--format', 'json'))
        self.assertEqual(0, code, err)
        listed = json.loads(out)
        self.assertEqual([(image_id, 'ready')],
                         [(r['image_id'], r['state']) for r in listed])
        # --debug did log (to the log file of cinder.conf), password-free.
        self.assertIn('DEBUG', self.log)
        self.assert_vcenter_state(volumes, [image_id])
        self.assert_clean()

    def test_errors_never_print_the_password(self):
        section = dict(self.backend_section,
                       vmware_host_port=str(common.free_port()))
        unreachable = self.start(self.write_config('closed.conf', section),
                                 '--debug', 'list')
        # A line the parser rejects, holding the password.
        broken = self.start(self.write_config(
            'broken.conf', raw_lines=['[%s]' % self.backend,
                                      'vmware_host_password %s' %
                                      self.password,
                                      '= %s' % self.password]), 'list')
        code, out, err = self.finish(unreachable)
        self.assertEqual(3, code, err)
        code, out, err = self.finish(broken)
        self.assertEqual(2, code, err)

    def test_purge_never_prints_the_lock_backends_password(self):
        # Nothing listens there: starting the coordinator fails, and the
        # error names the URL.
        section = dict(self.backend_section,
                       vmware_host_password='Vc-%s' % uuid.uuid4().hex)
        config = self.write_config(
            'redis.conf', section, coordination_url='redis://:%s@127.0.0.1:'
            '%d' % (self.password, common.free_port()))
        code, out, err = self.finish(self.start(config, '--debug', 'purge'))
        self.assertEqual(2, code, err)
        self.assertIn('ERROR: cannot start the lock coordinator', err)
        self.assertEqual('', out)
        self.assertNotIn(section['vmware_host_password'], err + self.log)
