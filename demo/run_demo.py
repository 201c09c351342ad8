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


"""Demo: volumes from an image with and without the image-template cache.

Runs against the vCenter named by VCENTER_HOST (tools/with-vcenter.sh starts
the local simulator when none is named), serves a small vmdk image the way
Glance does, creates volumes through VMwareVcVmdkCacheDriver and prints
what the cache did for each (the volume's image_cache_result metadata, as
``openstack volume show`` shows it), the downloads and the time taken. The
screen shows the result; everything the driver and the libraries log goes
to the log file it names.
"""

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings

# Importing cinder imports eventlet, which warns that it is deprecated:
# cinder's matter, not the demo's.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

import cinder.tests.unit  # noqa: F401  (eventlet patching, objects)
from oslo_utils import units

from cinder_vmware_cache.testing import disk_images
from cinder_vmware_cache.testing import images
from cinder_vmware_cache.testing import vcenter

SCENARIO = [
    ('no flag', {}),
    ('use_image_cache=true (miss: fills)', {'use_image_cache': 'true'}),
    ('use_image_cache=True (hit)', {'use_image_cache': 'True'}),
    ('use_image_cache=yes (hit)', {'use_image_cache': 'yes'}),
    ('use_image_cache=false', {'use_image_cache': 'false'}),
    ('use_image_cache=maybe', {'use_image_cache': 'maybe'}),
]


def log_to_file(path):
    """Send all logging, and Python warnings, to ``path`` only."""
    handler = logging.FileHandler(path, mode='w')
    handler.setFormatter(logging.Formatter(
        '%(asctime)s %(levelname)s %(name)s %(message)s'))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--log-file', default=os.path.join(
        tempfile.gettempdir(), 'cinder-vmware-cache-demo.log'))
    args = parser.parse_args()
    if not vcenter.endpoint():
        print('demo: no vCenter; fix: run tools/demo.sh, or set '
              'VCENTER_HOST (and VCENTER_PORT, VCENTER_USER, '
              'VCENTER_PASSWORD)', file=sys.stderr)
        return 2
    log_to_file(args.log_file)
    try:
        return run(args.log_file)
    except Exception as exc:
        logging.getLogger(__name__).exception('demo failed')
        print('demo failed: %s: %s; fix: check that the vCenter named by '
              'VCENTER_HOST is reachable; details in %s' %
              (type(exc).__name__, str(exc).splitlines()[0] if str(exc)
               else '', args.log_file), file=sys.stderr)
        return 1


def run(log_file):
    driver = vcenter.make_driver('demo', enable_image_cache=True)
    cache = driver._image_cache
    service = images.LocalImageService()
    scratch = images.scratch_dir()
    image_id = service.add(disk_images.make_vmdk(scratch, 32 * units.Mi),
                           virtual_size=32 * units.Mi)
    ctx = vcenter.user_context('demo-project')
    rows, backings = [], []
    try:
        for label, metadata in SCENARIO:
            volume = vcenter.new_volume(ctx, 1, metadata)
            before = service.downloads.get(image_id, 0)
            start = time.monotonic()
            model_update, _cloned = driver.clone_image(
                ctx, volume, None, service.show(ctx, image_id), service)
            seconds = time.monotonic() - start
            backing = driver.volumeops.get_backing(volume.name, volume.id)
            backings.append(backing)
            downloaded = service.downloads.get(image_id, 0) - before
            result = (model_update or {}).get('metadata', {}).get(
                'image_cache_result', '-')
            rows.append((volume.name, label, result, downloaded, seconds))
        entries = cache.entries()
        stats = driver.get_volume_stats(refresh=True)
    finally:
        for backing in backings:
            if backing:
                driver.volumeops.delete_backing(backing)
        cache.purge(expired_only=False)
        cache.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        vcenter.stop_coordination()
    print('%-44s %-36s %-40s %9s %8s' % (
        'volume', 'request', 'image_cache_result', 'downloads', 'seconds'))
    for name, label, result, downloaded, seconds in rows:
        print('%-44s %-36s %-40s %9d %8.2f' % (name, label, result,
                                               downloaded, seconds))
    print()
    print('templates in OpenStack/Project (demo_image_cache)/Volumes: %s' %
          ', '.join(e.name for e in entries))
    print('extra_provisioned_capacity_gb reported: %s' %
          stats['extra_provisioned_capacity_gb'])
    print('cleaned up: volumes, templates, image file and lock folder')
    print('log: %s' % log_file)
    return 0


if __name__ == '__main__':
    sys.exit(main())
