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

"""cinder-vmware-image-cache: inspect and purge a backend's image cache.

It reads cinder.conf like cinder-manage does and talks to the backend's
vCenter with the backend's own options and credentials::

    cinder-vmware-image-cache [--config-file PATH] [--backend NAME] \\
        list [--format table|json]
    cinder-vmware-image-cache ... show IMAGE_ID [--format table|json]
    cinder-vmware-image-cache ... purge [--expired-only] [--image IMAGE_ID] \\
        [--format table|json]

``--backend`` names a backend of ``[DEFAULT] enabled_backends`` that has a
section in the configuration; it may be left out when exactly one backend is
enabled. The section must hold ``vmware_host_ip``, ``vmware_host_username``
and ``vmware_host_password`` (``[backend_defaults]`` is honoured, as by
cinder-volume); the password is never printed, also not in error messages,
log lines or tracebacks (``--debug``).

``list`` shows every VM of the backend's cache folder(s): image id, template
name, datastore, size in whole GiB (rounded up; ``-`` when unknown, as for
the leftovers of an interrupted fill), creation and last use (UTC, ISO 8601)
and state (``ready``, or ``partial`` for a template that is never cloned and
that the periodic purge removes). ``show`` shows the entries of one image.
``purge`` deletes every entry (of one image with ``--image``) that no
request is using; with ``--expired-only`` it does what the periodic task of
cinder-volume does (expired templates, leftovers, then least recently used
templates until the caps hold). It takes the same locks as cinder-volume,
through the coordinator of ``[coordination] backend_url``, so it never
deletes a template that is being filled or cloned. With ``--format json``
``list`` and ``show`` print a list of objects, ``purge`` an object with the
lists ``deleted`` and ``failed``.

Exit codes:

===  ==================================================================
0    success (also: nothing to purge)
1    the operation failed: ``show`` found no entry of the image, or
     ``purge`` could not delete some entries (in use or refused by
     vCenter; the periodic purge retries them), or an unexpected error
2    usage or configuration error: bad arguments, unreadable
     configuration, unknown backend (not in ``enabled_backends`` or no
     section), missing credentials, bad option values, unusable lock
     coordinator
3    vCenter unreachable, login failed, or no answer within
     ``--vcenter-timeout`` seconds
130  interrupted (Ctrl-C)
===  ==================================================================
"""

import warnings

# Importing cinder imports eventlet, which warns that it is deprecated: a
# matter for cinder, not for an operator running this command.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

# Before anything imports eventlet-sensitive modules (as cinder's commands).
from cinder_vmware_cache import stock  # noqa: I100
stock.monkey_patch()

import contextlib  # noqa: I100
import datetime
import json
import logging as python_logging
import re
import socket
import sys
import traceback
from urllib import parse as urlparse

from cinder.common import config  # noqa: F401
from cinder import context as cinder_context
from cinder import coordination
from cinder import exception as cinder_exception
from cinder import objects
from cinder import version
from cinder.volume import configuration as volume_configuration
from cinder.volume import driver as base_driver
from cinder.volume.drivers.vmware import vmdk
import eventlet
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import timeutils
from oslo_vmware import exceptions as vexc
from oslo_vmware import vim_util

from cinder_vmware_cache import driver as cache_driver
from cinder_vmware_cache import exceptions
from cinder_vmware_cache import opts as cache_opts
from cinder_vmware_cache import policy

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

PROG = 'cinder-vmware-image-cache'

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_VCENTER = 3
EXIT_INTERRUPTED = 130

DESCRIPTION = ("List, show and purge the image-template cache of a VMware "
               "VMDK backend, with the backend's options from cinder.conf.")
EPILOG = ('Exit codes: 0 success; 1 the operation failed (show: image not '
          'in the cache; purge: some entries could not be deleted); 2 usage '
          'or configuration error (unknown backend, missing credentials, '
          'bad option values); 3 vCenter unreachable, login failed or no '
          'answer within --vcenter-timeout; 130 interrupted. Options such '
          'as --config-file and --backend go before the command, --format '
          'after it.')

CREDENTIALS = ('vmware_host_ip', 'vmware_host_username',
               'vmware_host_password')
DRIVER_PATH = '%s.%s' % (cache_driver.VMwareVcVmdkCacheDriver.__module__,
                         cache_driver.VMwareVcVmdkCacheDriver.__name__)
FORMATS = ('table', 'json')
MASK = '***'

