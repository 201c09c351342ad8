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

"""Where a volume that asks for the cache goes: cache-aware placement.

The stock ``DatastoreSelector`` decides which datastores may hold a volume
and ranks them (most connected hosts, then least used space). The cache
keeps that set and that ranking and changes one thing: with
``image_cache_placement = prefer-cached`` it ranks only the datastores that
hold a ready copy of the image, so the clone stays inside one datastore
(offloaded to the array) instead of crossing datastores through the hosts.
Balancing is kept by a utilisation bound: a datastore with a copy above
``image_cache_placement_max_utilization`` percent is not preferred while the
stock choice is below it. Pure rules, testable without cinder or vCenter.
"""

import dataclasses

from oslo_vmware import vim_util


@dataclasses.dataclass(frozen=True)
class Candidates:
    """The stock selection's accepted datastores for one volume.

    ``datastores`` maps datastore refs to their ``summary`` and ``host``
    properties, as the stock selector reads them; ``hosts`` are the valid
    host refs (None: any host).
    """

    datastores: dict
    hosts: list = None


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a backing is created.

    What the stock ``_select_ds_for_volume`` returns, plus the datacenter,
    whose cache folder holds the copies.
    """

    host: object
    resource_pool: object
    folder: object
    summary: object
    datacenter: object

    @property
    def datastore(self):
        """The datastore's moref value."""
        return vim_util.get_moref_value(self.summary.datastore)


def utilization(summary):
    """Percentage of a datastore that is used (100 when it is unknown)."""
    if not summary.capacity:
        return 100.0
    return 100.0 * (1 - summary.freeSpace / float(summary.capacity))


def preferred(candidates, holding, stock_choice, max_utilization):
    """The candidates to rank instead of all, or {} to keep the stock choice.

    :param candidates: a Candidates.
    :param holding: moref values of the datastores holding a ready copy.
    :param stock_choice: the stock Placement among all candidates.
    :param max_utilization: image_cache_placement_max_utilization.
    """
    if stock_choice.datastore in holding:
        return {}
    bounded = utilization(stock_choice.summary) <= max_utilization
    return {ref: props for ref, props in candidates.datastores.items()
            if vim_util.get_moref_value(ref) in holding and not (
                bounded and
                utilization(props['summary']) > max_utilization)}


def by_name(candidates, names):
    """The candidates named ``names``: {name: {ref: props}}.

    A name may match none (not eligible) or several datastores (names
    repeat across datacenters); the caller decides.
    """
    found = {name: {} for name in names}
    for ref, props in candidates.datastores.items():
        name = props['summary'].name
        if name in found:
            found[name][ref] = props
    return found
