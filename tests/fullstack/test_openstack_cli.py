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

"""The image cache as users meet it: the ``openstack`` CLI and pool reports.

One stack (tests/fullstack/harness.py: RabbitMQ, glance-api, cinder-api,
cinder-scheduler with our host manager, cinder-volume with our driver on
the vCenter of VCENTER_*) serves both tests; each test uses new projects
and leaves the cache folder empty. Without a vCenter, or without the
commands the stack needs, the tests fail and say why.

The cache options are short so that expiry happens during the test:
``image_cache_age_seconds`` (CVC_FULLSTACK_CACHE_AGE, default 40; it must
cover the part of the scenario between the last clone and the check that
the template outlived its volumes) and ``image_cache_purge_interval`` 2;
``image_cache_max_size_gb`` is 1, so a larger image shows why it was not
cached. A notification listener on the stack's RabbitMQ sees what
operators' monitoring sees.
"""

from concurrent import futures
import datetime
import os
import sys

from testtools import content

from cinder_vmware_cache.testing import endpoint
from tests import common
from tests.fullstack import harness
from tests.fullstack import notifications
from tests.fullstack import vsphere

CACHE_AGE = int(os.environ.get('CVC_FULLSTACK_CACHE_AGE', '40'))
PURGE_INTERVAL = 2
STATS_INTERVAL = 3
IMAGE_BYTES = 1024 * 1024
GIB = 1024 ** 3
ASK = 'use_image_cache=true'
RESULT = 'image_cache_result'


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class OpenStackCliTest(common.TestCase):

    stack = None
    settings = None
    vc = None
    listener = None
    keep_logs = bool(os.environ.get('CVC_FULLSTACK_KEEP'))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        settings = endpoint.from_env()
        if not settings:
            raise RuntimeError('no vCenter: VCENTER_HOST is unset; fix: run '
                               'the tests with tools/test.sh (it starts the '
                               'simulator), or set VCENTER_HOST')
        missing = harness.missing_tools()
        if missing:
            raise RuntimeError('cannot start the OpenStack services here; '
                               'missing: %s; fix: run tools/test.sh as root '
                               '(it installs them)' % ', '.join(missing))
        cls.settings = settings
        cls.vc = vsphere.VCenter(settings)
        # One retry: a start that fails (a service that exits, a wait that
        # runs out) is reported, and a second stack in new directories on
        # new ports decides.
        for attempt in (1, 2):
            try:
                cls._start_stack(last=attempt == 2)
                break
            except harness.StackError as exc:
                if attempt == 2:
                    raise
                sys.stderr.write('\nfullstack: %s; starting a new stack '
                                 'once more\n' % exc.args[0].splitlines()[0])
        cls.image_file = cls.stack.make_vmdk(IMAGE_BYTES)
        sys.stderr.write('\nfullstack: services up in %.1fs under %s\n' % (
            cls.stack.startup_seconds, cls.stack.top))

    @classmethod
    def _start_stack(cls, last):
        cls.stack = harness.Stack(cls.settings, cache_options={
            'image_cache_age_seconds': CACHE_AGE,
            'image_cache_purge_interval': PURGE_INTERVAL,
            'image_cache_max_size_gb': 1,
        }, stats_interval=STATS_INTERVAL)
        try:
            cls.stack.start()
            cls.listener = notifications.Listener(cls.stack.transport_url)
            cls.listener.start()
        except Exception as exc:
            report = cls.stack.log_report()
            cls._tear_down_stack(failed=True, close_vcenter=last)
            # The cause first and last: a reader of the tail sees it too.
            raise harness.StackError(
                'the stack did not start: %s\n%s\nthe stack did not start: '
                '%s' % (exc, report, exc)) from exc

    @classmethod
    def tearDownClass(cls):
        cls._tear_down_stack()
        super().tearDownClass()

    @classmethod
    def _tear_down_stack(cls, failed=False, close_vcenter=True):
        listener, cls.listener = cls.listener, None
        if listener is not None:
            listener.stop()
        stack, cls.stack = cls.stack, None
        if stack is not None:
            stack.stop()
            projects = [c.project for c in stack.clis.values()]
            projects.append(vsphere.cache_project(stack.backend))
            try:
                cls.vc.remove_projects(projects)
            finally:
                if cls.keep_logs or failed:
                    sys.stderr.write('fullstack: logs kept in %s\n' %
                                     stack.logs)
                else:
                    stack.remove()
        if close_vcenter and cls.vc is not None:
            cls.vc.close()
            cls.vc = None

    def setUp(self):
        super().setUp()
        self.addOnException(self._attach_logs)
        self.stack.check_services()

    def _attach_logs(self, exc_info):
        type(self).keep_logs = True
        self.addDetail('service-logs', content.text_content(
            self.stack.log_report()))
        self.addDetail('cli-transcript', content.text_content(
            harness.tail(self.stack.transcript, 400)))

    # ---- steps ------------------------------------------------------------
    def upload_image(self, cli, name):
        image = cli.openstack(
            'image', 'create', '--disk-format', 'vmdk', '--container-format',
            'bare', '--private', '--property',
            'vmware_disktype=streamOptimized', '--property',
            'vmware_adaptertype=lsiLogic', '--file', self.image_file, name)
        self.assertEqual('active', image['status'])
        self.assertEqual(cli.project, image['owner'])
        return image['id']

    def create_volume(self, cli, name, image_id=None, cached=False, size=1):
        args = ['volume', 'create', '--size', str(size)]
        if image_id:
            args += ['--image', image_id]
        if cached:
            args += ['--property', ASK]
        volume = cli.openstack(*(args + [name]))
        return volume['id']

    def statuses(self, cli):
        return {v['id']: v['status']
                for v in cli.get('/volumes/detail')['volumes']}

    def wait_for_status(self, cli, volume_ids, status, timeout=120):
        def check():
            self.stack.check_services()
            current = self.statuses(cli)
            states = {v: current.get(v) for v in volume_ids}
            if status != 'error':
                failed = [v for v, s in states.items() if s == 'error']
                self.assertEqual([], failed, 'volumes went to error')
            return all(s == status for s in states.values())
        harness.wait_for(check, timeout, 'volumes %s to be %s' % (
            ', '.join(volume_ids), status), interval=1)

    def wait_deleted(self, cli, volume_ids, timeout=120):
        harness.wait_for(
            lambda: not set(volume_ids) & set(self.statuses(cli)), timeout,
            'volumes %s to be deleted' % ', '.join(volume_ids), interval=1)

    def pool_from_cli(self):
        """Our pool's capabilities as ``volume backend pool list`` shows."""
        pools = self.stack.admin.openstack('volume', 'backend', 'pool',
                                           'list', '--long')
        found = {p['Name']: p['Capabilities'] for p in pools}
        self.assertIn(self.stack.pool_name(), found)
        return found[self.stack.pool_name()]

    def wait_for_reported(self, allocated, extra):
        """Wait for the pool to report these numbers, then read the CLI."""
        self.stack.wait_for_pool(
            lambda caps: (caps.get('allocated_capacity_gb') == allocated and
                          caps.get('extra_provisioned_capacity_gb') == extra),
            'allocated_capacity_gb %s and extra_provisioned_capacity_gb %s '
            'in the pool report' % (allocated, extra),
            timeout=max(30, 4 * STATS_INTERVAL))
        caps = self.pool_from_cli()
        self.assertEqual(allocated, caps['allocated_capacity_gb'])
        self.assertEqual(extra, caps['extra_provisioned_capacity_gb'])
        # Our host manager's pool report includes the cache.
        self.assertEqual(allocated + extra, caps['provisioned_capacity_gb'])
        return caps

    def probe_scheduler(self, cli):
        """Schedule a blank volume; the scheduler's (allocated, provisioned).

        The VMDK driver creates blank volumes lazily, so this costs vCenter
        nothing. The probe is deleted again.
        """
        probe = self.create_volume(cli, 'probe')
        self.wait_for_status(cli, [probe], 'available')
        view = harness.wait_for(lambda: self.stack.scheduler_view(probe), 10,
                                'the scheduler log of volume %s' % probe)
        cli.openstack('volume', 'delete', probe, json_output=False)
        self.wait_deleted(cli, [probe])
        return view

    def result_of(self, cli, volume_id):
        """What ``openstack volume show`` says the cache did."""
        properties = cli.openstack('volume', 'show', volume_id)['properties']
        return properties.get(RESULT)

    def templates_of(self, image_id):
        return [t for t in self.vc.templates(self.stack.backend)
                if t.name == 'image-%s' % image_id]

    # ---- scenarios --------------------------------------------------------
    def test_cached_volumes_share_one_template_until_expiry(self):
        stack = self.stack
        alice = stack.user('alice', harness.new_project_id())
        self.assertEqual([], self.vc.templates(stack.backend),
                         'the cache folder must be empty at the start')
        rows = []
        before = self.wait_for_reported(allocated=0, extra=0)
        rows.append(('before', before, None))

        image = self.upload_image(alice, 'fullstack-image')
        # All four requests at once: the three cached ones race for the fill.
        with futures.ThreadPoolExecutor(4) as pool:
            jobs = [pool.submit(self.create_volume, alice, 'cached-%d' % i,
                                image, True) for i in range(3)]
            jobs.append(pool.submit(self.create_volume, alice, 'plain',
                                    image))
            volumes = [job.result() for job in jobs]
        cached, plain = volumes[:3], volumes[3]
        self.wait_for_status(alice, volumes, 'available')
        listed = {v['ID']: v['Properties'] for v in alice.openstack(
            'volume', 'list', '--long')}
        self.assertEqual({'true'}, {listed[v]['use_image_cache']
                                    for v in cached})
        # One request filled the cache; the others waited and cloned.
        self.assertEqual(['filled', 'hit', 'hit'],
                         sorted(listed[v][RESULT] for v in cached))
        self.assertEqual({}, listed[plain])
        seen = self.listener.wait_for(image, ['miss', 'hit', 'hit'],
                                      ordered=False)
        self.assertEqual(set(cached), {p['volume_id'] for _, p in seen})

        # Exactly one template, in the backend's cache folder.
        templates = self.vc.templates(stack.backend)
        self.assertEqual(['image-%s' % image], [t.name for t in templates])
        template = templates[0]
        self.assertTrue(template.template)
        # Four distinct backings, none of them the template or its disk.
        backings = {vm.instance_uuid: vm for vm in self.vc.vms(alice.project)}
        self.assertEqual(sorted(volumes), sorted(backings))
        for vol_id, vm in backings.items():
            self.assertEqual('volume-%s' % vol_id, vm.name)
            self.assertFalse(vm.template)
            self.assertEqual(1, len(vm.disks), vm)
        refs = [vm.ref for vm in backings.values()]
        disks = [vm.disks[0] for vm in backings.values()]
        self.assertEqual(4, len(set(refs)))
        self.assertEqual(4, len(set(disks)))
        self.assertNotIn(template.ref, refs)
        self.assertFalse(set(template.disks) & set(disks))
        # Glance served the image twice: the fill and the uncached volume.
        self.assertEqual(2, stack.glance_downloads(image))

        # The pool report: 4 GiB of volumes, 1 GiB of cache; the scheduler
        # counts both as provisioned.
        loaded = self.wait_for_reported(allocated=4, extra=1)
        view = self.probe_scheduler(alice)
        self.assertEqual((4, 5), view)
        rows.append(('4 volumes + template', loaded, view))

        # Deleting the volumes leaves the template until it expires.
        alice.openstack('volume', 'delete', *volumes, json_output=False)
        self.wait_deleted(alice, volumes)
        self.assertEqual([], self.vc.vms(alice.project))
        kept = self.vc.templates(stack.backend)
        self.assertEqual([template.ref], [t.ref for t in kept])
        last_used = kept[0].last_used
        self.assertIsNotNone(last_used)
        expires = last_used + datetime.timedelta(seconds=CACHE_AGE)
        checked_at = utcnow()
        self.assertLess(checked_at, expires,
                        'the scenario took longer than the cache age; raise '
                        'CVC_FULLSTACK_CACHE_AGE')
        deleted = self.wait_for_reported(allocated=0, extra=1)
        rows.append(('volumes deleted', deleted, None))

        gone_at = harness.wait_for(
            lambda: not self.vc.templates(stack.backend) and utcnow(),
            CACHE_AGE + PURGE_INTERVAL + 60, 'the template to expire',
            interval=1)
        self.assertGreaterEqual(gone_at, expires)
        events = self.listener.wait_for(image, ['miss', 'hit', 'hit',
                                                'expire'], ordered=False)
        self.assertEqual({'reason': 'expired', 'trigger': 'periodic'}, {
            k: v for k, v in events[-1][1].items()
            if k in ('reason', 'trigger')})
        expired = self.wait_for_reported(allocated=0, extra=0)
        view = self.probe_scheduler(alice)
        self.assertEqual((0, 0), view)
        rows.append(('template expired', expired, view))
        self.report(rows, checked_at - last_used, gone_at - last_used)

    def test_user_without_image_access_gets_no_cached_volume(self):
        stack = self.stack
        alice = stack.user('alice', harness.new_project_id())
        bob = stack.user('bob', harness.new_project_id())
        image = self.upload_image(alice, 'alice-private-image')
        own = self.create_volume(alice, 'alice-cached', image, True)
        self.wait_for_status(alice, [own], 'available')
        [template] = self.templates_of(image)
        vms = self.vc.all_vms()
        downloads = stack.glance_downloads(image)

        # 1. The openstack CLI cannot even resolve bob's --image.
        result = bob.openstack(
            'volume', 'create', '--size', '1', '--image', image,
            '--property', ASK, 'bob-volume', check=False, json_output=False)
        self.assertNotEqual(0, result.returncode)
        self.assertIn('No Image found for %s' % image, result.stderr)

        # 2. Asked directly (cinderclient, no client-side lookup), cinder-api
        # asks Glance as bob and refuses.
        result = bob.cinder('create', '--image-id', image, '--metadata', ASK,
                            '--name', 'bob-volume', '1', check=False)
        self.assertNotEqual(0, result.returncode)
        self.assertIn('Invalid image identifier or unable to access '
                      'requested image. (HTTP 400)', result.stderr)
        self.assertEqual({}, self.statuses(bob))

        # 3. Access lost after cinder-api accepted the request: the image is
        # community (visible to bob) when he asks, private again by the time
        # cinder-volume, frozen meanwhile, gets to it.
        alice.openstack('image', 'set', '--community', image,
                        json_output=False)
        with stack.paused('cinder-volume'):
            late = self.create_volume(bob, 'bob-late', image, True)
            alice.openstack('image', 'set', '--private', image,
                            json_output=False)
        self.wait_for_status(bob, [late], 'error')

        # Nothing was built: no VM anywhere, no download, the template
        # untouched (not even its last use).
        self.assertEqual(vms, self.vc.all_vms())
        self.assertEqual([], self.vc.vms(bob.project))
        self.assertEqual(downloads, stack.glance_downloads(image))
        [after] = self.templates_of(image)
        self.assertEqual((template.ref, template.last_used),
                         (after.ref, after.last_used))

        # Clean up through the operator command (it shares cinder-volume's
        # locks); the periodic purge may have been first.
        bob.openstack('volume', 'delete', late, json_output=False)
        alice.openstack('volume', 'delete', own, json_output=False)
        self.wait_deleted(bob, [late])
        self.wait_deleted(alice, [own])
        purge = stack.image_cache_command('purge', '--image', image,
                                          '--format', 'json')
        self.assertEqual([], [r for r in purge.json()
                              if r['result'] != 'deleted'])
        self.assertEqual([], self.templates_of(image))

    def test_volume_show_says_why_the_cache_was_not_used(self):
        alice = self.stack.user('alice', harness.new_project_id())
        big = alice.openstack(
            'image', 'create', '--disk-format', 'vmdk', '--container-format',
            'bare', '--private', '--property',
            'vmware_disktype=streamOptimized', '--file',
            self.stack.make_empty_vmdk(GIB + IMAGE_BYTES), 'big-image')
        self.assertGreater(big['virtual_size'], GIB)
        volume = self.create_volume(alice, 'big', big['id'], True, size=2)
        self.wait_for_status(alice, [volume], 'available')
        self.assertEqual('not used: image too large',
                         self.result_of(alice, volume))
        self.assertEqual([], self.templates_of(big['id']))
        self.assertEqual([], self.listener.of_image(big['id']))
        alice.openstack('volume', 'delete', volume, json_output=False)
        self.wait_deleted(alice, [volume])

    def test_warmed_image_is_a_hit_without_download(self):
        alice = self.stack.user('alice', harness.new_project_id())
        image = self.upload_image(alice, 'golden-image')
        warm = self.stack.image_cache_command('warm', image, '-f', 'json')
        self.assertEqual([('filled', 'ready')],
                         [(c['result'], c['state']) for c in warm.json()])
        self.assertEqual(1, self.stack.glance_downloads(image))
        again = self.stack.image_cache_command('warm', image, '-f', 'json')
        self.assertEqual(['already cached'],
                         [c['result'] for c in again.json()])

        volume = self.create_volume(alice, 'from-warm', image, True)
        self.wait_for_status(alice, [volume], 'available')
        self.assertEqual('hit', self.result_of(alice, volume))
        self.assertEqual(1, self.stack.glance_downloads(image))
        (miss, filled), (hit, served) = self.listener.wait_for(
            image, ['miss', 'hit'])
        self.assertEqual('command', filled['trigger'])
        self.assertEqual((volume, 'request'),
                         (served['volume_id'], served['trigger']))
        self.assertEqual(filled['template'], served['template'])

        alice.openstack('volume', 'delete', volume, json_output=False)
        self.wait_deleted(alice, [volume])
        self.stack.image_cache_command('purge', '--image', image)
        self.assertEqual([], self.templates_of(image))

    def test_template_of_an_image_deleted_in_glance_is_purged(self):
        alice = self.stack.user('alice', harness.new_project_id())
        image = self.upload_image(alice, 'short-lived-image')
        volume = self.create_volume(alice, 'cached', image, True)
        self.wait_for_status(alice, [volume], 'available')
        [template] = self.templates_of(image)
        alice.openstack('volume', 'delete', volume, json_output=False)
        self.wait_deleted(alice, [volume])
        self.assertEqual([template.ref],
                         [t.ref for t in self.templates_of(image)])

        alice.openstack('image', 'delete', image, json_output=False)
        deleted_at = utcnow()
        gone_at = harness.wait_for(
            lambda: not self.templates_of(image) and utcnow(),
            PURGE_INTERVAL + 30, 'the template of the deleted image to go',
            interval=0.5)
        # Gone by the image check, long before it would have expired.
        self.assertLess(gone_at, template.last_used + datetime.timedelta(
            seconds=CACHE_AGE), 'raise CVC_FULLSTACK_CACHE_AGE')
        events = self.listener.wait_for(image, ['miss', 'purge'])
        self.assertEqual(('image deleted', 'periodic'),
                         (events[1][1]['reason'], events[1][1]['trigger']))
        self.addDetail('deleted-image', content.text_content(
            'template gone %.1fs after the image was deleted' %
            (gone_at - deleted_at).total_seconds()))

    # ---- report -----------------------------------------------------------
    def report(self, rows, kept, lifetime):
        row = '%-22s %8s %8s %10s %8s %12s %12s'
        lines = [row % ('pool ' + self.stack.pool_name(), 'total', 'free',
                        'allocated', 'extra', 'provisioned', 'sched.prov.')]
        for label, caps, view in rows:
            lines.append(row % (
                label[:22], caps.get('total_capacity_gb'),
                caps.get('free_capacity_gb'),
                caps.get('allocated_capacity_gb'),
                caps.get('extra_provisioned_capacity_gb'),
                caps.get('provisioned_capacity_gb'),
                '-' if view is None else view[1]))
        lines.append('template still there %.0fs after its last use (its '
                     'volumes deleted), gone after %.0fs '
                     '(image_cache_age_seconds %d, purge interval %d)' % (
                         kept.total_seconds(), lifetime.total_seconds(),
                         CACHE_AGE, PURGE_INTERVAL))
        text = '\n'.join(lines)
        self.addDetail('pool-capacities', content.text_content(text))
        sys.stderr.write('\n%s\n' % text)
