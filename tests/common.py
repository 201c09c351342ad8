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

"""What the suites share: a test's logs stay off the screen.

Many tests provoke failures on purpose, and cinder, oslo.vmware and suds
log those with tracebacks. A test's logs and warnings become a detail of
the test, shown when it fails and not when it passes; what is logged
outside any test (class set-up, background threads) goes to the file named
by ``CVC_TEST_LOG`` (tox sets it in the env's log folder).
"""

import logging
import os
import tempfile

import fixtures
import testtools


LOG_FORMAT = '%(asctime)s %(levelname)s %(name)s %(message)s'


def prepare_process():
    """Import cinder as its tests do, with logs and warnings off the screen.

    ``cinder.tests.unit`` applies cinder's eventlet monkey patching and
    registers the versioned objects, before oslo_vmware or cinder.volume
    modules are imported. Importing cinder warns that eventlet is
    deprecated, and leaves a root log handler on stderr: warnings go to
    logging, and logging to the test log file instead.
    """
    path = os.environ.get('CVC_TEST_LOG') or os.path.join(
        tempfile.gettempdir(), 'cinder-vmware-cache-tests.log')
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    import cinder.tests.unit  # noqa: F401
    root.handlers[:] = [handler]


class TestCase(testtools.TestCase):
    """Base of our tests: logs of the test are captured as its detail."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.FakeLogger(level=logging.INFO,
                                            format=LOG_FORMAT))
