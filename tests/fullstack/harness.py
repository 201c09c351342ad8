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

"""Start a small OpenStack on this machine: RabbitMQ, Glance and Cinder.

Every service is a separate process started from files written here into
one temporary directory (configuration, databases, logs, image store):

=================  ==========================================================
epmd, RabbitMQ     Debian's rabbitmq-server, run as a private node on
                   127.0.0.1 with its own epmd port, data and log dirs
glance-api         glance 33 from PyPI, ``glance.wsgi.api:application``
                   served by tests/fullstack/wsgi_server.py; file store,
                   sqlite database
cinder-api         ``cinder-api`` (cinder 29 from PyPI), sqlite database
cinder-scheduler   ``scheduler_host_manager`` = our HostManager
cinder-volume      one backend enabled exactly as the README says, on the
                   vCenter named by VCENTER_* (see cinder_vmware_cache.
                   testing.vcenter)
=================  ==========================================================

Both APIs run their ``keystone`` pipeline with tests/fullstack/
trusted_token.py in the place of keystonemiddleware (see there why), so the
token ``<user>:<project>`` identifies a caller to cinder and, through
cinder, to Glance.

The commands are those of the Python environment running the tests (its
``bin`` directory); rabbitmq-server and epmd come from Debian packages.
Nothing here imports cinder or glance.
"""

import contextlib
import dataclasses
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

from cinder_vmware_cache.testing import disk_images
from tests import common

RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'
TOP_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BIN_DIR = os.path.dirname(os.path.abspath(sys.executable))
LOG_TAIL_LINES = 150
ADMIN_USER = 'admin'


class StackError(Exception):
    """A service did not start, or a wait ran out."""


# ---- small helpers ---------------------------------------------------------
def missing_tools():
    """What this machine lacks to run the stack (empty: nothing)."""
    missing = []
    if not os.access(RABBITMQ_SERVER, os.X_OK):
        missing.append('%s (Debian package rabbitmq-server)' %
                       RABBITMQ_SERVER)
    if not shutil.which('epmd'):
        missing.append('epmd (Debian package erlang-base)')
    if not shutil.which('qemu-img'):
        missing.append('qemu-img (Debian package qemu-utils)')
    for name in ('cinder-api', 'cinder-scheduler', 'cinder-volume',
                 'cinder-manage', 'glance-manage', 'openstack', 'cinder',
                 'cinder-vmware-image-cache'):
        if not command(name):
            missing.append('%s (PyPI)' % name)
    return missing


def new_project_id():
    # cinder's URLs accept Keystone-like ids only ([0-9a-f-]+).
    return uuid.uuid4().hex


def command(name):
    """Path of a console script of this Python environment, else of PATH."""
    path = os.path.join(BIN_DIR, name)
    return path if os.access(path, os.X_OK) else shutil.which(name)


