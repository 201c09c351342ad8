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
import socket
import subprocess
import sys
import tempfile
import textwrap

import fixtures
from oslotest import base


LOG_FORMAT = '%(asctime)s %(levelname)s %(name)s %(message)s'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


class TestCase(base.BaseTestCase):
    """Base of our tests: oslotest's, with its fixtures.

    tox sets ``OS_LOG_CAPTURE`` (the test's logs become a detail of the
    test), ``OS_STDOUT_CAPTURE``/``OS_STDERR_CAPTURE`` and
    ``OS_TEST_TIMEOUT``.
    """


def free_ports(count):
    """``count`` distinct local TCP ports that nothing listens on."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(('127.0.0.1', 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port():
    return free_ports(1)[0]


def backend_section(name, **values):
    lines = ['[%s]' % name]
    lines += ['%s = %s' % item for item in values.items()]
    return '\n'.join(lines) + '\n'


class ConfigDir(fixtures.Fixture):
    """A temporary directory to write cinder.conf files into."""

    def _setUp(self):
        self.path = self.useFixture(fixtures.TempDir()).path

    def write(self, text, name='cinder.conf'):
        path = os.path.join(self.path, name)
        with open(path, 'w') as out:
            out.write(textwrap.dedent(text))
        return path

    def cinder_conf(self, enabled='be1', sections=None, extra=''):
        text = '[DEFAULT]\nenabled_backends = %s\n\n' % enabled
        text += '[coordination]\nbackend_url = file://%s\n\n' % (
            os.path.join(self.path, 'locks'))
        for name, values in (sections or {}).items():
            text += backend_section(name, **values) + '\n'
        return self.write(text + extra)


def run_cli(args, timeout=120,
            program=('-m', 'cinder_vmware_cache.cmd.image_cache')):
    """The operator command in a fresh interpreter: (code, stdout, stderr).

    :param program: what the interpreter runs before ``args``: the
        command's module, or ``('-c', CODE)`` for code that calls its main.
    """
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                  if p])
    proc = subprocess.run(
        [sys.executable] + list(program) + list(args), cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr
