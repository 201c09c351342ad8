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
from oslo_config import cfg
from oslo_utils import units
from oslo_vmware import vim_util

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


def datastore_name(driver, ref):
    return driver.session.invoke_api(vim_util, 'get_object_property',
                                     driver.session.vim, ref, 'name')


def other_datastore(driver, name):
    """A datastore the backend may use besides ``name``, or None."""
    stock = driver.image_cache._stock
    candidates = stock.candidates(vcenter.new_volume(
        vcenter.admin_context(), 1))
    others = sorted(p['summary'].name for p in candidates.datastores.values()
                    if p['summary'].name != name)
    return others[0] if others else None


def run(log_file):
    driver = vcenter.make_driver('demo', enable_image_cache=True)
    cache = driver._image_cache
    service = images.LocalImageService()
    scratch = images.scratch_dir()
    image_id = service.add(disk_images.make_vmdk(scratch, 32 * units.Mi),
                           virtual_size=32 * units.Mi)
    ctx = vcenter.user_context('demo-project')
    rows, backings, drivers = [], [], [driver]

    def create(drv, label, metadata):
        volume = vcenter.new_volume(ctx, 1, metadata)
        before = service.downloads.get(image_id, 0)
        start = time.monotonic()
        model_update, _cloned = drv.clone_image(
            ctx, volume, None, service.show(ctx, image_id), service)
        seconds = time.monotonic() - start
        backing = drv.volumeops.get_backing(volume.name, volume.id)
        backings.append((drv, backing))
        downloaded = service.downloads.get(image_id, 0) - before
        result = (model_update or {}).get('metadata', {}).get(
            'image_cache_result', '-')
        rows.append((volume.name, label, result, datastore_name(
            drv, drv.volumeops.get_datastore(backing)), downloaded, seconds))

    try:
        for label, metadata in SCENARIO:
            create(driver, label, metadata)
        # A backend of the same name on another datastore (its datastore
        # regex names only that one): the copy is seeded there, no download.
        other = other_datastore(driver, rows[1][3])
        if other:
            cfg.CONF.set_override('vmware_datastore_regex', '^%s$' % other,
                                  group='demo')
            drivers.append(vcenter.make_driver('demo',
                                               enable_image_cache=True))
            create(drivers[-1], 'use_image_cache=true, another datastore',
                   {'use_image_cache': 'true'})
        entries = cache.list_all()
        names = {e.datastore: datastore_name(
            driver, vim_util.get_moref(e.datastore, 'Datastore'))
            for e in entries}
        stats = driver.get_volume_stats(refresh=True)
    finally:
        for drv, backing in backings:
            if backing:
                drv.volumeops.delete_backing(backing)
        cache.purge(expired_only=False)
        for drv in drivers:
            drv.image_cache.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        vcenter.stop_coordination()
    print('%-44s %-40s %-40s %-10s %9s %8s' % (
        'volume', 'request', 'image_cache_result', 'datastore', 'downloads',
        'seconds'))
    for name, label, result, datastore, downloaded, seconds in rows:
        print('%-44s %-40s %-40s %-10s %9d %8.2f' % (
            name, label, result, datastore, downloaded, seconds))
    print()
    print('copies in OpenStack/Project (demo_image_cache)/Volumes: %s' %
          ', '.join('%s on %s' % (e.name, names[e.datastore])
                    for e in entries))
    if not other:
        print('(one datastore only: no copy seeded on another)')
    print('extra_provisioned_capacity_gb reported: %s' %
          stats['extra_provisioned_capacity_gb'])
    print('cleaned up: volumes, templates, image file and lock folder')
    print('log: %s' % log_file)
    return 0


if __name__ == '__main__':
    sys.exit(main())
