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

"""Faults while the cache is being filled.

Expectation for every fault: the volume is still created, through the
normal download path; no clone ever reads an unfinished cache VM; what the
failed fill left behind is gone after one purge run; the next request fills
the cache normally and the one after it is a hit.

Images are streamOptimized (imported with ImportVApp and an HttpNfcLease
upload to /nfc/) or preallocated (a flat file uploaded to /folder/ on the
datastore, then attached), the two import paths of the stock driver.
"""

import socket

import ddt
import eventlet
import fixtures
from oslo_utils import units
from oslo_vmware import rw_handles

from tests.reliability import harness
from tests.vcsim import base

STREAM = 'streamOptimized'
FLAT = 'preallocated'
SMALL = harness.IMAGE_BYTES


@ddt.ddt
class FillFaultsTestCase(harness.ReliabilityTestCase):

    def fault(self, **rule):
        return base.fault_api('POST', dict(rule, count=rule.get('count', 1)))

    def check_recovery(self, image_id, failed_downloads=2, others=()):
        """The checks every fault scenario ends with.

        The first request (made by the caller) hit the fault and must have
        been served by the normal path; ``others`` are further volumes the
        scenario created.
        """
        volume, backing = self.first
        self.assertEqual(failed_downloads, self.downloads(image_id))
        self.assert_volume(volume, backing)
        self.assert_clones_from_ready_templates()
        self.assertEqual([], self.ready_templates())
        # One purge run removes whatever the failed fill left.
        self.set_policy(leftover_grace_seconds=0)
        self.cache.purge()
        volumes = [self.first] + list(others)
        self.assert_vcenter_state(volumes, [])
        # The cache works again: a fill, then a hit.
        volumes.append(self.request(image_id))
        volumes.append(self.request(image_id))
        self.assertEqual(failed_downloads + 1, self.downloads(image_id))
        self.assert_vcenter_state(volumes, [image_id])
        self.assert_clones_from_ready_templates()
        self.assert_clean()

    def test_import_vapp_fails(self):
        image_id = self.add_image(disk_type=STREAM)
        rule = self.fault(method='ImportVApp', action='fault',
                          fault='InvalidArgument')
        self.first = self.request(image_id)
        self.assertEqual(1, base.fault_api('GET', rule_id=rule['id'])['hits'])
        self.check_recovery(image_id)

    # (image disk type, image size, the fault the fill meets)
    @ddt.unpack
    @ddt.data(
        # 4 MiB: more than the socket takes at once, so the client sees the
        # failure (a small refused upload is RefusedImportTestCase's case).
        (STREAM, 4 * units.Mi, {'path_prefix': '/nfc/', 'action': 'drop'}),
        (STREAM, 4 * units.Mi, {'path_prefix': '/nfc/', 'action': 'fault',
                                'status': 503}),
        (FLAT, SMALL, {'path_prefix': '/folder/', 'http_method': 'PUT',
                       'action': 'fault', 'status': 500}),
        (FLAT, SMALL, {'path_prefix': '/folder/', 'http_method': 'PUT',
                       'action': 'drop'}),
        (FLAT, SMALL, {'method': 'MarkAsTemplate', 'action': 'fault',
                       'fault': 'InvalidState'}),
        (FLAT, SMALL, {'method': 'Rename_Task', 'action': 'task_error',
                       'fault': 'DuplicateName', 'delay_ms': 200}),
        (STREAM, SMALL, {'method': 'MarkAsTemplate', 'action': 'drop'}),
        (STREAM, SMALL, {'method': 'ImportVApp', 'action': 'drop'}),
    )
    def test_fill_fault_falls_back(self, disk_type, size, rule):
        image_id = self.add_image(size=size, disk_type=disk_type)
        self.fault(**rule)
        self.first = self.request(image_id)
        self.check_recovery(image_id)

    def test_clone_after_the_fill_loses_its_connection(self):
        """The fill is published; only the request's clone fails.

        streamOptimized: the stock import makes no clone of its own, so the
        first CloneVM_Task is the cache's clone from the new template. A
        lost connection is no evidence against the template: it is kept,
        and the next request hits.
        """
        image_id = self.add_image(disk_type=STREAM)
        self.fault(method='CloneVM_Task', action='drop')
        self.first = self.request(image_id)
        self.assert_volume(*self.first)
        self.assertEqual(2, self.downloads(image_id))
        self.cache.wait_background()
        [template] = self.ready_templates()
        volumes = [self.first, self.request(image_id)]
        self.assertEqual(2, self.downloads(image_id))
        self.assertEqual([template.key],
                         [t.key for t in self.ready_templates()])
        self.assert_vcenter_state(volumes, [image_id])
        self.assert_clones_from_ready_templates()
        self.assert_clean()

    def test_last_use_fails_after_the_fill_published(self):
        """The fill's SetField (its first use) fails once it has published.

        The rename that publishes comes before the last-use record, so the
        copy is complete and findable: it stays published, the volume is a
        clone of it, the purge keeps it, and the next request hits with no
        new download. (Its last use may stay unrecorded for up to
        policy.use_record_seconds, as any use; its age then counts from
        its creation, which is when the fill tried to record it.)
        """
        image_id = self.add_image(disk_type=FLAT)
        rule = self.fault(method='SetField', action='fault',
                          fault='InvalidArgument')
        first = self.request(image_id)
        self.assertEqual(1, base.fault_api('GET', rule_id=rule['id'])['hits'])
        self.assertEqual(1, self.downloads(image_id))
        self.cache.wait_background()
        [template] = self.ready_templates()
        self.assertEqual(inventory_name(image_id), template.name)
        self.set_policy(leftover_grace_seconds=0)
        self.assertEqual([], self.cache.purge())
        second = self.request(image_id)
        self.cache.wait_background()
        self.assertEqual(1, self.downloads(image_id))
        self.assertEqual([template.key],
                         [t.key for t in self.ready_templates()])
        names = (first[0].name, second[0].name)
        self.assertEqual([(name, template.name, True) for name in names],
                         [c for c in self.clones if c[0] in names])
        self.assertEqual(sorted([first[1].value, second[1].value,
                                 template.key]), sorted(self.new_vms()))
        for volume, backing in (first, second):
            self.assert_volume(volume, backing)
        self.assert_clones_from_ready_templates()
        self.assert_clean()

    def test_glance_stream_breaks_during_import(self):
        image_id = self.add_image(disk_type=STREAM)
        self.images.break_after = 5
        self.first = self.request(image_id)
        self.check_recovery(image_id)

    def test_import_fails_and_its_cleanup_fails_too(self):
        """The failed fill cannot remove its VM; the purge does."""
        image_id = self.add_image(disk_type=STREAM)
        self.fault(method='MarkAsTemplate', action='fault',
                   fault='InvalidState')
        self.fault(method='Destroy_Task', action='fault',
                   fault='TaskInProgress')
        self.first = self.request(image_id)
        # The rename that publishes comes after MarkAsTemplate.
        [leftover] = [e for e in self.entries() if not e.ready]
        self.assertTrue(leftover.name.startswith(
            inventory_name(image_id) + '.partial-'), leftover.name)
        self.check_recovery(image_id)

    def test_glance_stream_breaks_during_flat_upload(self):
        """A broken stream stalls the fill until vCenter drops the upload.

        oslo.vmware's FileWriteHandle.close() waits for the HTTP answer to
        a PUT whose declared Content-Length was never sent, with no
        timeout: the fill hangs, holding the image's lock, until vCenter
        closes the connection (the simulator never does; the test closes
        it, as vCenter's idle timeout would). Meanwhile other requests for
        the image wait image_cache_wait_timeout, then take the normal path.
        """
        uploads = record_uploads(self)
        self.set_policy(wait_timeout=2)
        image_id = self.add_image(disk_type=FLAT)
        self.images.break_after = 3
        stuck = eventlet.spawn(self.request, image_id)
        self.addCleanup(stuck.kill)
        self.addCleanup(close_uploads, uploads)
        deadline = eventlet.Timeout(30)
        try:
            while not uploads:
                eventlet.sleep(0.1)
            eventlet.sleep(1)
        finally:
            deadline.cancel()
        self.assertFalse(stuck.dead, 'the fill did not stall')
        # Another request for the image is not held longer than the wait.
        started = eventlet.hubs.get_hub().clock()
        waiter = self.request(image_id)
        waited = eventlet.hubs.get_hub().clock() - started
        self.assertLess(waited, 15)
        self.assert_volume(*waiter)
        self.assertFalse(stuck.dead, 'the fill did not stall')
        # vCenter gives up on the incomplete upload.
        close_uploads(uploads)
        with eventlet.Timeout(30):
            self.first = stuck.wait()
        # Downloads: the broken fill, the waiter, the stalled request.
        self.assertEqual(3, self.downloads(image_id))
        self.check_recovery(image_id, failed_downloads=3, others=[waiter])