# (header, record key, right-aligned) of the list/purge tables.
LIST_COLUMNS = (
    ('IMAGE ID', 'image_id', False),
    ('TEMPLATE', 'template', False),
    ('DATASTORE', 'datastore', False),
    ('SIZE (GiB)', 'size_gb', True),
    ('CREATED', 'created_at', False),
    ('LAST USED', 'last_used', False),
    ('STATE', 'state', False),
)
SHOW_FIELDS = ('image_id', 'template', 'state', 'datastore', 'datastore_ref',
               'size_gb', 'size_bytes', 'created_at', 'last_used',
               'purge_after', 'ref')


def _add_commands(subparsers):
    def add(name, help_text):
        parser = subparsers.add_parser(name, help=help_text,
                                       description=help_text, epilog=EPILOG)
        parser.add_argument('--format', choices=FORMATS, default='table',
                            help='Output format (default: table).')
        return parser

    add('list', 'List the cache entries of the backend.')
    show = add('show', 'Show the cache entries of one image.')
    show.add_argument('image_id', metavar='IMAGE_ID', help='Glance image id.')
    purge = add('purge', 'Delete cache entries that no request is using.')
    purge.add_argument('--expired-only', action='store_true',
                       help='Only what the periodic purge deletes: expired '
                            'templates, leftovers of interrupted fills, and '
                            'least recently used templates over the caps.')
    purge.add_argument('--image', metavar='IMAGE_ID', dest='image_id',
                       help='Only the entries of this image.')


CLI_OPTS = [
    cfg.StrOpt('backend',
               metavar='NAME',
               help='Backend (a name of [DEFAULT] enabled_backends) whose '
                    'image cache to manage. Optional when exactly one '
                    'backend is enabled.'),
    cfg.IntOpt('vcenter-timeout',
               default=60,
               min=1,
               metavar='SECONDS',
               help='Give up (exit code 3) when vCenter does not accept '
                    'the connection and the login within this many '
                    'seconds.'),
    cfg.SubCommandOpt('command',
                      title='Commands',
                      handler=_add_commands,
                      help='Run "%s COMMAND --help" for the options of a '
                           'command.' % PROG),
]


class CommandError(Exception):
    """A failure to report in one line, with the exit code to return."""

    def __init__(self, message, code=EXIT_FAILED):
        super().__init__(message)
        self.code = code


class _SetupTimeout(Exception):
    """vCenter did not let the driver set up in time."""


