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

"""cinder-vmware-image-cache: list, show, purge and warm a backend's cache.

It reads cinder.conf like cinder-manage does and talks to the backend's
vCenter with the backend's own options and credentials::

    cinder-vmware-image-cache [--config-file PATH] [--backend NAME] \\
        [--vcenter-timeout SECONDS] [--debug] COMMAND [OUTPUT OPTIONS]

    ... list
    ... show IMAGE_ID
    ... purge [--expired-only] [--image IMAGE_ID]
    ... warm IMAGE_ID

``--backend`` names a backend of ``[DEFAULT] enabled_backends`` that has a
section in the configuration; it may be left out when exactly one backend is
enabled. The section must hold ``vmware_host_ip``, ``vmware_host_username``
and ``vmware_host_password`` (``[backend_defaults]`` is honoured, as by
cinder-volume); the password, and one in ``[coordination] backend_url``, is
never printed, also not in error messages, log lines or tracebacks
(``--debug``).

The commands are cliff's (as in python-openstackclient), so each takes the
output options ``-f/--format table|json|yaml|csv|value``, ``-c COLUMN`` and,
for lists, ``--sort-column COLUMN``. The columns are the keys of the JSON
objects: ``image_id``, ``template``, ``state``, ``datastore``,
``datastore_ref``, ``size_gb``, ``size_bytes``, ``created_at``,
``last_used``, ``purge_after`` and ``ref``; ``purge`` and ``warm`` add
``result``. JSON and YAML carry every column; a table (and csv and value)
shows image id, template, datastore, size in whole GiB (rounded up; ``-``
when unknown, as for the leftovers of an interrupted fill), creation and
last use (UTC, ISO 8601) and state (``ready``, or ``partial`` for a
template that is never cloned and that the periodic purge removes).

``list`` shows every VM of the backend's cache folder(s), ``show`` the
entries of one image. ``purge`` deletes every entry (of one image with
``--image``) that no request is using; with ``--expired-only`` it does what
the periodic task of cinder-volume does. It lists the entries it handled,
``result`` ``deleted`` or ``failed``. ``warm`` fills the cache with an image
ahead of use (``result`` ``filled``), or refreshes the last use of a cached
one (``already cached``); it asks Glance as cinder's service user
(``[glance]`` or ``[service_user]`` credentials). list, show and purge open
only a vCenter session; warm sets the driver up as cinder-volume does.
purge and warm take the same locks as cinder-volume, through the
coordinator of ``[coordination] backend_url``, so a template is never
deleted while it is filled or cloned.

Exit codes:

===  ==================================================================
0    success (also: nothing to purge)
1    the operation failed: ``show`` found no entry of the image,
     ``purge`` could not delete some entries (in use or refused by
     vCenter; the periodic purge retries them), ``warm`` could not fill
     the cache (image not cacheable, not found, not readable by cinder's
     service user, lock held too long, fill failed), or an unexpected
     error
2    usage or configuration error: bad arguments, unreadable
     configuration, unknown backend (not in ``enabled_backends`` or no
     section), missing credentials, bad option values, unusable lock
     coordinator, no Glance service credentials (``warm``)
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

import argparse  # noqa: I100
import contextlib
import datetime
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
from cliff import app
from cliff import columns
from cliff import commandmanager
from cliff import lister
from cliff import show
import eventlet
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import strutils
from oslo_utils import timeutils
from oslo_vmware import exceptions as vexc
from oslo_vmware import vim_util

from cinder_vmware_cache import cache
from cinder_vmware_cache import driver as cache_driver
from cinder_vmware_cache import exceptions
from cinder_vmware_cache import image_access
from cinder_vmware_cache import inventory
from cinder_vmware_cache import notify
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

DESCRIPTION = ("List, show, purge and warm the image-template cache of a "
               "VMware VMDK backend, with the backend's options from "
               "cinder.conf.")
EPILOG = ('Exit codes: 0 success; 1 the operation failed (show: image not '
          'in the cache; purge: some entries could not be deleted; warm: '
          'the cache could not be filled); 2 usage or configuration error '
          '(unknown backend, missing credentials, bad option values, '
          'unusable lock coordinator, no Glance service credentials); 3 '
          'vCenter unreachable, login failed or no answer within '
          '--vcenter-timeout; 130 interrupted. Run "%s help COMMAND" for '
          'the options of a command.' % PROG)

CREDENTIALS = ('vmware_host_ip', 'vmware_host_username',
               'vmware_host_password')
DRIVER_PATH = '%s.%s' % (cache_driver.VMwareVcVmdkCacheDriver.__module__,
                         cache_driver.VMwareVcVmdkCacheDriver.__name__)
MASK = '***'

# Every key of a record, in output order; a table shows LIST_COLUMNS.
FIELDS = ('image_id', 'template', 'state', 'datastore', 'datastore_ref',
          'size_gb', 'size_bytes', 'created_at', 'last_used', 'purge_after',
          'ref')
LIST_COLUMNS = ('image_id', 'template', 'datastore', 'size_gb', 'created_at',
                'last_used', 'state')
# The formats that carry every field unless -c picks some.
COMPLETE_FORMATS = ('json', 'yaml')


class CommandError(Exception):
    """A failure to report in one line, with the exit code to return."""

    def __init__(self, message, code=EXIT_FAILED):
        super().__init__(message)
        self.code = code


class _LoginTimeout(Exception):
    """vCenter did not let us log in in time."""


class Secrets(object):
    """Masks secrets in every message and log line we let out.

    oslo's ``mask_password`` catches passwords by their keys (``password=``,
    ``<password>`` ...); the known values are replaced wherever they
    appear, for the texts that do not name them (a URL, an error message).
    """

    def __init__(self):
        self._values = set()

    def add(self, value):
        if value:
            self._values.add(str(value))

    def __call__(self, text):
        text = strutils.mask_password(str(text), secret=MASK)
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text


class RedactingFormatter(python_logging.Formatter):
    """Wraps a handler's formatter and masks secrets in what it produces.

    Masking the finished text covers the message, its arguments, the error
    summary oslo.log appends and the formatted traceback.
    """

    def __init__(self, inner, secrets):
        super().__init__()
        self._inner = inner or python_logging.Formatter()
        self._mask = secrets

    def format(self, record):
        return self._mask(self._inner.format(record))


# ---- records -----------------------------------------------------------
class Unknown(columns.FormattableColumn):
    """A value vCenter did not give: ``-`` in a table, null in JSON.

    Sorts after every known value, as cliff sorts None.
    """

    def __init__(self):
        super().__init__(None)

    def human_readable(self):
        return '-'

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return not isinstance(other, Unknown)


def _iso(when):
    """ISO 8601 in UTC, to the second, with a Z; None stays None."""
    if when is None:
        return None
    if when.tzinfo is not None:
        when = timeutils.normalize_time(when)
    return when.replace(microsecond=0).isoformat() + 'Z'


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
    """The printable form of a CacheEntry: FIELDS and their values."""
    names = datastore_names or {}
    return {
        'image_id': entry.image_id,
        'template': entry.name,
        'state': 'ready' if entry.ready else 'partial',
        'datastore': _text(names.get(entry.datastore) or entry.datastore),
        'datastore_ref': _text(entry.datastore),
        'size_gb': policy.gib(entry.size_bytes) if entry.size_bytes else None,
        'size_bytes': int(entry.size_bytes or 0),
        'created_at': _iso(entry.created_at),
        'last_used': _iso(entry.last_used),
        'purge_after': _iso(_purge_after(entry, cache_policy)),
        'ref': _text(entry.key),
    }


def _order(entry):
    """By image, the ready template first: stable output."""
    return entry.image_id, not entry.ready, entry.name, str(entry.key)


def _datastore_names(session, entries):
    """Names of the entries' datastores; the moref value when unknown."""
    names = {}
    for value in sorted({e.datastore for e in entries if e.datastore}):
        name = None
        try:
            name = session.invoke_api(
                vim_util, 'get_object_property', session.vim,
                vim_util.get_moref(value, 'Datastore'), 'name')
        except Exception:
            LOG.debug('Could not read the name of datastore %s.', value,
                      exc_info=True)
        names[value] = name if isinstance(name, str) and name else value
    return names


