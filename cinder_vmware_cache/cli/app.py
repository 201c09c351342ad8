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

"""The cliff App of cinder-vmware-image-cache: options, help, errors.

The commands' module imports cinder: the entry point
(``cinder_vmware_cache.cmd.image_cache``) patches eventlet before it
imports this one.
"""

import argparse
import logging as python_logging
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

CONF = cfg.CONF

PROG = 'cinder-vmware-image-cache'

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
            code = errors.EXIT_VCENTER
            message = 'lost the connection to vCenter: %s' % exc
        else:
            code = errors.EXIT_FAILED
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