def port_open(port, host='127.0.0.1'):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout, what, interval=0.5):
    """Call ``predicate`` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise StackError('timed out after %ss waiting for %s' %
                             (timeout, what))
        time.sleep(interval)


def tail(path, lines=LOG_TAIL_LINES):
    try:
        with open(path, errors='replace') as stream:
            return ''.join(stream.readlines()[-lines:])
    except OSError as exc:
        return '(cannot read %s: %s)\n' % (path, exc)


def write(path, text):
    with open(path, 'w') as stream:
        stream.write(text)
    return path


def ini(sections):
    """Render {section: {option: value}} as an ini file."""
    out = []
    for section, options in sections.items():
        out.append('[%s]' % section)
        out.extend('%s = %s' % (k, v) for k, v in options.items())
        out.append('')
    return '\n'.join(out)


# ---- processes -------------------------------------------------------------
class Service(object):
    """One service process, in its own process group, logging to a file."""

    def __init__(self, name, argv, env, log_dir, cwd):
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.output = os.path.join(log_dir, '%s.out' % name)
        self.proc = None

    def start(self):
        with open(self.output, 'ab') as out:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                start_new_session=True)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if not self.alive():
            raise StackError('%s exited with %s; see %s' % (
                self.name, self.proc.returncode if self.proc else None,
                self.output))

    def signal_group(self, signum):
        # The group is the one start() created for this process (its pid):
        # the service and the workers it forked, nothing else.
        try:
            os.killpg(self.proc.pid, signum)
        except ProcessLookupError:
            pass

    def stop(self, timeout=20):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait(10)
        # Workers left behind by a parent that died first.
        self.signal_group(signal.SIGKILL)


@dataclasses.dataclass
class CliResult:
    argv: list
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self):
        return json.loads(self.stdout)


class Cli(object):
    """The ``openstack`` and ``cinder`` commands, as one user of a project.

    ``openstack`` authenticates with keystoneauth's ``admin_token`` plugin
    (a fixed token and endpoint, no Keystone) from a clouds.yaml entry that
    also names the image and block-storage endpoints. cinderclient's
    ``noauth`` plugin does not work there (openstacksdk: "'CinderNoAuthPlugin'
    object has no attribute '_discovery_cache'"), but it is what ``cinder``
    needs (it does not take ``--os-token`` with ``admin_token``); it sends
    the same ``<user>:<project>`` token.
    """

    def __init__(self, stack, user, project):
        self.stack = stack
        self.user = user
        self.project = project
        self.cloud = '%s-%s' % (user, project)

    @property
    def token(self):
        return '%s:%s' % (self.user, self.project)

    @property
    def volume_endpoint(self):
        return '%s/v3/%s' % (self.stack.cinder_url, self.project)

    def cloud_entry(self):
        return {
            'auth_type': 'admin_token',
            'auth': {'token': self.token, 'endpoint': self.volume_endpoint},
            'image_endpoint_override': self.stack.glance_url,
            'block_storage_endpoint_override': self.volume_endpoint,
            'volume_api_version': '3',
            'image_api_version': '2',
        }

    def openstack(self, *args, check=True, json_output=True, timeout=120):
        argv = [command('openstack'), '--os-cloud', self.cloud] + list(args)
        if json_output:
            argv += ['-f', 'json']
        result = self.stack.run(argv, check, timeout)
        return result.json() if (json_output and not result.returncode
                                 and result.stdout.strip()) else result

    def cinder(self, *args, check=True, timeout=120):
        argv = [command('cinder'), '--os-auth-type', 'noauth',
                '--os-user-id', self.user, '--os-project-id', self.project,
                '--os-endpoint', '%s/v3' % self.stack.cinder_url,
                '--os-volume-api-version', '3.0'] + list(args)
        return self.stack.run(argv, check, timeout)

    def get(self, path):
        """GET from the cinder API with this user's token (for polling)."""
        req = urllib.request.Request(
            self.volume_endpoint + path,
            headers={'X-Auth-Token': self.token,
                     'Accept': 'application/json'})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())


