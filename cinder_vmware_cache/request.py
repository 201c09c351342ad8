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

"""Decide whether a create-from-image request asks for the cache.

Three places can ask, most specific first: the volume's metadata, the volume
type's extra specs, the image's properties. The first place that holds a
non-blank value decides; a value that is not a boolean is logged once and
means "no".
"""

import dataclasses

from oslo_log import log as logging
from oslo_utils import strutils

LOG = logging.getLogger(__name__)

METADATA_KEY = 'use_image_cache'
EXTRA_SPEC_KEY = 'vmware:use_image_cache'
IMAGE_PROPERTY_KEY = 'vmware_use_image_cache'

# Boolean extra specs are often written in the scheduler's "<is> True" form.
_EXTRA_SPEC_BOOL_PREFIX = '<is>'
_MAX_LOGGED_VALUE = 64


RESULT_KEY = 'image_cache_result'
RESULT_HIT = 'hit'
RESULT_FILLED = 'filled'


@dataclasses.dataclass(frozen=True)
class Request:
    requested: bool
    source: str = None
    value: str = None
    invalid: bool = False


def not_used(reason):
    """The result value of a request that asked but was not served."""
    return 'not used: %s' % reason


def volume_metadata(volume):
    """The volume's user metadata as a dict; {} when it cannot be read."""
    try:
        return dict(volume['metadata'] or {})
    except (KeyError, TypeError, AttributeError, NotImplementedError):
        return {}


def with_result(volume, model_update, result):
    """``model_update`` that also records ``result`` in the volume metadata.

    cinder replaces a volume's whole metadata with a model update's, so the
    volume's own keys are carried over; a user's own ``image_cache_result``
    is never changed.
    """
    metadata = dict(volume_metadata(volume),
                    **(model_update or {}).get('metadata') or {})
    if metadata.get(RESULT_KEY, result) != result:
        LOG.debug("Volume metadata already holds %s; not recording the "
                  "image cache result.", RESULT_KEY)
        return model_update
    metadata[RESULT_KEY] = result
    return dict(model_update or {}, metadata=metadata)


def _parse(raw, source):
    value = str(raw).strip()
    if source == EXTRA_SPEC_KEY and value.lower().startswith(
            _EXTRA_SPEC_BOOL_PREFIX):
        value = value[len(_EXTRA_SPEC_BOOL_PREFIX):].strip()
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError:
        shown = value if len(value) <= _MAX_LOGGED_VALUE else (
            value[:_MAX_LOGGED_VALUE] + '...')
        LOG.warning("Ignoring %(key)s=%(value)r: not a boolean; the image "
                    "cache is not used for this volume.",
                    {'key': source, 'value': shown})
        return None


def resolve(volume_metadata=None, extra_specs=None, image_properties=None):
    """Return the Request that the first non-blank source makes."""
    sources = ((METADATA_KEY, volume_metadata),
               (EXTRA_SPEC_KEY, extra_specs),
               (IMAGE_PROPERTY_KEY, image_properties))
    for key, mapping in sources:
        raw = (mapping or {}).get(key)
        if raw is None or not str(raw).strip():
            continue
        parsed = _parse(raw, key)
        return Request(bool(parsed), key, str(raw), invalid=parsed is None)
    return Request(False)
