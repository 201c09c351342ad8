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

"""A local stand-in for Glance's image service, for the demo and tests.

It serves what cinder's GlanceImageService serves to a volume driver:
``show`` (with Glance's visibility rule: a private image of another project
is "not found") and ``download`` (an iterator of chunks).
"""

import atexit
import os
import shutil
import tempfile
import threading
import uuid

from cinder import exception
from oslo_utils import units

CHUNK = 64 * units.Ki


class LocalImageService(object):

    def __init__(self):
        self._images = {}
        self._lock = threading.Lock()
        self.downloads = {}
        # cinder's image_utils.TemporaryImages keeps its state here.
        self.temp_images = None

    def add(self, path, disk_type='preallocated', virtual_size=None,
            owner=None, visibility='public', properties=None,
            disk_format='vmdk', image_id=None):
        image_id = image_id or str(uuid.uuid4())
        props = {'vmware_disktype': disk_type,
                 'vmware_adaptertype': 'lsiLogic'}
        props.update(properties or {})
        # A property given as None is left out.
        props = {k: v for k, v in props.items() if v is not None}
        size = os.path.getsize(path)
        self._images[image_id] = {
            'meta': {'id': image_id, 'name': os.path.basename(path),
                     'status': 'active', 'disk_format': disk_format,
                     'container_format': 'bare', 'size': size,
                     'virtual_size': virtual_size or size, 'owner': owner,
                     'visibility': visibility, 'properties': props},
            'path': path}
        return image_id

    def set_visibility(self, image_id, visibility):
        self._images[image_id]['meta']['visibility'] = visibility

    def remove(self, image_id):
        self._images.pop(image_id, None)

    def _visible(self, context, image_id):
        image = self._images.get(image_id)
        if image is None:
            raise exception.ImageNotFound(image_id=image_id)
        meta = image['meta']
        if (meta['visibility'] in ('private', 'shared') and
                getattr(context, 'project_id', None) != meta['owner'] and
                not getattr(context, 'is_admin', False)):
            raise exception.ImageNotFound(image_id=image_id)
        return image

    def show(self, context, image_id):
        meta = dict(self._visible(context, image_id)['meta'])
        meta['properties'] = dict(meta['properties'])
        return meta

    def get_location(self, context, image_id):
        """No direct URL: the driver streams the image (as from Glance)."""
        self._visible(context, image_id)
        return None, []

    def download(self, context, image_id, data=None):
        image = self._visible(context, image_id)
        with self._lock:
            self.downloads[image_id] = self.downloads.get(image_id, 0) + 1

        def chunks():
            with open(image['path'], 'rb') as stream:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        return
                    yield chunk
        return chunks()


def scratch_dir():
    """A temporary folder for image files, removed when the process ends."""
    path = tempfile.mkdtemp(prefix='cvc-images-')
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
