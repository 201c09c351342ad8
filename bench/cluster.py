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

The redis-server is ``cinder_vmware_cache.testing.servers.RedisServer``
(also the reliability suite's); ``Worker`` runs ``bench/worker.py`` and
talks to it over JSON lines (see that module for the protocol).
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import eventlet
from eventlet import tpool

from cinder_vmware_cache.testing import servers

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
        return servers.tail(self.log_path, 40)

    def close(self):
        """Ask it to quit (it stops its coordinator); kill it if it hangs."""
        if self.proc.poll() is None:
            try:
                self.send('quit')
                self.proc.wait(30)
            except (WorkerError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        servers.close_quietly(self.proc.stdin, self.proc.stdout, self._log)