def _cells(record, names):
    return tuple(Unknown() if record[name] is None else record[name]
                 for name in names)


# ---- configuration -----------------------------------------------------
def _read_configuration(args):
    """Parse the configuration files as cinder-manage does."""
    try:
        CONF(args, project='cinder', prog=PROG,
             version=version.version_string())
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


def _setup_logging(secrets, console_level):
    """oslo.log as configured, but never on stdout (results go there).

    The console shows ``console_level`` and above; a log file configured
    in cinder.conf gets the usual records. Every handler masks secrets.
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
            handler.setLevel(console_level)
        handler.setFormatter(RedactingFormatter(handler.formatter, secrets))


def _backend_name(backend):
    enabled = [b for b in (CONF.enabled_backends or []) if b]
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


def _check_configuration(backend, conf, secrets):
    # Learn the password before anything can print it.
    try:
        secrets.add(conf.safe_get('vmware_host_password'))
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


def _url_password(url):
    try:
        return urlparse.urlsplit(url or '').password
    except ValueError:
        return None


# ---- vCenter -----------------------------------------------------------
def _probe(host, port, timeout):
    """Fail fast when nothing listens: the session would retry forever."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise CommandError('vCenter %s:%s is unreachable: %s' %
                           (host, port, exc), EXIT_VCENTER)
    sock.close()


