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

"""Client-side counters: SOAP round trips and time per driver phase.

Every vim25 and PBM call of oslo.vmware goes through
``RequestsTransport.send``; wrapping it counts the round trips this process
makes, whoever else uses the same vCenter. Datastore and NFC transfers are
plain HTTP and are not counted. Phases are driver or inventory methods
wrapped on one object; only the outermost wrapped call is timed, so nested
phases are not counted twice.
"""

import collections
import contextlib
import functools
import re
import time

from oslo_vmware import service

_METHOD_RE = re.compile(rb'Body>\s*<(?:[\w-]+:)?(\w+)')


class Measurement(object):

    def __init__(self):
        self.seconds = 0.0
        self.calls = 0
        self.soap_seconds = 0.0
        self.methods = collections.Counter()
        self.phases = collections.defaultdict(float)

    def as_dict(self):
        return {'seconds': self.seconds, 'calls': self.calls,
                'soap_seconds': self.soap_seconds,
                'methods': dict(self.methods), 'phases': dict(self.phases)}


class Probe(object):

    def __init__(self):
        self._current = None
        self._depth = 0
        self._original_send = None

    def install(self):
        original = self._original_send = service.RequestsTransport.send
        probe = self

        def send(transport, request):
            start = time.monotonic()
            try:
                return original(transport, request)
            finally:
                probe._record_call(request.message, time.monotonic() - start)
        service.RequestsTransport.send = send

    def uninstall(self):
        if self._original_send is not None:
            service.RequestsTransport.send = self._original_send
            self._original_send = None

    def _record_call(self, message, seconds):
        current = self._current
        if current is None:
            return
        match = _METHOD_RE.search(message or b'')
        current.calls += 1
        current.soap_seconds += seconds
        current.methods[match.group(1).decode() if match else '?'] += 1

    def wrap(self, obj, names, prefix=''):
        """Time calls of ``obj.<name>`` as phase ``prefix + name``."""
        for name in names:
            original = getattr(obj, name)
            setattr(obj, name, self._timed(prefix + name, original))

    def _timed(self, phase, func):
        @functools.wraps(func)
        def timed(*args, **kwargs):
            current = self._current
            if current is None or self._depth:
                return func(*args, **kwargs)
            self._depth += 1
            start = time.monotonic()
            try:
                return func(*args, **kwargs)
            finally:
                self._depth -= 1
                current.phases[phase] += time.monotonic() - start
        return timed

    @contextlib.contextmanager
    def measure(self, phases=True):
        """Count what the block does; phases=False for concurrent blocks."""
        measurement = Measurement()
        self._current = measurement
        self._depth = 0 if phases else 1
        start = time.monotonic()
        try:
            yield measurement
        finally:
            measurement.seconds = time.monotonic() - start
            self._current = None
            self._depth = 0
