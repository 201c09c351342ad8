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


"""Base of the tests against a real vSphere API (simulator or vCenter).

The endpoint comes from the environment (see cinder_vmware_cache.testing.
vcenter); without one every test here fails and says why.
"""

import json
import os
import ssl
import urllib.request
import uuid

from oslo_utils import units
from oslo_vmware import vim_util

from cinder_vmware_cache.testing import disk_images
from cinder_vmware_cache.testing import images
from cinder_vmware_cache.testing import vcenter
from tests import common

IMAGE_BYTES = 3 * units.Mi


def fault_api(method, body=None, rule_id=None):
    """Call the simulator's fault-injection API (doc/simulator.md).

    :param method: GET (rules and counters), POST (``body``: a rule),
        DELETE (all rules, or the rule ``rule_id``).
    """
    return _simulator_api('faults' if rule_id is None else
                          'faults/%s' % rule_id, method, body)


def rates_api(settings=None):
    """The simulator's data-rate model (doc/simulator.md): set, or read."""
    return _simulator_api('rates', 'GET' if settings is None else 'POST',
                          settings)


def _simulator_api(path, method, body):
    url = 'https://%s:%s/vcsim/%s' % (os.environ['VCENTER_HOST'],
                                      os.environ.get('VCENTER_PORT'), path)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={'Content-Type': 'application/json'})
    ctx = ssl._create_unverified_context()
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.loads(resp.read() or b'null')


class SimulatorTestCase(common.TestCase):
    """A backend of its own on the vCenter, with the image cache on.

    Every test leaves the backend's cache empty and deletes its volumes.
    """

    backend = None
    overrides = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.driver_endpoint = vcenter.required_endpoint()
        cls.backend = 'sim%s' % uuid.uuid4().hex[:6]
        cls.driver = vcenter.make_driver(cls.backend, enable_image_cache=True,
                                         **cls.overrides)
        cls.cache = cls.driver._image_cache
        cls.images = images.LocalImageService()
        cls.image_dir = images.scratch_dir()
        cls.ctx = vcenter.user_context('project-a')

    @classmethod
    def tearDownClass(cls):
        if cls.backend:
            cls.cache.stop()
            cls.cache.purge(expired_only=False)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.vops = self.driver.volumeops
        self.addCleanup(self.cache.purge, expired_only=False)

    def add_image(self, **kw):
        path = disk_images.make_vmdk(self.image_dir, IMAGE_BYTES)
        return self.images.add(path, virtual_size=IMAGE_BYTES, **kw)

    def create(self, image_id, metadata=None, size=1, ctx=None):
        """clone_image as cinder calls it; the cache's result is kept.

        ``self.result`` is what the model update records in the volume's
        ``image_cache_result`` metadata key (None: nothing recorded).
        """
        ctx = ctx or self.ctx
        volume = vcenter.new_volume(ctx, size, metadata)
        model_update, cloned = self.driver.clone_image(
            ctx, volume, None, self.images.show(ctx, image_id), self.images)
        self.assertTrue(cloned)
        self.result = None
        if model_update is not None:
            self.assertEqual(dict(metadata or {}), {
                k: v for k, v in model_update['metadata'].items()
                if k != 'image_cache_result'}, 'a user key was changed')
            self.result = model_update['metadata']['image_cache_result']
        backing = self.vops.get_backing(volume.name, volume.id)
        self.assertIsNotNone(backing, 'volume has no backing')
        self.addCleanup(self.vops.delete_backing, backing)
        return volume, backing

    def prop(self, ref, name):
        return self.driver.session.invoke_api(
            vim_util, 'get_object_property', self.driver.session.vim, ref,
            name)

    def extra_config(self, ref):
        options = self.prop(ref, 'config.extraConfig')
        return {o.key: o.value for o in getattr(options, 'OptionValue', [])}

    def entries(self):
        inv = self.cache.inventory
        return inv.list_entries(inv.discover_folders())


class RequestCounter(object):
    """Counts the SOAP requests the simulator receives inside a block."""

    def __enter__(self):
        self.rule = fault_api('POST', {'method': '*', 'action': 'delay'})
        return self

    def __exit__(self, *exc):
        self.count = fault_api('DELETE', rule_id=self.rule['id'])['matched']


class FaultsTestCase(SimulatorTestCase):
    """Needs the simulator's fault injection; clears rules after each test."""

    def setUp(self):
        super().setUp()
        try:
            fault_api('DELETE')
        except OSError as exc:
            # The one documented skip: a real vCenter has no fault API.
            self.skipTest('fault injection needs the simulator: %s' % exc)
        self.addCleanup(fault_api, 'DELETE')