def _login(backend, conf, timeout, login, *args):
    """Run ``login(*args)``, which logs in to vCenter, within ``timeout``.

    oslo.vmware retries connection faults of a login forever, so the whole
    call is bounded; its errors become exit codes.
    """
    host, port = conf.vmware_host_ip, conf.vmware_host_port
    _probe(host, port, timeout)
    timer = eventlet.Timeout(timeout, _LoginTimeout())
    try:
        return login(*args)
    except _LoginTimeout:
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


def _logout(session):
    if session is None:
        return
    try:
        session.logout()
    except Exception:
        LOG.debug('Logout from vCenter failed.', exc_info=True)


@contextlib.contextmanager
def cache_session(backend, conf, timeout, **cache_args):
    """(cache, session): the backend's cache over a bare vCenter session.

    Listing and deleting need only the cache folder, so this skips what
    the driver's do_setup does besides logging in (the vCenter extension
    registration, the scan of every VM); the cache has no stock driver.
    """
    # As VMwareVcVmdkCacheDriver.backend_name: it names the cache folder.
    name = (conf.safe_get('volume_backend_name') or
            cache_driver.VMwareVcVmdkCacheDriver.__name__)
    cache_policy = policy.CachePolicy.from_configuration(conf, backend)
    session, volumeops = _login(backend, conf, timeout,
                                stock.open_volumeops, conf)
    try:
        templates = inventory.TemplateInventory(
            session, volumeops, name, conf.vmware_volume_folder,
            conf.vmware_max_objects_retrieval)
        yield cache.ImageTemplateCache(None, cache_policy, templates,
                                       **cache_args), session
    finally:
        _logout(session)


@contextlib.contextmanager
def set_up_driver(backend, conf, timeout):
    """The backend's driver, set up as cinder-volume sets it up.

    Without check_for_setup_error: it would start the periodic purge.
    """
    drv = cache_driver.VMwareVcVmdkCacheDriver(configuration=conf)
    _login(backend, conf, timeout, drv.do_setup,
           cinder_context.get_admin_context())
    try:
        yield drv
    finally:
        _logout(drv.session)