def inventory_name(image_id):
    return 'image-%s' % image_id


def record_uploads(test):
    """The datastore uploads (oslo.vmware write handles) a test makes."""
    uploads = []

    class RecordingWriteHandle(rw_handles.FileWriteHandle):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            uploads.append(self)
    test.useFixture(fixtures.MonkeyPatch(
        'oslo_vmware.rw_handles.FileWriteHandle', RecordingWriteHandle))
    return uploads


def close_uploads(uploads):
    """Close the connections of datastore uploads, as vCenter would."""
    for upload in uploads:
        sock = getattr(upload._conn, 'sock', None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class RefusedImportTestCase(harness.ReliabilityTestCase):
    """An upload vCenter refused never becomes a template.

    The HttpNfcLease upload of a streamOptimized image (1 MiB) is answered
    with HTTP 503. oslo.vmware's VmdkWriteHandle never reads the answer and
    the body fits in the socket buffer, so the import "succeeds". Regression
    test: the fill used to publish that empty VM as a ready template; it now
    checks that the imported disk holds data before publishing, and the
    volume is created by the normal path.
    """

    def test_refused_nfc_upload_is_not_published(self):
        image_id = self.add_image(disk_type=STREAM)
        base.fault_api('POST', {'path_prefix': '/nfc/', 'action': 'fault',
                                'status': 503, 'count': 1})
        volume, backing = self.request(image_id)
        sizes = {path: size for path, size in
                 harness.datastore_files(self.session).items()
                 if 'image-%s' % image_id in path and
                 path.endswith('.vmdk')}
        self.assertEqual([], self.ready_templates(),
                         'template published from a refused upload; its '
                         'disk files on the datastore (size None: empty): '
                         '%s' % sizes)
