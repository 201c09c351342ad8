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

"""The purge's retire protocol against clones of two processes.

Hits take no lock; a deletion retires a copy (renames it), waits
retire_grace_seconds, then destroys it only when no running clone task
reads it (README: How it works). Here two cinder-volume processes
(tests/reliability/worker.py) create 20 volumes of one image while this
process runs the operator purge, which deletes every copy, every second;
all three share one tooz backend, redis or etcd, as in test_cluster.

The simulator's data-rate model makes each clone task last seconds, longer
than the retire grace. A simulator clone survives the deletion of its
source, so "no failed volume" alone would not show a broken protocol: the
test reads vCenter's task records (TaskManager) and checks that no cache
copy was destroyed before every clone task reading it had completed.
"""

import statistics

from cinder import coordination
import eventlet
from oslo_config import cfg
from oslo_vmware import vim_util
from testtools import content

from cinder_vmware_cache import request as cache_request
from tests.reliability import harness
from tests.vcsim import base

PER_PROCESS = 10
# The protocol's timings, shortened (known < clone start < retire grace),
# in the three processes alike.
TIMINGS = {'known_copy_seconds': 0.3, 'clone_start_seconds': 1.0,
           'retire_grace_seconds': 2.0}
# MiB/s of every disk copy: a clone of the 1 MiB template takes about 4 s,
# twice the retire grace, so a copy retired while a clone reads it is
# mostly still read when the grace is over.
COPY_MBPS = 0.25
# Seconds between the requests of a process; the second starts half-way.
SPACING = 1.5
PURGE_EVERY = 1.0
# Imported with ImportVApp and no clone of the stock import's own, so a
# fill holds the image's lock (which the purge does not wait for) briefly.
DISK_TYPE = 'streamOptimized'
RENAME_TASK = 'VirtualMachine.rename'


