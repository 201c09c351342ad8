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

"""Which failed clone says its source template is broken.

A clone from a cached copy fails because of the copy (its VM or its disk
files are gone) or because of the target (no space on the volume's
datastore, a host in maintenance, a lost connection, an invalid spec).
Dropping the copy on a target failure would turn a full datastore into one
Glance download per request, so only evidence against the copy drops it.
"""

from oslo_vmware import exceptions as vexc

# Faults that name the source's files (vCenter refuses to clone a VM whose
# disk is gone with FileNotFound).
_SOURCE_FILE_FAULTS = (vexc.FileNotFoundException,)
_SOURCE_FILE_FAULT_NAMES = frozenset([vexc.FILE_NOT_FOUND])


def names_missing_files(exc):
    """Whether a clone's error says a file it read is missing."""
    if isinstance(exc, _SOURCE_FILE_FAULTS):
        return True
    return bool(_SOURCE_FILE_FAULT_NAMES.intersection(
        getattr(exc, 'fault_list', None) or ()))


def template_broken(exc, current):
    """Whether a failed clone shows its source copy broken.

    :param exc: the clone's error.
    :param current: the copy as re-read after the failure: a CacheEntry,
        None when the VM is gone, or the entry as known before when vCenter
        could not be asked (then only the error decides).
    """
    if current is None or not current.ready:
        return True
    return names_missing_files(exc)