class Redactor(object):
    """Masks secrets (the vCenter password) in every text we let out."""

    def __init__(self):
        self._secrets = set()

    def add(self, secret):
        if secret:
            self._secrets.add(str(secret))

    def __call__(self, text):
        text = str(text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


class RedactingFormatter(python_logging.Formatter):
    """Wraps a handler's formatter and masks secrets in what it produces.

    Masking the finished text covers the message, its arguments, the error
    summary oslo.log appends and the formatted traceback.
    """

    def __init__(self, inner, redactor):
        super().__init__()
        self._inner = inner or python_logging.Formatter()
        self._redact = redactor

    def format(self, record):
        return self._redact(self._inner.format(record))


class Output(object):
    """stdout for results, stderr for messages; both masked."""

    def __init__(self, redactor):
        self._redact = redactor

    def out(self, text=''):
        sys.stdout.write(self._redact(text) + '\n')

    def err(self, text):
        sys.stderr.write(self._redact(text) + '\n')


# ---- records and formatting ---------------------------------------------
def _iso(when):
    """ISO 8601 in UTC, to the second, with a Z; None stays None."""
    if when is None:
        return None
    if when.tzinfo is not None:
        when = timeutils.normalize_time(when)
    return when.replace(microsecond=0).isoformat() + 'Z'


def _size_gb(size_bytes):
    """Whole GiB rounded up; None when the size is unknown (0)."""
    return policy.gib(size_bytes) if size_bytes else None


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


def make_record(entry, cache_policy, datastore_names=None):
    """The printable form of a CacheEntry (the JSON object)."""
    names = datastore_names or {}
    return {
        'image_id': entry.image_id,
        'template': entry.name,
        'state': 'ready' if entry.ready else 'partial',
        'datastore': _text(names.get(entry.datastore) or entry.datastore),
        'datastore_ref': _text(entry.datastore),
        'size_gb': _size_gb(entry.size_bytes),
        'size_bytes': int(entry.size_bytes or 0),
        'created_at': _iso(entry.created_at),
        'last_used': _iso(entry.last_used),
        'purge_after': _iso(_purge_after(entry, cache_policy)),
        'ref': _text(entry.key),
    }


def _cell(value):
    return '-' if value is None or value == '' else str(value)


def format_table(records, columns=LIST_COLUMNS):
    """Aligned columns under a header line and a rule."""
    rows = [[_cell(r.get(key)) for _, key, _ in columns] for r in records]
    widths = [max([len(header)] + [len(row[i]) for row in rows])
              for i, (header, _, _) in enumerate(columns)]

    def line(cells):
        padded = [cell.rjust(width) if right else cell.ljust(width)
                  for cell, width, (_, _, right) in zip(cells, widths,
                                                        columns)]
        return '  '.join(padded).rstrip()

    lines = [line([header for header, _, _ in columns]),
             line(['-' * width for width in widths])]
    lines.extend(line(row) for row in rows)
    return '\n'.join(lines)


def format_fields(records, fields=SHOW_FIELDS):
    """One FIELD/VALUE table per record, separated by a blank line."""
    columns = (('FIELD', 'field', False), ('VALUE', 'value', False))
    blocks = [format_table([{'field': f, 'value': r.get(f)}
                            for f in fields], columns)
              for r in records]
    return '\n\n'.join(blocks)


def format_json(data):
    return json.dumps(data, indent=2, sort_keys=True)


# ---- vCenter access ------------------------------------------------------
def _cache(drv):
    cache = drv.image_cache
    if cache is None:
        raise CommandError('the driver set up no image cache')
    return cache


def _datastore_names(drv, entries):
    """Names of the entries' datastores; the moref value when unknown."""
    names = {}
    for value in sorted({e.datastore for e in entries if e.datastore}):
        name = None
        try:
            name = drv.session.invoke_api(
                vim_util, 'get_object_property', drv.session.vim,
                vim_util.get_moref(value, 'Datastore'), 'name')
        except Exception:
            LOG.debug('Could not read the name of datastore %s.', value,
                      exc_info=True)
        names[value] = name if isinstance(name, str) and name else value
    return names


def _records(drv, entries):
    cache = _cache(drv)
    names = _datastore_names(drv, entries)
    entries = sorted(entries, key=lambda e: (e.image_id, not e.ready,
                                             e.name, str(e.key)))
    return [make_record(e, cache.policy, names) for e in entries]


def _list_entries(drv):
    return _cache(drv).list_all()


# ---- commands --------------------------------------------------------------
def cmd_list(drv, backend, args, output):
    records = _records(drv, _list_entries(drv))
    if args.format == 'json':
        output.out(format_json(records))
    elif records:
        output.out(format_table(records))
    else:
        output.out('The image cache of backend %s is empty.' % backend)
    return EXIT_OK


def cmd_show(drv, backend, args, output):
    entries = [e for e in _list_entries(drv) if e.image_id == args.image_id]
    if not entries:
        raise CommandError('image %s is not in the image cache of backend '
                           '%s' % (args.image_id, backend), EXIT_FAILED)
    records = _records(drv, entries)
    if args.format == 'json':
        output.out(format_json(records))
    else:
        output.out(format_fields(records))
    return EXIT_OK


def cmd_purge(drv, backend, args, output):
    cache = _cache(drv)
    with _coordinator():
        deleted = cache.purge(expired_only=args.expired_only,
                              image_id=args.image_id)
    failed = []
    if not args.expired_only:
        # Everything listed was asked for: what is still there failed.
        gone = {e.key for e in deleted}
        failed = [e for e in cache.entries()
                  if e.key not in gone and
                  (args.image_id is None or e.image_id == args.image_id)]
    names = _datastore_names(drv, list(deleted) + failed)
    deleted_records = [make_record(e, cache.policy, names) for e in deleted]
    failed_records = [make_record(e, cache.policy, names) for e in failed]
    if args.format == 'json':
        output.out(format_json({'deleted': deleted_records,
                                'failed': failed_records}))
    elif deleted_records:
        output.out('Deleted %d cache entr%s of backend %s:' % (
            len(deleted_records), 'y' if len(deleted_records) == 1 else 'ies',
            backend))
        output.out(format_table(deleted_records))
    elif not failed_records:
        output.out('Nothing to purge in the image cache of backend %s.' %
                   backend)
    if failed_records:
        output.err('Could not delete %d cache entr%s (in use by a request, '
                   'or refused by vCenter; see the log): %s' % (
                       len(failed_records),
                       'y' if len(failed_records) == 1 else 'ies',
                       ', '.join(r['template'] for r in failed_records)))
        return EXIT_FAILED
    return EXIT_OK


COMMANDS = {'list': cmd_list, 'show': cmd_show, 'purge': cmd_purge}


# ---- setup -----------------------------------------------------------------
def register_cli_opts(conf=CONF):
    conf.register_cli_opts(CLI_OPTS)


def unregister_cli_opts(conf=CONF):
    """Undo register_cli_opts (for tests); the conf must be cleared."""
    conf.unregister_opts(CLI_OPTS)


def _parse_args(argv):
    register_cli_opts()
    try:
        CONF(argv, project='cinder', prog=PROG,
             version=version.version_string(),
             description=DESCRIPTION,
             epilog=EPILOG)
    except cfg.ConfigFilesNotFoundError as exc:
        raise CommandError('cannot read configuration file(s): %s' %
                           ', '.join(exc.config_files), EXIT_USAGE)
    except cfg.ConfigFileParseError as exc:
        # The message quotes the offending line, which may hold a secret.
        line = re.search(r':(\d+), ', exc.msg or '')
        raise CommandError('cannot parse configuration file %s%s' % (
            exc.config_file, ' at line %s' % line.group(1) if line else ''),
            EXIT_USAGE)
    except cfg.ConfigDirNotFoundError as exc:
        raise CommandError('cannot read configuration directory: %s' %
                           exc.config_dir, EXIT_USAGE)
    except cfg.Error as exc:
        raise CommandError(str(exc), EXIT_USAGE)


def _setup_logging(redactor):
    """oslo.log as configured, but never on stdout (results go there).

    Console logging shows warnings and errors only, unless --debug; a log
    file configured in cinder.conf gets the usual INFO records. Every
    handler masks the secrets.
    """
    try:
        logging.setup(CONF, 'cinder')
    except (OSError, cfg.Error) as exc:
        raise CommandError('cannot set up logging: %s' % exc, EXIT_USAGE)
    python_logging.captureWarnings(True)
    for handler in python_logging.getLogger().handlers:
        if (isinstance(handler, python_logging.StreamHandler) and
                not isinstance(handler, python_logging.FileHandler)):
            if handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
            if not CONF.debug:
                handler.setLevel(python_logging.WARNING)
        handler.setFormatter(RedactingFormatter(handler.formatter, redactor))


def _backend_name():
    enabled = [b for b in (CONF.enabled_backends or []) if b]
    backend = CONF.backend
    if not backend:
        if len(enabled) != 1:
            raise CommandError(
                '--backend NAME is required (enabled backends: %s)' %
                (', '.join(enabled) or 'none'), EXIT_USAGE)
        backend = enabled[0]
    if backend not in enabled:
        raise CommandError(
            'unknown backend %s: it is not in [DEFAULT] enabled_backends '
            '(%s)' % (backend, ', '.join(enabled) or 'empty'), EXIT_USAGE)
    if backend not in CONF.list_all_sections():
        raise CommandError('unknown backend %s: the configuration has no '
                           '[%s] section' % (backend, backend), EXIT_USAGE)
    return backend


def backend_configuration(backend):
    """The driver's configuration, built as cinder-volume builds it."""
    # Needs the registered objects; it holds volume_driver.
    from cinder.volume import manager
    conf = volume_configuration.Configuration(manager.volume_backend_opts,
                                              config_group=backend)
    conf.append_config_values(vmdk.vmdk_opts)
    conf.append_config_values(base_driver.volume_opts)
    conf.append_config_values(cache_opts.image_cache_opts)
    return conf


def _check_configuration(backend, conf, redactor):
    # Learn the password before anything can print it.
    try:
        redactor.add(conf.safe_get('vmware_host_password'))
    except ValueError:
        pass
    for opt in (vmdk.vmdk_opts + base_driver.volume_opts +
                cache_opts.image_cache_opts):
        try:
            conf.safe_get(opt.dest)
        except ValueError as exc:
            raise CommandError('[%s] %s: %s' % (backend, opt.dest, exc),
                               EXIT_USAGE)
    missing = [name for name in CREDENTIALS if not conf.safe_get(name)]
    if missing:
        raise CommandError(
            'backend %s has no vCenter credentials: %s not set in its [%s] '
            'section (this command needs the vmware_host_ip, '
            'vmware_host_username and vmware_host_password the volume '
            'service uses)' % (backend, ', '.join(missing), backend),
            EXIT_USAGE)
    volume_driver = conf.safe_get('volume_driver')
    if volume_driver != DRIVER_PATH:
        LOG.warning('Backend %(be)s has volume_driver = %(drv)s, not '
                    '%(ours)s; its cache folder is read anyway.',
                    {'be': backend, 'drv': volume_driver,
                     'ours': DRIVER_PATH})
    if conf.safe_get('vmware_insecure'):
        # The operator chose it in cinder.conf; do not warn per request.
        warnings.filterwarnings('ignore', message='Unverified HTTPS request')


def _probe(host, port, timeout):
    """Fail fast when nothing listens: the session would retry forever."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise CommandError('vCenter %s:%s is unreachable: %s' %
                           (host, port, exc), EXIT_VCENTER)
    sock.close()


def connect(backend, conf, timeout):
    """A set-up driver (session, volumeops, image cache); no periodic task.

    check_for_setup_error is not called: it would start the periodic purge.
    """
    host, port = conf.vmware_host_ip, conf.vmware_host_port
    _probe(host, port, timeout)
    drv = cache_driver.VMwareVcVmdkCacheDriver(configuration=conf)
    # Login errors are retried only for connection faults, and those
    # forever: bound the whole setup.
    timer = eventlet.Timeout(timeout, _SetupTimeout())
    try:
        drv.do_setup(cinder_context.get_admin_context())
    except _SetupTimeout:
        raise CommandError('vCenter %s:%s did not answer within %d seconds '
                           '(--vcenter-timeout)' % (host, port, timeout),
                           EXIT_VCENTER)
    except (exceptions.InvalidCacheOption, cinder_exception.InvalidInput,
            cfg.Error) as exc:
        raise CommandError('backend %s: %s' % (backend, exc), EXIT_USAGE)
    except (vexc.VMwareDriverException, OSError) as exc:
        raise CommandError('cannot log in to vCenter %s:%s: %s' %
                           (host, port, exc), EXIT_VCENTER)
    finally:
        timer.cancel()
    return drv


def disconnect(drv):
    session = getattr(drv, '_session', None)
    if session is None:
        return
    try:
        session.logout()
    except Exception:
        LOG.debug('Logout from vCenter failed.', exc_info=True)


@contextlib.contextmanager
def _coordinator():
    """The lock backend cinder-volume uses, so purge and requests agree.

    Started (from [coordination] backend_url) unless already running, and
    then stopped again.
    """
    coordinator = coordination.COORDINATOR
    started = coordinator.started
    if not started:
        try:
            coordinator.start()
        except Exception as exc:
            raise CommandError('cannot start the lock coordinator of '
                               '[coordination] backend_url: %s' % exc,
                               EXIT_USAGE)
    try:
        yield coordinator
    finally:
        if not started:
            try:
                coordinator.stop()
            except Exception:
                LOG.debug('Stopping the lock coordinator failed.',
                          exc_info=True)


def _url_password(url):
    try:
        return urlparse.urlsplit(url or '').password
    except ValueError:
        return None


def run(argv, redactor, output):
    _parse_args(argv)
    # The coordination URL is secret too (it may hold a password).
    redactor.add(_url_password(CONF.coordination.backend_url))
    _setup_logging(redactor)
    objects.register_all()
    backend = _backend_name()
    conf = backend_configuration(backend)
    _check_configuration(backend, conf, redactor)
    command = CONF.command
    drv = connect(backend, conf, CONF.vcenter_timeout)
    try:
        return COMMANDS[command.name](drv, backend, command, output)
    except vexc.VimConnectionException as exc:
        raise CommandError('lost the connection to vCenter: %s' % exc,
                           EXIT_VCENTER)
    finally:
        disconnect(drv)


def _release_conf():
    """Forget this run's command line and files, so main() can run again."""
    try:
        CONF.clear()
        unregister_cli_opts()
    except Exception:
        LOG.debug('Could not reset the configuration.', exc_info=True)


def _debug_enabled():
    try:
        return bool(CONF.debug)
    except Exception:
        return False


def main(argv=None):
    """Run the command line ``argv`` (default: sys.argv[1:]).

    Returns the exit code documented in the module docstring.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    redactor = Redactor()
    output = Output(redactor)
    try:
        return run(argv, redactor, output)
    except SystemExit as exc:
        # Only argument parsing exits: --help and --version (0), usage
        # errors (argparse: 2, oslo.config's bad values: 1).
        if isinstance(exc.code, str):
            output.err(exc.code)
        return EXIT_OK if exc.code in (None, 0) else EXIT_USAGE
    except KeyboardInterrupt:
        output.err('Interrupted.')
        return EXIT_INTERRUPTED
    except CommandError as exc:
        output.err('ERROR: %s' % exc)
        return exc.code
    except Exception as exc:
        output.err('ERROR: %s: %s' % (type(exc).__name__, exc))
        if _debug_enabled():
            output.err(''.join(traceback.format_exc()))
        else:
            output.err('Run with --debug for the traceback.')
        return EXIT_FAILED
    finally:
        _release_conf()


if __name__ == '__main__':
    sys.exit(main())
