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

"""A cinder-volume-like process for the two-process concurrent hits.

Run by the bench as ``python -m bench.worker JOB`` (JOB is JSON: backend,
lock_url, image {id, path, disk_type, size}, project); not for use on its
own. It starts its coordinator on ``lock_url`` (make_driver only picks a
backend when none is started), builds its own cache driver with its own
vCenter session, stops the periodic purge (it would add round trips), and
counts its own SOAP round trips with the bench's probe. It makes one hit
(the warm-up, not measured) and answers ``{"event": "ready", ...}`` with
its volume and round trips. Then, on stdin and stdout, one JSON line each
way:

- ``{"kind": "hits" | "bare", "count": k, "template": "vm-..."}``: make
  k new volumes (hits) or k stock placements (bare clones of the template,
  as the floor does them; the selections are not timed), answer
  ``{"event": "armed", "volumes": [...]}``;
- ``go``: note the time, run the k requests at once (one greenthread
  each), then check the new backings (not counted), answer
  ``{"event": "done", ...}`` with the round trips, the times (time.time()
  of go and of each request's end) and what was created;
- ``quit`` or end of input: stop the coordinator and exit.

Anything that fails outside a request answers ``{"event": "error"}``.
"""

import functools
import json
import logging
import os
import sys
import time
import traceback

# Importing bench first applies cinder's eventlet monkey patching.
from bench import probe as probe_mod
from cinder import coordination
from cinder.volume.drivers.vmware import volumeops
import eventlet
from eventlet import tpool
from oslo_config import cfg
from oslo_vmware import vim_util

from cinder_vmware_cache import driver as cache_driver
from cinder_vmware_cache.testing import images
from cinder_vmware_cache.testing import vcenter

CONF = cfg.CONF
CACHED = {'use_image_cache': 'true'}


def emit(event):
    sys.stdout.write(json.dumps(event) + '\n')
    sys.stdout.flush()


def read_line():
    # In a native thread: a blocking read would stop every greenthread.
    return tpool.execute(sys.stdin.readline).strip()


class Worker(object):

    def __init__(self, job):
        self.job = job
        self.probe = probe_mod.Probe()
        self.probe.install()
        CONF.set_override('backend_url', job['lock_url'],
                          group='coordination')
        coordination.COORDINATOR.start()
        self.drv = vcenter.make_driver(
            job['backend'], enable_image_cache=True,
            driver_class=cache_driver.VMwareVcVmdkCacheDriver)
        self.drv.image_cache.stop()
        self.svc = images.LocalImageService()
        image = job['image']
        self.image_id = self.svc.add(
            image['path'], disk_type=image['disk_type'],
            virtual_size=image['size'], image_id=image['id'])
        self.ctx = vcenter.user_context(job['project'])

    def arm(self, command):
        if command['kind'] == 'hits':
            volumes = [vcenter.new_volume(self.ctx, 1, CACHED)
                       for _ in range(command['count'])]
            return volumes, functools.partial(self.hit, volumes)
        template = vim_util.get_moref(command['template'], 'VirtualMachine')
        placements = []
        for _ in range(command['count']):
            volume = vcenter.new_volume(self.ctx, 1)
            placements.append((volume,) + tuple(
                self.drv._select_ds_for_volume(volume)))
        return [], functools.partial(self.bare, template, placements)

    def hit(self, volumes):
        downloads = self.svc.downloads.get(self.image_id, 0)
        pool = eventlet.GreenPool(len(volumes))
        with self.probe.measure(phases=False) as m:
            records = list(pool.imap(self.one_hit, volumes))
        # After the block: the look-up is not part of a hit.
        for volume, record in zip(volumes, records):
            if record['error'] is None and self.drv.volumeops.get_backing(
                    volume.name, volume.id) is None:
                record['error'] = 'no backing after create'
        return m, records, {
            'downloads': self.svc.downloads.get(self.image_id, 0) -
            downloads, 'clones': []}

    def one_hit(self, volume):
        return self._timed(functools.partial(
            self.drv.clone_image, self.ctx, volume, None,
            self.svc.show(self.ctx, self.image_id), self.svc))

    def bare(self, template, placements):
        clones = []

        def one(placement):
            volume, host, rp, folder, summary = placement

            def clone():
                clones.append(self.drv.volumeops.clone_backing(
                    'bench-bare-%s' % volume.id, template, None,
                    volumeops.FULL_CLONE_TYPE, summary.datastore, host=host,
                    resource_pool=rp, folder=folder))
            return self._timed(clone)

        pool = eventlet.GreenPool(len(placements))
        with self.probe.measure(phases=False) as m:
            records = list(pool.imap(one, placements))
        return m, records, {'downloads': 0, 'clones': [
            vim_util.get_moref_value(ref) for ref in clones]}

    @staticmethod
    def _timed(call):
        record = {'error': None, 'started': time.time()}
        try:
            call()
        except Exception as exc:
            logging.getLogger('bench.worker').exception('request failed')
            record['error'] = '%s: %s' % (type(exc).__name__, exc)
        record['finished'] = time.time()
        return record

    def warm_up(self):
        """One hit before any measurement, as the one-process section had.

        A process's first hit also reads what it keeps for later ones (its
        first placement and datastore look-ups); its round trips are
        reported apart.
        """
        volume = vcenter.new_volume(self.ctx, 1, CACHED)
        m, [record], extra = self.hit([volume])
        if record['error']:
            raise RuntimeError('the warm-up hit failed: %s'
                               % record['error'])
        return {'volumes': [{'id': volume.id, 'name': volume.name}],
                'warm_up': {'calls': m.calls, 'seconds': m.seconds,
                            'methods': dict(m.methods),
                            'downloads': extra['downloads']}}

    def serve(self):
        emit(dict(self.warm_up(), event='ready', pid=os.getpid()))
        while True:
            line = read_line()
            if line in ('', 'quit'):
                return
            command = json.loads(line)
            volumes, run = self.arm(command)
            emit({'event': 'armed', 'volumes': [
                {'id': v.id, 'name': v.name} for v in volumes]})
            line = read_line()
            if line != 'go':
                raise ValueError('expected go, got %r' % line)
            go_at = time.time()
            m, records, extra = run()
            emit(dict(extra, event='done', go_at=go_at, seconds=m.seconds,
                      calls=m.calls, soap_seconds=m.soap_seconds,
                      methods=dict(m.methods), records=records))

    def close(self):
        self.drv.image_cache.stop()
        self.probe.uninstall()


def main(argv):
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format='%(asctime)s %(levelname)s %(name)s '
                               '%(message)s')
    logging.captureWarnings(True)
    worker = None
    try:
        worker = Worker(json.loads(argv[1]))
        worker.serve()
    except Exception as exc:
        traceback.print_exc()
        emit({'event': 'error',
              'error': '%s: %s' % (type(exc).__name__, exc)})
        return 1
    finally:
        if worker is not None:
            worker.close()
        if coordination.COORDINATOR.started:
            coordination.COORDINATOR.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