@contextlib.contextmanager
def _coordinator():
    """The lock backend cinder-volume uses, so we and requests agree.

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


# ---- commands ----------------------------------------------------------
class _CacheCommand(object):
    """What the commands share: their columns, one-line errors, exit codes.

    Mixed in before cliff's Lister or ShowOne, whose run() would log an
    error and return 1 whatever the cause.
    """

    fields = FIELDS
    table_columns = LIST_COLUMNS

    def run(self, parsed_args):
        try:
            unknown = [c for c in parsed_args.columns
                       if c not in self.fields]
            if unknown:
                raise CommandError('unknown column %s (columns: %s)' % (
                    ', '.join(unknown), ', '.join(self.fields)), EXIT_USAGE)
            return super().run(parsed_args)
        except BrokenPipeError:
            raise
        except Exception as exc:
            return self.app.report_failure(exc)

    def columns_for(self, parsed_args):
        """Every field for JSON and YAML (and for -c), else the table's."""
        if parsed_args.columns or parsed_args.formatter in COMPLETE_FORMATS:
            return self.fields
        return self.table_columns

    def rows(self, parsed_args, records):
        names = self.columns_for(parsed_args)
        return names, [_cells(r, names) for r in records]

    def cache_session(self, backend, conf, **cache_args):
        return cache_session(backend, conf, self.app.options.vcenter_timeout,
                             **cache_args)

    def list_records(self, backend, conf, image_id=None):
        with self.cache_session(backend, conf) as (image_cache, session):
            entries = sorted((e for e in image_cache.list_all()
                              if image_id in (None, e.image_id)), key=_order)
            names = _datastore_names(session, entries)
            return [make_record(e, image_cache.policy, names)
                    for e in entries]


class ListEntries(_CacheCommand, lister.Lister):
    """List the cache entries of the backend."""

    def take_action(self, parsed_args):
        backend, conf = self.app.configure()
        records = self.list_records(backend, conf)
        if not records:
            self.app.note('The image cache of backend %s is empty.' %
                          backend)
        return self.rows(parsed_args, records)


class ShowEntries(_CacheCommand, lister.Lister):
    """Show the cache entries of one image (every field)."""

    table_columns = FIELDS

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image_id', metavar='IMAGE_ID',
                            help='Glance image id.')
        return parser

    def take_action(self, parsed_args):
        backend, conf = self.app.configure()
        records = self.list_records(backend, conf, parsed_args.image_id)
        if not records:
            raise CommandError('image %s is not in the image cache of '
                               'backend %s' % (parsed_args.image_id, backend))
        return self.rows(parsed_args, records)


class Purge(_CacheCommand, lister.Lister):
    """Delete cache entries that no request is using."""

    fields = FIELDS + ('result',)
    table_columns = LIST_COLUMNS + ('result',)

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--expired-only', action='store_true',
                            help='Only what the periodic purge deletes: '
                                 'expired templates, leftovers of '
                                 'interrupted fills, templates of images '
                                 'deleted in Glance, and least recently '
                                 'used templates over the caps.')
        parser.add_argument('--image', metavar='IMAGE_ID', dest='image_id',
                            help='Only the entries of this image.')
        return parser

    def run(self, parsed_args):
        self.failed = []
        code = super().run(parsed_args)
        if code == EXIT_OK and self.failed:
            self.app.note('ERROR: could not delete %d cache entr%s (in use '
                          'by a request, or refused by vCenter; see the log; '
                          'the periodic purge retries): %s' % (
                              len(self.failed),
                              'y' if len(self.failed) == 1 else 'ies',
                              ', '.join(self.failed)))
            return EXIT_FAILED
        return code

    def take_action(self, parsed_args):
        backend, conf = self.app.configure()
        notify.setup(CONF)
        with _coordinator(), self.cache_session(
                backend, conf, images=image_access.GlanceImages()) as (
                image_cache, session):
            deleted = image_cache.purge(
                expired_only=parsed_args.expired_only,
                image_id=parsed_args.image_id)
            failed = []
            if not parsed_args.expired_only:
                # Everything listed was asked for: what is left failed.
                gone = {e.key for e in deleted}
                failed = [e for e in image_cache.entries()
                          if e.key not in gone and
                          parsed_args.image_id in (None, e.image_id)]
            outcome = sorted([(e, 'deleted') for e in deleted] +
                             [(e, 'failed') for e in failed],
                             key=lambda item: _order(item[0]))
            names = _datastore_names(session, deleted + failed)
            records = [dict(make_record(e, image_cache.policy, names),
                            result=result) for e, result in outcome]
        self.failed = [e.name for e in failed]
        if not records:
            self.app.note('Nothing to purge in the image cache of backend '
                          '%s.' % backend)
        return self.rows(parsed_args, records)


