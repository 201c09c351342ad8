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

"""A second cinder-volume process for the reliability suite.

Run as ``python -m tests.reliability.worker JOB`` (JOB is JSON); not a test
module. It builds the driver exactly as the suite does, in its own process,
with its own vCenter session and lock coordinator, and prints JSON lines on
stdout: ``{"event": "ready"}`` once set up, ``{"event": "done", ...}`` with
its results at the end.

Modes:

``create``
    Start the coordinator on ``lock_url`` first (make_driver only picks a
    backend when none is started), build the driver of ``backend``, serve
    ``images`` from their files, wait for a "go" line on stdin when
    ``wait_for_go``, then create ``count`` volumes concurrently (one
    greenthread each) and report every volume and the downloads made.
    With ``stall_after_chunks``, image streams stop for good after that
    many chunks and the worker prints ``{"event": "stalled"}``. With
    ``policy``, those fields of the cache's CachePolicy are replaced (the
    protocol timings, which are not options). With ``spacing``, volume
    ``n`` starts ``offset + n * spacing`` seconds after "go" (``offset``
    defaults to 0), so the requests of a burst are spread out. Each
    volume reports its ``image_cache_result`` (``result``).
``startup``
    Read ``config_file`` as cinder-volume does and run do_setup for each
    backend section in ``sections``; report what each start did.
"""

import dataclasses
import json
import os
import sys
import time

from cinder import coordination
from cinder.volume import configuration
from cinder.volume import driver as base_driver
from cinder.volume.drivers.vmware import vmdk
import eventlet
from eventlet import tpool
from oslo_config import cfg

from cinder_vmware_cache import driver as cache_driver
from cinder_vmware_cache import opts
from cinder_vmware_cache import request
from cinder_vmware_cache.testing import images
from cinder_vmware_cache.testing import vcenter

CONF = cfg.CONF


def emit(event):
    sys.stdout.write(json.dumps(event) + '\n')
    sys.stdout.flush()


class StallingImageService(images.LocalImageService):
    """Glance whose streams stop after ``chunks`` chunks and never resume.

    The worker says so on stdout ({"event": "stalled"}), so the test knows
    the process is in the middle of an upload.
    """

    def __init__(self, chunks):
        super().__init__()
        self.chunks = chunks

    def download(self, context, image_id, data=None):
        chunks = super().download(context, image_id, data)

        def stalling():
            for number, chunk in enumerate(chunks):
                if number == self.chunks:
                    emit({'event': 'stalled', 'image_id': image_id})
                    eventlet.sleep(3600)
                yield chunk
        return stalling()


def create(job):
    CONF.set_override('backend_url', job['lock_url'], group='coordination')
    coordination.COORDINATOR.start()
    drv = vcenter.make_driver(job['backend'], enable_image_cache=True,
                              **job.get('overrides', {}))
    if job.get('policy'):
        drv._image_cache.policy = dataclasses.replace(
            drv._image_cache.policy, **job['policy'])
    if job.get('stall_after_chunks') is not None:
        service = StallingImageService(job['stall_after_chunks'])
    else:
        service = images.LocalImageService()
    for image in job['images']:
        service.add(image['path'], disk_type=image['disk_type'],
                    virtual_size=image['size'], image_id=image['id'])
    ctx = vcenter.user_context(job.get('project', 'project-a'))
    emit({'event': 'ready', 'pid': os.getpid()})
    if job.get('wait_for_go'):
        tpool.execute(sys.stdin.readline)

    def one(number):
        if job.get('spacing'):
            eventlet.sleep(job.get('offset', 0) + number * job['spacing'])
        image_id = job['images'][number % len(job['images'])]['id']
        volume = vcenter.new_volume(ctx, 1, job.get('metadata'))
        record = {'id': volume.id, 'name': volume.name, 'image_id': image_id,
                  'backing': None, 'error': None, 'result': None,
                  'started': time.time()}
        try:
            model_update, _cloned = drv.clone_image(
                ctx, volume, None, service.show(ctx, image_id), service)
            record['result'] = ((model_update or {}).get('metadata') or
                                {}).get(request.RESULT_KEY)
            backing = drv.volumeops.get_backing(volume.name, volume.id)
            record['backing'] = backing.value if backing else None
        except Exception as exc:
            record['error'] = '%s: %s' % (type(exc).__name__, exc)
        record['finished'] = time.time()
        return record

    pool = eventlet.GreenPool(max(1, job['count']))
    volumes = list(pool.imap(one, range(job['count'])))
    emit({'event': 'done', 'downloads': service.downloads,
          'volumes': volumes})
    drv._image_cache.stop()
    coordination.COORDINATOR.stop()


def startup(job):
    CONF(['--config-file', job['config_file']], project='cinder',
         default_config_files=[])
    results = {}
    for section in job['sections']:
        conf = configuration.Configuration(vmdk.vmdk_opts,
                                           config_group=section)
        conf.append_config_values(base_driver.volume_opts)
        conf.append_config_values(opts.image_cache_opts)
        try:
            drv = cache_driver.VMwareVcVmdkCacheDriver(configuration=conf)
            drv.do_setup(vcenter.admin_context())
            results[section] = {
                'started': True,
                'policy': dataclasses.asdict(drv._image_cache.policy)}
        except Exception as exc:
            results[section] = {'started': False,
                                'error': type(exc).__name__,
                                'message': str(exc)}
    emit({'event': 'done', 'results': results})


def main(argv):
    job = json.loads(argv[1])
    {'create': create, 'startup': startup}[job['mode']](job)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
