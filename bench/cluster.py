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

"""Two cinder-volume-like processes on a shared redis, seen from the bench.

``RedisServer`` runs a private redis-server (Debian package) on loopback
with no persistence; ``Worker`` runs ``bench/worker.py`` and talks to it
over JSON lines (see that module for the protocol).
"""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import eventlet
from eventlet import tpool

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def unavailable():
    """(why, fix) when two processes on redis cannot run here, else None."""
    if not shutil.which('redis-server'):
        return ('redis-server is missing',
                'apt-get install redis-server (tools/test.sh -e bench as '
                'root installs it)')
    if importlib.util.find_spec('redis') is None:
        return ('the python package redis is missing',
                'pip install "redis>=4.0.0" (bench/requirements.txt; '
                'tools/test.sh -e bench installs it)')
    return None


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class RedisServer(object):
    """A private redis-server on a free loopback port, no persistence."""

    def __init__(self):
        self.binary = shutil.which('redis-server')
        self.port = self.proc = self.dir = None

    @property
    def url(self):
        return 'redis://127.0.0.1:%d' % self.port

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

    def start(self, timeout=15):
        if not self.binary:
            raise RuntimeError('%s; fix: %s' % unavailable())
        self.dir = tempfile.mkdtemp(prefix='cvc-bench-redis-')
        self.port = _free_port()
        self.log_path = os.path.join(self.dir, 'redis.log')
        with open(self.log_path, 'wb') as log:
            self.proc = subprocess.Popen(
                [self.binary, '--port', str(self.port), '--bind',
                 '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir',
                 self.dir, '--daemonize', 'no'],
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection(('127.0.0.1', self.port),
                                              timeout=1) as sock:
                    sock.sendall(b'PING\r\n')
                    if sock.recv(64).startswith(b'+PONG'):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        log = _tail(self.log_path)
        self.stop()
        raise RuntimeError('redis-server did not start on port %s; its '
                           'log:\n%s' % (self.port, log))

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
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def _tail(path, lines=40):
    try:
        with open(path, 'rb') as log:
            text = log.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(text.splitlines()[-lines:])


class WorkerError(Exception):
    pass


class Worker(object):
    """One ``python -m bench.worker JOB`` process; its log in ``log_dir``."""

    def __init__(self, name, job, log_dir):
        self.name = name
        self.log_path = os.path.join(log_dir, 'worker-%s.log' % name)
        self._log = open(self.log_path, 'wb')
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            [TOP] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                     if p])
        env['PYTHONWARNINGS'] = 'ignore'
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'bench.worker', json.dumps(job)],
            cwd=TOP, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log)

    def send(self, line):
        try:
            self.proc.stdin.write(line.encode() + b'\n')
            self.proc.stdin.flush()
        except OSError as exc:
            raise WorkerError('worker %s: cannot write to it (%s); its '
                              'log:\n%s' % (self.name, exc, self.log_tail()))

    def expect(self, event, timeout=300):
        """The worker's next JSON event, which must be ``event``."""
        with eventlet.Timeout(timeout, False):
            while True:
                # A blocking pipe read would stop every greenthread here.
                line = tpool.execute(self.proc.stdout.readline)
                if not line:
                    break
                try:
                    got = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(got, dict) or 'event' not in got:
                    continue
                if got['event'] != event:
                    raise WorkerError('worker %s: %s instead of %s: %s'
                                      % (self.name, got['event'], event,
                                         got.get('error', got)))
                return got
        raise WorkerError('worker %s gave no %s event (exit status %s); its '
                          'log:\n%s' % (self.name, event, self.proc.poll(),
                                        self.log_tail()))

    def log_tail(self):
        return _tail(self.log_path)

    def close(self):
        """Ask it to quit (it stops its coordinator); kill it if it hangs."""
        if self.proc.poll() is None:
            try:
                self.send('quit')
                self.proc.wait(30)
            except (WorkerError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self._log):
            try:
                stream.close()
            except OSError:
                pass
