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

"""cinder-vmware-image-cache: list, show, purge and warm a backend's cache.

It reads cinder.conf like cinder-manage does and talks to the backend's
vCenter with the backend's own options and credentials::

    cinder-vmware-image-cache [--config-file PATH] [--backend NAME] \\
        [--vcenter-timeout SECONDS] [--debug] COMMAND [OUTPUT OPTIONS]

    ... list
    ... show IMAGE_ID
    ... purge [--expired-only] [--image IMAGE_ID]
              [--datastore NAME [--datacenter NAME]]
    ... warm IMAGE_ID [--datastore NAME ...]

``--backend`` names a backend of ``[DEFAULT] enabled_backends`` that has a
section in the configuration; it may be left out when exactly one backend is
enabled. The section must hold ``vmware_host_ip``, ``vmware_host_username``
and ``vmware_host_password`` (``[backend_defaults]`` is honoured, as by
cinder-volume); the password, and one in ``[coordination] backend_url``, is
never printed, also not in error messages, log lines or tracebacks
(``--debug``).

The commands are cliff's (as in python-openstackclient), so each takes the
output options ``-f/--format table|json|yaml|csv|value``, ``-c COLUMN`` and,
for lists, ``--sort-column COLUMN``. The columns are the keys of the JSON
objects: ``image_id``, ``template``, ``state``, ``datastore``,
``datastore_ref``, ``datacenter``, ``size_gb``, ``size_bytes``,
``created_at``, ``last_used``, ``purge_after`` and ``ref``; ``purge`` and
``warm`` add ``result``. JSON and YAML carry every column; a table (and csv
and value) shows image id, template, datastore, datacenter, size in whole
GiB (rounded up; ``-`` when unknown, as for the leftovers of an interrupted
fill), creation and last use (UTC, ISO 8601) and state (``ready``, or
``partial`` for a copy that is never cloned and that the periodic purge
removes).

``list`` shows every VM of the backend's cache folder(s), one row per copy
of an image on a datastore, ``show`` the entries of one image. ``purge``
deletes every entry (of one image with ``--image``, on one datastore with
``--datastore``, and ``--datacenter`` where datastore names repeat across
datacenters) that no request is using; with ``--expired-only`` it does
what the periodic task of cinder-volume does. It lists the entries it
handled, ``result`` ``deleted`` or ``failed``. ``warm`` puts a copy of an
image on the datastore the stock selection chooses, or on each datastore
named with ``--datastore``, ahead of use; it lists one row per copy,
``result`` ``filled`` (imported), ``seeded`` (cloned from a copy on another
datastore) or ``already cached`` (its last use refreshed). It asks Glance
as cinder's service user (``[glance]`` or ``[service_user]``
credentials). list, show and purge open
only a vCenter session; warm sets the driver up as cinder-volume does.
purge and warm take the same locks as cinder-volume, through the
coordinator of ``[coordination] backend_url``, so a template is never
deleted while it is filled or cloned.

Exit codes:

===  ==================================================================
0    success (also: nothing to purge)
1    the operation failed: ``show`` found no entry of the image,
     ``purge`` could not delete some entries (in use or refused by
     vCenter; the periodic purge retries them), ``warm`` could not fill
     the cache (image not cacheable, not found, not readable by cinder's
     service user, lock held too long, fill failed), or an unexpected
     error
2    usage or configuration error: bad arguments (also a ``--datastore``
     the backend cannot use, or one whose name is ambiguous), unreadable
     configuration, unknown backend (not in ``enabled_backends`` or no
     section), missing credentials, bad option values, unusable lock
     coordinator, no Glance service credentials (``warm``)
3    vCenter unreachable, login failed, or no answer within
     ``--vcenter-timeout`` seconds
130  interrupted (Ctrl-C)
===  ==================================================================
"""

import warnings

# Importing cinder imports eventlet, which warns that it is deprecated: a
# matter for cinder, not for an operator running this command.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

# Before anything imports eventlet-sensitive modules (as cinder's commands).
from cinder_vmware_cache import stock  # noqa: I100
stock.monkey_patch()

import sys  # noqa: I100

from cinder_vmware_cache.cli import app
from cinder_vmware_cache.cli import config
from cinder_vmware_cache.cli import errors
from cinder_vmware_cache.cli import records

# The names other code takes from here.
DRIVER_PATH = config.DRIVER_PATH
FIELDS = records.FIELDS
EXIT_OK = errors.EXIT_OK
EXIT_FAILED = errors.EXIT_FAILED
EXIT_USAGE = errors.EXIT_USAGE
EXIT_VCENTER = errors.EXIT_VCENTER
EXIT_INTERRUPTED = errors.EXIT_INTERRUPTED


def main(argv=None):
    """Run the command line ``argv`` (default: sys.argv[1:]).

    Returns the exit code documented in the module docstring.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return app.ImageCacheApp().run(argv)
    except SystemExit as exc:
        # Only argument parsing exits: help and --version (0), usage
        # errors (2).
        return EXIT_OK if exc.code in (None, 0) else EXIT_USAGE


if __name__ == '__main__':
    sys.exit(main())
