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
import logging as python_logging
import sys
import traceback

from cinder import objects
from cinder import version
from cliff import app
from cliff import commandmanager
from oslo_config import cfg
from oslo_vmware import exceptions as vexc

from cinder_vmware_cache.cli import commands
from cinder_vmware_cache.cli import config
from cinder_vmware_cache.cli import errors
from cinder_vmware_cache.cli import masking
from cinder_vmware_cache.cli import records

CONF = cfg.CONF

PROG = 'cinder-vmware-image-cache'

# The names other code takes from here.
DRIVER_PATH = config.DRIVER_PATH
FIELDS = records.FIELDS
EXIT_OK = errors.EXIT_OK
EXIT_FAILED = errors.EXIT_FAILED
EXIT_USAGE = errors.EXIT_USAGE
EXIT_VCENTER = errors.EXIT_VCENTER
EXIT_INTERRUPTED = errors.EXIT_INTERRUPTED

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


class ImageCacheApp(app.App):
    """The command on cliff: its parser, formatters and help.

    Errors and logging are ours: each failure is one masked line with its
    exit code; oslo.log is set up from cinder.conf once a command runs.
    """

    NAME = PROG

    def __init__(self):
        manager = commandmanager.CommandManager(None)
        for name, command in commands.COMMANDS:
            manager.add_command(name, command)
        self.secrets = masking.Secrets()
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
            name for name, _ in commands.COMMANDS))

    def run_subcommand(self, argv):
        try:
            self.command_manager.find_command(argv)
        except ValueError:
            self.parser.error('unknown command %r (commands: %s)' % (
                ' '.join(argv),
                ', '.join(name for name, _ in commands.COMMANDS)))
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
        config.read_configuration(args, PROG)
        # The coordination URL is secret too (it may hold a password).
        self.secrets.add(masking.url_password(CONF.coordination.backend_url))
        if options.debug:
            console_level = python_logging.DEBUG
        elif options.verbose_level > self.DEFAULT_VERBOSE_LEVEL:
            console_level = python_logging.INFO
        else:
            console_level = python_logging.WARNING
        config.setup_logging(self.secrets, console_level)
        objects.register_all()
        backend = config.backend_name(options.backend)
        conf = config.backend_configuration(backend)
        config.check_configuration(backend, conf, self.secrets)
        return backend, conf

    def report_failure(self, exc):
        """Say why a command failed, in one line; return its exit code."""
        if isinstance(exc, errors.CommandError):
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
    # The main() of this module by its name, as the console script runs
    # it: cliff names a command's distribution in its help when it is not
    # the App's, and the App's module must not be __main__ for that.
    from cinder_vmware_cache.cmd import image_cache
    sys.exit(image_cache.main())