class Warm(_CacheCommand, show.ShowOne):
    """Fill the cache with an image ahead of use."""

    fields = FIELDS + ('result',)

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image_id', metavar='IMAGE_ID',
                            help='Glance image id. A cached image only has '
                                 'its last use refreshed.')
        return parser

    def take_action(self, parsed_args):
        # Not at the top: importing cinder.image.glance before
        # cinder.image.image_utils fails (a circular import in cinder).
        from cinder.image import glance

        backend, conf = self.app.configure()
        image_id = parsed_args.image_id
        notify.setup(CONF)
        try:
            context = image_access.service_context()
        except exceptions.NoServiceCredentials as exc:
            raise CommandError(str(exc), EXIT_USAGE)
        image_service = glance.get_default_image_service()
        with _coordinator(), set_up_driver(
                backend, conf, self.app.options.vcenter_timeout) as drv:
            try:
                entry, filled = drv.image_cache.warm(context, image_service,
                                                     image_id)
            except exceptions.ImageNotCacheable as exc:
                raise CommandError('image %s cannot be cached on backend '
                                   '%s: %s' % (image_id, backend, exc))
            except exceptions.CacheWaitTimeout:
                raise CommandError(
                    'another request held the cache lock of image %s for '
                    'longer than image_cache_wait_timeout; try again later'
                    % image_id)
            except cinder_exception.ImageNotFound:
                raise CommandError(
                    'image %s is not in Glance, or cinder\'s service user '
                    'cannot see it; check the id' % image_id)
            except cinder_exception.ImageNotAuthorized:
                raise CommandError(
                    'cinder\'s service user may not read image %s; check '
                    'its visibility and the [glance] or [service_user] '
                    'credentials' % image_id)
            names = _datastore_names(drv.session, [entry])
            record = dict(make_record(entry, drv.image_cache.policy, names),
                          result='filled' if filled else 'already cached')
        return self.fields, _cells(record, self.fields)


COMMANDS = (('list', ListEntries), ('show', ShowEntries), ('purge', Purge),
            ('warm', Warm))


