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

"""Private tooz backends for tests and the benchmark: redis and etcd.

Each runs from its Debian package on loopback, on free ports, with its
files in a temporary directory that stop() removes.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request


def tail(path, lines=30):
    """The last ``lines`` lines of a log file ('' when there is none)."""
    try:
        with open(path, 'rb') as log:
            text = log.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(text.splitlines()[-lines:])


def close_quietly(*streams):
    """Close a process's pipes and log files; one already closed is fine."""
    for stream in streams:
        try:
            stream.close()
        except OSError:
            pass


def free_port():
    """A local TCP port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class _LoopbackServer(object):
    """A private server from a Debian package, on loopback, on free ports.

    Its files (data, log) live in a temporary directory removed by stop().
    Subclasses say how to run it and how to tell that it answers.
    """

    #: The executable and the Debian package that ships it.
    program = None
    package = None

    def __init__(self):
        self.binary = shutil.which(self.program)
        self.port = None
        self.proc = None
        self.dir = None

    @property
    def url(self):
        raise NotImplementedError

    def _command(self):
        raise NotImplementedError

    def _answers(self):
        raise NotImplementedError

    def start(self, timeout=15):
        if not self.binary:
            raise RuntimeError(
                '%s is not installed; fix: run tools/test.sh as root, or '
                'apt-get install %s' % (self.program, self.package))
        self.dir = tempfile.mkdtemp(prefix='cvc-%s-' % self.program)
        self.port = free_port()
        self.log_path = os.path.join(self.dir, '%s.log' % self.program)
        self.log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(
            self._command(), env=self._env(), cwd=self.dir,
            stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self._answers():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        log = self.log_tail()
        self.stop()
        raise RuntimeError('%s did not start on port %s; its log:\n%s' %
                           (self.program, self.port, log))

    def _env(self):
        return None

    def log_tail(self, lines=30):
        return tail(self.log_path, lines)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.dir:
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class RedisServer(_LoopbackServer):
    """A private redis-server (Debian package) on loopback, no persistence."""

    program = package = 'redis-server'

    @property
    def version(self):
        """The version redis-server reports, e.g. 7.0.15 ('?': unknown)."""
        try:
            words = subprocess.run(
                [self.binary, '--version'], capture_output=True, text=True,
                timeout=10).stdout.split()
        except (OSError, subprocess.SubprocessError):
            return '?'
        return next((w[2:] for w in words if w.startswith('v=')), '?')

    @property
    def url(self):
        return 'redis://127.0.0.1:%d' % self.port

    def _command(self):
        return [self.binary, '--port', str(self.port), '--bind', '127.0.0.1',
                '--save', '', '--appendonly', 'no', '--dir', self.dir,
                '--daemonize', 'no']

    def _answers(self):
        with socket.create_connection(('127.0.0.1', self.port),
                                      timeout=1) as sock:
            sock.sendall(b'PING\r\n')
            return sock.recv(64).startswith(b'+PONG')


class EtcdServer(_LoopbackServer):
    """A private one-member etcd (Debian package etcd-server) on loopback.

    Client and peer URLs on free ports, data in the temporary directory.
    Used through tooz's etcd3gw driver, i.e. etcd's HTTP/JSON gateway; the
    URL names the gateway's API version, /v3 since etcd 3.4 (etcd3gw
    would otherwise ask the server's version first).
    """

    program = 'etcd'
    package = 'etcd-server'

    def __init__(self):
        super().__init__()
        self.peer_port = None

    @property
    def url(self):
        return 'etcd3+http://127.0.0.1:%d?api_version=v3' % self.port

    def _command(self):
        # The client port is taken by start(); the peer port must differ.
        while True:
            self.peer_port = free_port()
            if self.peer_port != self.port:
                break
        client = 'http://127.0.0.1:%d' % self.port
        peer = 'http://127.0.0.1:%d' % self.peer_port
        return [self.binary, '--name', 'cvc',
                '--data-dir', os.path.join(self.dir, 'data'),
                '--listen-client-urls', client,
                '--advertise-client-urls', client,
                '--listen-peer-urls', peer,
                '--initial-advertise-peer-urls', peer,
                '--initial-cluster', 'cvc=%s' % peer,
                '--initial-cluster-state', 'new',
                '--initial-cluster-token', 'cvc-%d' % self.port,
                '--logger', 'zap', '--log-outputs', 'stderr']

    def _env(self):
        # ETCD_* variables would configure it too: only the flags count.
        return {key: value for key, value in os.environ.items()
                if not key.startswith('ETCD_')}

    def _answers(self):
        url = 'http://127.0.0.1:%d/health' % self.port
        with urllib.request.urlopen(url, timeout=1) as response:
            return json.load(response).get('health') == 'true'
