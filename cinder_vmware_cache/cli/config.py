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

"""cinder.conf and the backend's section, read as cinder reads them.

Logging is set up from the same configuration, with secrets masked.
"""

import logging as python_logging
import re
import sys
import warnings

from cinder.common import config  # noqa: F401
from cinder import version
from cinder.volume import configuration as volume_configuration
from cinder.volume import driver as base_driver
from cinder.volume.drivers.vmware import vmdk
from oslo_config import cfg
from oslo_log import log as logging

from cinder_vmware_cache.cli import errors
from cinder_vmware_cache.cli import masking
from cinder_vmware_cache import driver as cache_driver
from cinder_vmware_cache import opts as cache_opts

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

CREDENTIALS = ('vmware_host_ip', 'vmware_host_username',
               'vmware_host_password')
DRIVER_PATH = '%s.%s' % (cache_driver.VMwareVcVmdkCacheDriver.__module__,
                         cache_driver.VMwareVcVmdkCacheDriver.__name__)


def read_configuration(args, prog):
    """Parse the configuration files as cinder-manage does."""
    try:
        CONF(args, project='cinder', prog=prog,
             version=version.version_string())
    except cfg.ConfigFilesNotFoundError as exc:
        raise errors.CommandError(
            'cannot read configuration file(s): %s' %
            ', '.join(exc.config_files), errors.EXIT_USAGE)
    except cfg.ConfigFileParseError as exc:
        # The message quotes the offending line, which may hold a secret.
        line = re.search(r':(\d+), ', exc.msg or '')
        raise errors.CommandError(
            'cannot parse configuration file %s%s' % (
                exc.config_file,
                ' at line %s' % line.group(1) if line else ''),
            errors.EXIT_USAGE)
    except cfg.ConfigDirNotFoundError as exc:
        raise errors.CommandError(
            'cannot read configuration directory: %s' % exc.config_dir,
            errors.EXIT_USAGE)
    except cfg.Error as exc:
        raise errors.CommandError(str(exc), errors.EXIT_USAGE)


def setup_logging(secrets, console_level):
    """oslo.log as configured, but never on stdout (results go there).

    The console shows ``console_level`` and above; a log file configured
    in cinder.conf gets the usual records. Every handler masks secrets.
    """
    try:
        logging.setup(CONF, 'cinder')
    except (OSError, cfg.Error) as exc:
        raise errors.CommandError('cannot set up logging: %s' % exc,
                                  errors.EXIT_USAGE)
    python_logging.captureWarnings(True)
    for handler in python_logging.getLogger().handlers:
        if (isinstance(handler, python_logging.StreamHandler) and
                not isinstance(handler, python_logging.FileHandler)):
            if handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
            handler.setLevel(console_level)
        handler.setFormatter(
            masking.RedactingFormatter(handler.formatter, secrets))


def backend_name(backend):
    enabled = [b for b in (CONF.enabled_backends or []) if b]
    if not backend:
        if len(enabled) != 1:
            raise errors.CommandError(
                '--backend NAME is required (enabled backends: %s)' %
                (', '.join(enabled) or 'none'), errors.EXIT_USAGE)
        backend = enabled[0]
    if backend not in enabled:
        raise errors.CommandError(
            'unknown backend %s: it is not in [DEFAULT] enabled_backends '
            '(%s)' % (backend, ', '.join(enabled) or 'empty'),
            errors.EXIT_USAGE)
    if backend not in CONF.list_all_sections():
        raise errors.CommandError(
            'unknown backend %s: the configuration has no [%s] section' % (
                backend, backend), errors.EXIT_USAGE)
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


def check_configuration(backend, conf, secrets):
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
            raise errors.CommandError(
                '[%s] %s: %s' % (backend, opt.dest, exc), errors.EXIT_USAGE)
    missing = [name for name in CREDENTIALS if not conf.safe_get(name)]
    if missing:
        raise errors.CommandError(
            'backend %s has no vCenter credentials: %s not set in its [%s] '
            'section (this command needs the vmware_host_ip, '
            'vmware_host_username and vmware_host_password the volume '
            'service uses)' % (backend, ', '.join(missing), backend),
            errors.EXIT_USAGE)
    volume_driver = conf.safe_get('volume_driver')
    if volume_driver != DRIVER_PATH:
        LOG.warning('Backend %(be)s has volume_driver = %(drv)s, not '
                    '%(ours)s; its cache folder is read anyway.',
                    {'be': backend, 'drv': volume_driver,
                     'ours': DRIVER_PATH})
    if conf.safe_get('vmware_insecure'):
        # The operator chose it in cinder.conf; do not warn per request.
        warnings.filterwarnings('ignore', message='Unverified HTTPS request')