class ImageCacheApp(app.App):
    """The command on cliff: its parser, formatters and help.

    Errors and logging are ours: each failure is one masked line with its
    exit code; oslo.log is set up from cinder.conf once a command runs.
    """

    NAME = PROG

    def __init__(self):
        manager = commandmanager.CommandManager(None)
        for name, command in COMMANDS:
            manager.add_command(name, command)
        self.secrets = Secrets()
        super().__init__(description=DESCRIPTION,
                         version=version.version_string(),
                         command_manager=manager, deferred_help=True)

    def build_option_parser(self, description, version, argparse_kwargs=None):
        parser = super().build_option_parser(
            description, version, dict(argparse_kwargs or {}, prog=PROG,
                                       epilog=EPILOG,
                                       conflict_handler='resolve'))
        # cliff prints the program name of sys.argv[0] (python -m: no).
        parser.add_argument('--version', action='version', version=version)
        # Replace cliff's help texts: these are cinder.conf's options.
        parser.add_argument('--debug', action='store_true',
                            help='Log at DEBUG level, also on the console, '
                                 'and show tracebacks on errors.')
        parser.add_argument('--log-file', metavar='PATH',
                            help='Log to this file instead of the log_file '
                                 'of cinder.conf.')
        parser.add_argument('--config-file', action='append', default=[],
                            dest='config_files', metavar='PATH',
                            help='A cinder.conf to read; repeatable. '
                                 'Default: cinder\'s usual places, as for '
                                 'cinder-manage.')
        parser.add_argument('--config-dir', action='append', default=[],
                            dest='config_dirs', metavar='DIR',
                            help='A directory of *.conf files to read after '
                                 'the --config-file files.')
        parser.add_argument('--backend', metavar='NAME',
                            help='Backend (a name of [DEFAULT] '
                                 'enabled_backends) whose image cache to '
                                 'manage. Optional when exactly one backend '
                                 'is enabled.')
        parser.add_argument('--vcenter-timeout', type=_seconds, default=60,
                            metavar='SECONDS',
                            help='Give up (exit code 3) when vCenter does '
                                 'not accept the connection and the login '
                                 'within this many seconds (default: 60).')
        return parser

    def configure_logging(self):
        """Nothing yet: oslo.log is set up from cinder.conf in configure()."""

    def interact(self):
        self.parser.error('a command is required: %s' % ', '.join(
            name for name, _ in COMMANDS))

    def run_subcommand(self, argv):
        try:
            self.command_manager.find_command(argv)
        except ValueError:
            self.parser.error('unknown command %r (commands: %s)' % (
                ' '.join(argv), ', '.join(name for name, _ in COMMANDS)))
        return super().run_subcommand(argv)

    def clean_up(self, cmd, result, err):
        if isinstance(err, KeyboardInterrupt):
            self.note('Interrupted.')

    def note(self, text):
        """A message for the operator: stderr, masked."""
        self.stderr.write(self.secrets(text) + '\n')

    def configure(self):
        """Read cinder.conf, set up logging, check the backend's section.

        :returns: (backend name, the backend's cinder Configuration).
        """
        options = self.options
        args = []
        for path in options.config_files:
            args += ['--config-file', path]
        for path in options.config_dirs:
            args += ['--config-dir', path]
        if options.log_file:
            args += ['--log-file', options.log_file]
        if options.debug:
            args.append('--debug')
        _read_configuration(args)
        # The coordination URL is secret too (it may hold a password).
        self.secrets.add(_url_password(CONF.coordination.backend_url))
        if options.debug:
            console_level = python_logging.DEBUG
        elif options.verbose_level > self.DEFAULT_VERBOSE_LEVEL:
            console_level = python_logging.INFO
        else:
            console_level = python_logging.WARNING
        _setup_logging(self.secrets, console_level)
        objects.register_all()
        backend = _backend_name(options.backend)
        conf = backend_configuration(backend)
        _check_configuration(backend, conf, self.secrets)
        return backend, conf

    def report_failure(self, exc):
        """Say why a command failed, in one line; return its exit code."""
        if isinstance(exc, CommandError):
            code, message = exc.code, str(exc)
        elif isinstance(exc, vexc.VimConnectionException):
            code = EXIT_VCENTER
            message = 'lost the connection to vCenter: %s' % exc
        else:
            code = EXIT_FAILED
            message = '%s: %s' % (type(exc).__name__, exc)
            if not self.options.debug:
                message += ' (run with --debug for the traceback)'
        self.note('ERROR: %s' % message)
        if self.options.debug:
            self.note(''.join(traceback.format_exception(exc)).rstrip())
        return code


def _seconds(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a whole number' % text)
    if value < 1:
        raise argparse.ArgumentTypeError('%d is less than 1' % value)
    return value


def main(argv=None):
    """Run the command line ``argv`` (default: sys.argv[1:]).

    Returns the exit code documented in the module docstring.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return ImageCacheApp().run(argv)
    except SystemExit as exc:
        # Only argument parsing exits: help and --version (0), usage
        # errors (2).
        return EXIT_OK if exc.code in (None, 0) else EXIT_USAGE


if __name__ == '__main__':
    sys.exit(main())
