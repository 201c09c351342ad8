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

"""vmdk image files for the demo, the benchmark and the tests.

Imports nothing of cinder, so the full-stack tests (which talk to cinder
only through its services) use it too.
"""

import os
import shutil
import subprocess

from oslo_utils import units


def make_vmdk(directory, size_bytes, disk_type='preallocated'):
    """Write an image file of ``size_bytes`` virtual size; return its path.

    A preallocated vmdk image is the flat extent itself. A streamOptimized
    one is made by qemu-img from a flat extent when qemu-img is installed.
    The payload is incompressible so transfers cost what the size says.
    """
    flat = os.path.join(directory, 'disk-%d.flat' % size_bytes)
    with open(flat, 'wb') as out:
        left = size_bytes
        block = os.urandom(units.Mi)
        while left > 0:
            out.write(block[:min(left, units.Mi)])
            left -= units.Mi
    if disk_type == 'preallocated':
        return flat
    qemu_img = shutil.which('qemu-img')
    if not qemu_img:
        raise RuntimeError('qemu-img is needed for a streamOptimized image')
    path = os.path.join(directory, 'disk-%d.vmdk' % size_bytes)
    subprocess.run([qemu_img, 'convert', '-f', 'raw', '-O', 'vmdk', '-o',
                    'subformat=streamOptimized', flat, path], check=True)
    os.unlink(flat)
    return path