class PurgeRacingClonesTests(harness.LockServerTests):
    """The tests; a subclass per tooz backend names its lock server."""

    def share_lock_server(self):
        """This process's coordinator on the workers' tooz backend."""
        old = cfg.CONF.coordination.backend_url

        def restart(url):
            coordination.COORDINATOR.stop()
            cfg.CONF.set_override('backend_url', url, group='coordination')
            coordination.COORDINATOR.start()
        restart(self.lock_server.url)
        self.addCleanup(restart, old)

    def slow_copies(self):
        """Every disk copy at COPY_MBPS; the rates before are restored."""
        rates = ('local_copy_mbps', 'xds_copy_mbps')
        before = base.rates_api()
        base.rates_api({k: COPY_MBPS for k in rates})
        self.addCleanup(base.rates_api, {k: before[k] for k in rates})

    def worker(self, image_id, offset):
        worker = harness.Worker({
            'mode': 'create', 'backend': self.backend,
            'lock_url': self.lock_server.url,
            'images': [{'id': image_id, 'path': self.image_paths[image_id],
                        'disk_type': DISK_TYPE,
                        'size': harness.IMAGE_BYTES}],
            'count': PER_PROCESS, 'metadata': harness.ASK,
            'wait_for_go': True, 'spacing': SPACING, 'offset': offset,
            'policy': TIMINGS,
            'overrides': {'vmware_api_retry_count': 0}})
        self.addCleanup(worker.close)
        return worker

    def test_purge_every_second_racing_20_clones_in_two_processes(self):
        """Expect 0 failed volumes and no copy destroyed under a clone."""
        self.share_lock_server()
        self.set_policy(**TIMINGS)
        self.slow_copies()
        image_id = self.add_image(disk_type=DISK_TYPE)
        workers = [self.worker(image_id, 0),
                   self.worker(image_id, SPACING / 2)]
        for worker in workers:
            self.assertEqual('ready', worker.read_event()['event'],
                             worker.log_tail())
        tasks = harness.TaskRecorder(self.session)
        tasks.start()
        self.addCleanup(tasks.stop)

        deleted, purge_errors, running = [], [], [True]

        def purger():
            while running[0]:
                try:
                    deleted.extend(self.cache.purge(expired_only=False))
                except Exception as exc:
                    purge_errors.append(repr(exc))
                eventlet.sleep(PURGE_EVERY)
        purging = eventlet.spawn(purger)
        self.addCleanup(purging.kill)
        for worker in workers:
            worker.go()
        reports = [worker.read_event() for worker in workers]
        running[0] = False
        purging.wait()
        tasks.stop()
        records = tasks.records()

        volumes = [r for report in reports for r in report['volumes']]
        for record in volumes:
            self.volumes.append(harness.WorkerVolume(record))
        copies = {e.key for e in deleted}

        # No copy was destroyed before every clone reading it completed.
        self.assertEqual([], [_violation(records, destroy, clone)
                              for destroy, clone in
                              harness.destroyed_while_read(records)],
                         _timeline(records, copies))

        # Every volume created: by a clone of a copy, or by the normal path.
        self.assertEqual([], [r['error'] for r in volumes if r['error']])
        self.assertEqual(2 * PER_PROCESS, len({r['id'] for r in volumes}))
        self.assertEqual([], [r['id'] for r in volumes if not r['backing']])
        self.assertEqual([], purge_errors)

        # The purge did delete copies clones had read, during the burst
        # (before the last clone task completed); a copy a clone still
        # read was left retired for a later run.
        clones = [r for r in records
                  if r.description_id in harness.CLONE_TASKS]
        destroys = [r for r in records
                    if r.description_id == harness.DESTROY_TASK]
        read = {c.entity for c in clones}
        checked = [d for d in destroys if d.entity in copies & read]
        last_clone = max(c.complete for c in clones)
        during = [d for d in checked if d.start < last_clone]
        self.assertGreaterEqual(len(during), 2, _timeline(records, copies))
        # Clones lasted seconds, as the data-rate model makes them.
        self.assertGreater(statistics.median(
            (c.complete - c.start).total_seconds() for c in clones), 1.5)

        self.outcome = {
            'deleted during the burst': len(during),
            'deleted in all': len(deleted),
            'destroy tasks': len(destroys),
            'destroys of read copies checked': len(checked),
            'clone tasks': len(clones),
            'clone tasks of cache copies': len([
                c for c in clones if c.entity in copies]),
            'hits': _count(volumes, cache_request.RESULT_HIT),
            'fills': _count(volumes, cache_request.RESULT_FILLED),
            'normal path': len(volumes) - _count(
                volumes, cache_request.RESULT_HIT,
                cache_request.RESULT_FILLED),
        }
        self.addDetail('outcome', content.text_content(repr(self.outcome)))
        # What the last runs left retired goes now; vCenter then holds the
        # volumes only.
        self.cache.purge(expired_only=False)
        pairs = [(harness.WorkerVolume(r),
                  vim_util.get_moref(r['backing'], 'VirtualMachine'))
                 for r in volumes]
        self.assert_vcenter_state(pairs, [])
        self.assert_clean()


class RedisPurgeRacingClonesTestCase(PurgeRacingClonesTests,
                                     harness.ReliabilityTestCase):
    lock_server_class = harness.RedisServer


class EtcdPurgeRacingClonesTestCase(PurgeRacingClonesTests,
                                    harness.ReliabilityTestCase):
    lock_server_class = harness.EtcdServer


def _count(volumes, *results):
    return len([r for r in volumes if r['result'] in results])


def _origin(records):
    return min((r.start for r in records if r.start), default=None)


def _at(records, when):
    """Seconds since the first task started, as text."""
    start = _origin(records)
    return '-' if when is None or start is None else '%.2f' % (
        when - start).total_seconds()


def _violation(records, destroy, clone):
    return '%s destroyed %s at %s s; %s cloning it ran %s..%s s' % (
        destroy.key, destroy.entity, _at(records, destroy.start), clone.key,
        _at(records, clone.start), _at(records, clone.complete))


def _timeline(records, copies=()):
    """Clones, renames (publish, retire) and destroys, as text.

    Times in seconds since the first task started.
    """
    shown = harness.CLONE_TASKS + (harness.DESTROY_TASK, RENAME_TASK)
    return '\n'.join(
        '%s %s %s of %s%s: %s .. %s' % (
            r.key, r.description_id, r.state, r.entity,
            ' (cache copy)' if r.entity in copies else '',
            _at(records, r.start), _at(records, r.complete))
        for r in records if r.description_id in shown)