# ---- the stack -------------------------------------------------------------
class Stack(object):

    def __init__(self, vcenter, backend=None, cache_options=None,
                 stats_interval=3):
        self.vcenter = vcenter
        self.token = uuid.uuid4().hex[:6]
        self.backend = backend or 'fs%s' % self.token
        self.cache_options = dict(cache_options or {})
        self.stats_interval = stats_interval
        self.top = tempfile.mkdtemp(prefix='cvc-fullstack-')
        self.logs = os.path.join(self.top, 'logs')
        os.makedirs(self.logs)
        (self.epmd_port, self.amqp_port, self.dist_port, self.glance_port,
         self.cinder_port) = common.free_ports(5)
        self.glance_url = 'http://127.0.0.1:%d' % self.glance_port
        self.cinder_url = 'http://127.0.0.1:%d' % self.cinder_port
        self.transport_url = 'rabbit://guest:guest@127.0.0.1:%d/' % (
            self.amqp_port)
        self.services = []
        self.clis = {}
        self.transcript = os.path.join(self.logs, 'cli.log')
        self.admin = self.user(ADMIN_USER, new_project_id())

    def path(self, *parts):
        return os.path.join(self.top, *parts)

    # ---- users ----------------------------------------------------------
    def user(self, name, project):
        cli = Cli(self, name, project)
        self.clis[cli.cloud] = cli
        self._write_clouds_yaml()
        return cli

    def _write_clouds_yaml(self):
        # JSON is YAML: no PyYAML import needed here.
        self.clouds_yaml = write(self.path('clouds.yaml'), json.dumps(
            {'clouds': {c.cloud: c.cloud_entry()
                        for c in self.clis.values()}}, indent=2))

    def run(self, argv, check=True, timeout=120):
        """Run a client command against the stack; keep a transcript."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('OS_', 'CINDER_'))}
        env['OS_CLIENT_CONFIG_FILE'] = self.clouds_yaml
        env['PYTHONWARNINGS'] = 'ignore'
        start = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                              timeout=timeout, stdin=subprocess.DEVNULL,
                              cwd=self.top)
        result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr,
                           time.monotonic() - start)
        self.record(result)
        if check and proc.returncode:
            raise StackError('%s failed (%d):\n%s%s' % (
                ' '.join(argv), proc.returncode, proc.stdout, proc.stderr))
        return result

    def record(self, result):
        with open(self.transcript, 'a') as out:
            out.write('$ %s\n# rc=%d, %.1fs\n%s%s\n' % (
                ' '.join([os.path.basename(result.argv[0])] +
                         result.argv[1:]),
                result.returncode, result.seconds, result.stdout,
                result.stderr))

    # ---- environment of the services ------------------------------------
    def service_env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('OS_', 'RABBITMQ_', 'ERL_'))}
        # The services import tests.fullstack.trusted_token (paste filter).
        env['PYTHONPATH'] = os.pathsep.join(
            p for p in (TOP_DIR, os.environ.get('PYTHONPATH')) if p)
        env['PYTHONWARNINGS'] = 'ignore::DeprecationWarning'
        env['HOME'] = self.path('home')
        env.update(extra)
        return env

    def rabbitmq_env(self):
        base = self.path('rabbitmq')
        return self.service_env(
            HOME=base,
            RABBITMQ_CONF_ENV_FILE=os.path.join(base, 'rabbitmq-env.conf'),
            RABBITMQ_NODENAME='cvc%s@localhost' % self.token,
            RABBITMQ_NODE_IP_ADDRESS='127.0.0.1',
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=os.path.join(base, 'rabbitmq'),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(base, 'plugins'),
            RABBITMQ_MNESIA_BASE=os.path.join(base, 'mnesia'),
            RABBITMQ_LOG_BASE=os.path.join(base, 'log'),
            RABBITMQ_PID_FILE=os.path.join(base, 'rabbitmq.pid'),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                '-kernel inet_dist_use_interface {127,0,0,1}'),
            ERL_EPMD_ADDRESS='127.0.0.1',
            ERL_EPMD_PORT=str(self.epmd_port))

    # ---- configuration files ---------------------------------------------
    def write_configs(self):
        for sub in ('home', 'rabbitmq', 'state', 'locks', 'coordination',
                    'glance/images', 'glance/staging', 'glance/tasks'):
            os.makedirs(self.path(sub), exist_ok=True)
        self._write_rabbitmq_config()
        self._write_glance_config()
        self._write_cinder_config()

    def _write_rabbitmq_config(self):
        base = self.path('rabbitmq')
        write(os.path.join(base, 'rabbitmq.conf'),
              'listeners.tcp.default = %d\n'
              'loopback_users.guest = true\n' % self.amqp_port)
        write(os.path.join(base, 'plugins'), '[].\n')
        write(os.path.join(base, 'rabbitmq-env.conf'), '')

    def _paste(self, installed, target, replacements):
        with open(installed) as stream:
            text = stream.read()
        for old, new in replacements:
            if old not in text:
                raise StackError('%s does not contain %r' % (installed, old))
            text = text.replace(old, new)
        return write(target, text)

    def installed_config(self, project, name):
        """A file that the package installs under <prefix>/etc/<project>."""
        for prefix in (sys.prefix, os.path.dirname(BIN_DIR), '/usr/local',
                       '/usr'):
            path = os.path.join(prefix, 'etc', project, name)
            if os.path.exists(path):
                return path
        raise StackError('%s/%s is not installed' % (project, name))

    def _write_glance_config(self):
        paste = self._paste(
            self.installed_config('glance', 'glance-api-paste.ini'),
            self.path('glance', 'glance-api-paste.ini'),
            [('keystonemiddleware.auth_token:filter_factory',
              'tests.fullstack.trusted_token:filter_factory'),
             ('/etc/glance/healthcheck_disable',
              self.path('glance', 'healthcheck_disable'))])
        write(self.path('glance', 'glance-api.conf'), ini({
            'DEFAULT': {
                'debug': 'true',
                'log_file': os.path.join(self.logs, 'glance-api.log'),
                'enabled_backends': 'fs:file',
                'worker_self_reference_url': self.glance_url,
            },
            'glance_store': {'default_backend': 'fs'},
            'fs': {'filesystem_store_datadir': self.path('glance', 'images')},
            'os_glance_staging_store': {
                'filesystem_store_datadir': self.path('glance', 'staging')},
            'os_glance_tasks_store': {
                'filesystem_store_datadir': self.path('glance', 'tasks')},
            'database': {'connection': 'sqlite:///%s' % self.path(
                'glance', 'glance.sqlite')},
            'paste_deploy': {'flavor': 'keystone', 'config_file': paste},
            'oslo_concurrency': {'lock_path': self.path('locks')},
        }))

    def backend_section(self):
        """The backend's section: the README's two lines, then the rest."""
        section = {
            'volume_driver':
                'cinder_vmware_cache.driver.VMwareVcVmdkCacheDriver',
            'enable_image_cache': 'true',
            'volume_backend_name': self.backend,
            'vmware_enable_volume_stats': 'true',
            'vmware_task_poll_interval': '0.5',
        }
        section.update((k, v) for k, v in self.vcenter.items() if v)
        section.update(self.cache_options)
        return section

    def _write_cinder_config(self):
        paste = self._paste(
            self.installed_config('cinder', 'api-paste.ini'),
            self.path('api-paste.ini'),
            [('keystonemiddleware.auth_token:filter_factory',
              'tests.fullstack.trusted_token:filter_factory'),
             ('/etc/cinder/healthcheck_disable',
              self.path('healthcheck_disable'))])
        self.cinder_conf = write(self.path('cinder.conf'), ini({
            'DEFAULT': {
                'debug': 'true',
                'host': 'fullstack',
                'my_ip': '127.0.0.1',
                'state_path': self.path('state'),
                'auth_strategy': 'keystone',
                'api_paste_config': paste,
                'resource_query_filters_file': self.installed_config(
                    'cinder', 'resource_filters.json'),
                'osapi_volume_listen': '127.0.0.1',
                'osapi_volume_listen_port': self.cinder_port,
                'osapi_volume_workers': 1,
                # One request at a time in cinder-api: two of its greenthreads
                # in sqlite transactions at once fail with "database is
                # locked" (a wait in sqlite would block the other one too).
                'wsgi_default_pool_size': 1,
                'transport_url': self.transport_url,
                'glance_api_servers': self.glance_url,
                'enabled_backends': self.backend,
                'scheduler_host_manager':
                    'cinder_vmware_cache.scheduler.host_manager.HostManager',
                'backend_stats_polling_interval': self.stats_interval,
                # Run periodic tasks every second, from the start, so that
                # stats are published every backend_stats_polling_interval.
                'periodic_interval': 1,
                'periodic_fuzzy_delay': 0,
                'scheduler_driver_init_wait_time': 30,
            },
            # sqlite has one writer: the services wait for each other's
            # write lock (BEGIN IMMEDIATE, up to 30 s) instead of failing.
            'database': {'connection': 'sqlite:///%s?timeout=30&'
                                       'isolation_level=IMMEDIATE' %
                                       self.path('cinder.sqlite')},
            'oslo_concurrency': {'lock_path': self.path('locks')},
            'coordination': {'backend_url': 'file://%s' % self.path(
                'coordination')},
            # Operators' monitoring reads these from RabbitMQ.
            'oslo_messaging_notifications': {'driver': 'messagingv2'},
            # cinder's own Glance credentials (warming, deleted images):
            # the admin token of trusted_token.py, as keystoneauth sends it.
            'service_user': {
                'auth_type': 'admin_token',
                'endpoint': self.glance_url,
                'token': '%s:%s' % (ADMIN_USER, self.admin.project),
            },
            self.backend: self.backend_section(),
        }))

    # ---- start and stop --------------------------------------------------
    def _service(self, name, argv, env=None, cwd=None):
        svc = Service(name, argv, env or self.service_env(), self.logs,
                      cwd or self.top)
        self.services.append(svc)
        return svc.start()

    def _run_once(self, name, argv, env=None):
        log = os.path.join(self.logs, '%s.out' % name)
        with open(log, 'ab') as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.top,
                                    env=env or self.service_env())

    def start(self):
        started = time.monotonic()
        self.write_configs()
        epmd = self._service('epmd', [
            shutil.which('epmd'), '-port', str(self.epmd_port),
            '-address', '127.0.0.1'])
        wait_for(lambda: epmd.check_alive() or port_open(self.epmd_port), 10,
                 'epmd')
        rabbit = self._service('rabbitmq', [RABBITMQ_SERVER],
                               env=self.rabbitmq_env(),
                               cwd=self.path('rabbitmq'))
        # Databases meanwhile (RabbitMQ takes a few seconds to boot).
        glance_env = self.service_env(
            OS_GLANCE_CONFIG_DIR=self.path('glance'))
        syncs = [
            ('cinder-manage', self._run_once('cinder-manage', [
                command('cinder-manage'), '--config-file', self.cinder_conf,
                'db', 'sync'])),
            ('glance-manage', self._run_once('glance-manage', [
                command('glance-manage'), '--config-file',
                self.path('glance', 'glance-api.conf'), 'db_sync'],
                env=glance_env)),
        ]
        for name, proc in syncs:
            if proc.wait(120):
                raise StackError('%s db sync failed; see %s' % (
                    name, os.path.join(self.logs, name + '.out')))
        glance = self._service('glance-api', [
            sys.executable, '-m', 'tests.fullstack.wsgi_server', '127.0.0.1',
            str(self.glance_port), 'glance.wsgi.api:application'],
            env=glance_env)
        wait_for(lambda: rabbit.check_alive() or port_open(self.amqp_port),
                 60, 'RabbitMQ on port %d' % self.amqp_port)
        cinder = [
            self._service(name, [command(name), '--config-file',
                                 self.cinder_conf, '--log-file',
                                 os.path.join(self.logs, name + '.log')])
            for name in ('cinder-api', 'cinder-scheduler', 'cinder-volume')]
        wait_for(lambda: glance.check_alive() or self._http_ok(
            self.glance_url + '/healthcheck'), 60, 'glance-api')
        wait_for(lambda: cinder[0].check_alive() or self._http_ok(
            self.cinder_url + '/'), 60, 'cinder-api')
        self.wait_for_pool(lambda caps: True, 'the backend to report stats')
        self.startup_seconds = time.monotonic() - started

    def _http_ok(self, url):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status < 400
        except urllib.error.HTTPError as exc:
            return exc.code < 400
        except OSError:
            return False

    def check_services(self):
        for svc in self.services:
            svc.check_alive()

    def pools(self):
        """The scheduler's pools (name: capabilities), over HTTP."""
        self.check_services()
        try:
            data = self.admin.get('/scheduler-stats/get_pools?detail=True')
        except (OSError, http.client.HTTPException, ValueError):
            # Not answering yet, or an answer cut short while it starts.
            return {}
        return {p['name']: p.get('capabilities', {})
                for p in data.get('pools', [])}

    def pool_name(self):
        return 'fullstack@%s#%s' % (self.backend, self.backend)

    def wait_for_pool(self, predicate, what, timeout=90):
        """Wait until the scheduler's pool of the backend satisfies it."""
        def check():
            caps = self.pools().get(self.pool_name())
            return caps if caps and predicate(caps) else None
        return wait_for(check, timeout, what, interval=1)

    def service(self, name):
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)

    @contextlib.contextmanager
    def paused(self, name):
        """Freeze a service (SIGSTOP to its group) inside the block."""
        svc = self.service(name)
        svc.check_alive()
        svc.signal_group(signal.SIGSTOP)
        try:
            yield svc
        finally:
            svc.signal_group(signal.SIGCONT)

    def stop(self):
        for svc in reversed(self.services):
            try:
                svc.stop()
            except Exception as exc:  # keep stopping the others
                sys.stderr.write('could not stop %s: %s\n' % (svc.name, exc))

    def log_report(self, lines=LOG_TAIL_LINES):
        """The tails of every log, for a failure report."""
        parts = []
        for name in sorted(os.listdir(self.logs)):
            path = os.path.join(self.logs, name)
            parts.append('==== %s (last %d lines) ====\n%s' % (
                path, lines, tail(path, lines)))
        rabbit_log = self.path('rabbitmq', 'log')
        if os.path.isdir(rabbit_log):
            for name in sorted(os.listdir(rabbit_log)):
                path = os.path.join(rabbit_log, name)
                if os.path.isfile(path):
                    parts.append('==== %s ====\n%s' % (path,
                                                       tail(path, 40)))
        return '\n'.join(parts)

    def remove(self):
        shutil.rmtree(self.top, ignore_errors=True)

    def make_vmdk(self, size_bytes):
        """A streamOptimized vmdk image of ``size_bytes`` random data.

        Glance inspects uploads (``require_image_format_match``), so a vmdk
        image must really be one; qemu-img writes it.
        """
        return disk_images.make_vmdk(self.top, size_bytes, 'streamOptimized')

    def make_empty_vmdk(self, virtual_bytes):
        """A streamOptimized vmdk of this virtual size holding no data."""
        path = os.path.join(self.top, 'empty-%d.vmdk' % virtual_bytes)
        subprocess.run([shutil.which('qemu-img'), 'create', '-q', '-f',
                        'vmdk', '-o', 'subformat=streamOptimized', path,
                        str(virtual_bytes)], check=True)
        return path

    def image_cache_command(self, *args, check=True):
        """The operator command on this stack's cinder.conf and backend."""
        return self.run([command('cinder-vmware-image-cache'),
                         '--config-file', self.cinder_conf, '--backend',
                         self.backend] + list(args), check=check)

    # ---- what the logs say -----------------------------------------------
    def glance_downloads(self, image_id):
        """How often image data was served (glance's access log)."""
        pattern = re.compile(r'"GET /v2/images/%s/file HTTP/[0-9.]+" 200 ' %
                             re.escape(image_id))
        path = os.path.join(self.logs, 'glance-api.out')
        with open(path, errors='replace') as stream:
            return sum(1 for line in stream if pattern.search(line))

    def scheduler_view(self, volume_id):
        """The scheduler's pool state when it placed ``volume_id``.

        Read from cinder-scheduler's debug log: the capacity filter names the
        volume, and in the same request the filter scheduler logs the pool
        state it weighed (``Filtered [host '...': ...]``), including the
        ``provisioned_capacity_gb`` our host manager computes; get-pools
        only shows what the backend reported. Returns (allocated,
        provisioned), or None when the volume was not scheduled yet.
        """
        path = os.path.join(self.logs, 'cinder-scheduler.log')
        with open(path, errors='replace') as stream:
            lines = stream.readlines()
        request = None
        marker = 'GB volume (%s)' % volume_id
        for line in lines:
            if marker in line:
                match = _REQUEST_ID.search(line)
                request = match and match.group(1)
        if request is None:
            return None
        host = "Filtered [host '%s'" % self.pool_name()
        for line in lines:
            if request in line and host in line:
                match = _POOL_STATE.search(line)
                if match:
                    return int(match.group(1)), int(match.group(2))
        return None


_REQUEST_ID = re.compile(r'\[(?:None )?(req-[0-9a-f-]+) ')
_POOL_STATE = re.compile(r'allocated_capacity_gb: (\d+),.*?'
                         r'provisioned_capacity_gb: (\d+)')
