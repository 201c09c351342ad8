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

"""Cache entries as printable records: the same columns in every format."""

import datetime

from cliff import columns
from oslo_log import log as logging
from oslo_utils import timeutils
from oslo_vmware import vim_util

from cinder_vmware_cache import policy

LOG = logging.getLogger(__name__)

# Every key of a record, in output order; a table shows LIST_COLUMNS.
FIELDS = ('image_id', 'template', 'state', 'datastore', 'datastore_ref',
          'datacenter', 'size_gb', 'size_bytes', 'created_at', 'last_used',
          'purge_after', 'ref')
LIST_COLUMNS = ('image_id', 'template', 'datastore', 'datacenter', 'size_gb',
                'created_at', 'last_used', 'state')


class Unknown(columns.FormattableColumn):
    """A value vCenter did not give: ``-`` in a table, null in JSON.

    Sorts after every known value, as cliff sorts None.
    """

    def __init__(self):
        super().__init__(None)

    def human_readable(self):
        return '-'

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return not isinstance(other, Unknown)


def _iso(when):
    """ISO 8601 in UTC, to the second, with a Z; None stays None."""
    if when is None:
        return None
    if when.tzinfo is not None:
        when = timeutils.normalize_time(when)
    return when.replace(microsecond=0).isoformat() + 'Z'


def _purge_after(entry, cache_policy):
    """When the periodic purge may delete the entry (eviction aside)."""
    if entry.ready:
        start, delay = entry.last_activity, cache_policy.age_seconds
    else:
        start, delay = entry.created_at, cache_policy.leftover_grace_seconds
    if start is None:
        return None
    return start + datetime.timedelta(seconds=delay)


def _text(value):
    return None if value is None else str(value)


def make_record(entry, cache_policy, datastore_names=None,
                datacenter_names=None):
    """The printable form of a CacheEntry: FIELDS and their values."""
    names = datastore_names or {}
    return {
        'datacenter': _text((datacenter_names or {}).get(entry.folder)),
        'image_id': entry.image_id,
        'template': entry.name,
        'state': 'ready' if entry.ready else 'partial',
        'datastore': _text(names.get(entry.datastore) or entry.datastore),
        'datastore_ref': _text(entry.datastore),
        'size_gb': policy.gib(entry.size_bytes) if entry.size_bytes else None,
        'size_bytes': int(entry.size_bytes or 0),
        'created_at': _iso(entry.created_at),
        'last_used': _iso(entry.last_used),
        'purge_after': _iso(_purge_after(entry, cache_policy)),
        'ref': _text(entry.key),
    }


def order(entry):
    """By image, the ready copies first: stable output."""
    return entry.image_id, not entry.ready, entry.name, str(entry.key)


def on_datastore(entries, names, datacenters, datastore, datacenter=None):
    """The entries on the datastore named ``datastore``.

    :param names: datastore names by moref value (``datastore_names``).
    :param datacenters: datacenter names by cache folder moref value.
    :raises ValueError: the name is ambiguous (datastore names repeat
        across datacenters) and ``datacenter`` does not settle it.
    """
    found = [e for e in entries if names.get(e.datastore) == datastore and
             datacenter in (None, datacenters.get(e.folder))]
    places = sorted({str(datacenters.get(e.folder)) for e in found})
    if len(places) > 1:
        raise ValueError('datastore %s is in datacenters %s; name one with '
                         '--datacenter' % (datastore, ', '.join(places)))
    return found


def datastore_names(session, entries):
    """Names of the entries' datastores; the moref value when unknown."""
    names = {}
    for value in sorted({e.datastore for e in entries if e.datastore}):
        name = None
        try:
            name = session.invoke_api(
                vim_util, 'get_object_property', session.vim,
                vim_util.get_moref(value, 'Datastore'), 'name')
        except Exception:
            LOG.debug('Could not read the name of datastore %s.', value,
                      exc_info=True)
        names[value] = name if isinstance(name, str) and name else value
    return names


def cells(record, names):
    return tuple(Unknown() if record[name] is None else record[name]
                 for name in names)
