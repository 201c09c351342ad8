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

"""The commands list, show, purge and warm, on cliff for its output formats."""

from cinder import exception as cinder_exception
from cliff import lister
from oslo_config import cfg

from cinder_vmware_cache import cache
from cinder_vmware_cache.cli import errors
from cinder_vmware_cache.cli import records
from cinder_vmware_cache.cli import vcenter
from cinder_vmware_cache import exceptions
from cinder_vmware_cache import image_access
from cinder_vmware_cache import notify

CONF = cfg.CONF

# The formats that carry every field unless -c picks some.
COMPLETE_FORMATS = ('json', 'yaml')


class _CacheCommand(object):
    """What the commands share: their columns, one-line errors, exit codes.

    Mixed in before cliff's Lister or ShowOne, whose run() would log an
    error and return 1 whatever the cause.
    """

    fields = records.FIELDS
    table_columns = records.LIST_COLUMNS

    def run(self, parsed_args):
        try:
            unknown = [c for c in parsed_args.columns
                       if c not in self.fields]
            if unknown:
                raise errors.CommandError(
                    'unknown column %s (columns: %s)' % (
                        ', '.join(unknown), ', '.join(self.fields)),
                    errors.EXIT_USAGE)
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

    def rows(self, parsed_args, found):
        names = self.columns_for(parsed_args)
        return names, [records.cells(r, names) for r in found]

    def cache_session(self, backend, conf, **cache_args):
        return vcenter.cache_session(
            backend, conf, self.app.options.vcenter_timeout, **cache_args)

    def list_records(self, backend, conf, image_id=None):
        with self.cache_session(backend, conf) as (image_cache, session):
            entries = sorted((e for e in image_cache.list_all()
                              if image_id in (None, e.image_id)),
                             key=records.order)
            names = records.datastore_names(session, entries)
            return [records.make_record(
                e, image_cache.policy, names,
                image_cache.inventory.datacenter_names) for e in entries]


class ListEntries(_CacheCommand, lister.Lister):
    """List the cache entries of the backend."""

    def take_action(self, parsed_args):
        backend, conf = self.app.configure()
        found = self.list_records(backend, conf)
        if not found:
            self.app.note('The image cache of backend %s is empty.' %
                          backend)
        return self.rows(parsed_args, found)


class ShowEntries(_CacheCommand, lister.Lister):
    """Show the cache entries of one image (every field)."""

    table_columns = records.FIELDS

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image_id', metavar='IMAGE_ID',
                            help='Glance image id.')
        return parser

    def take_action(self, parsed_args):
        backend, conf = self.app.configure()
        found = self.list_records(backend, conf, parsed_args.image_id)
        if not found:
            raise errors.CommandError(
                'image %s is not in the image cache of backend %s' % (
                    parsed_args.image_id, backend))
        return self.rows(parsed_args, found)


class Purge(_CacheCommand, lister.Lister):
    """Delete cache entries that no request is using."""

    fields = records.FIELDS + ('result',)
    table_columns = records.LIST_COLUMNS + ('result',)

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
        parser.add_argument('--datastore', metavar='NAME',
                            help='Only the copies on this datastore (for '
                                 'example before its maintenance).')
        parser.add_argument('--datacenter', metavar='NAME',
                            help='The datacenter of --datastore, where '
                                 'datastore names repeat across '
                                 'datacenters.')
        return parser

    def run(self, parsed_args):
        self.failed = []
        code = super().run(parsed_args)
        if code == errors.EXIT_OK and self.failed:
            self.app.note('ERROR: could not delete %d cache entr%s (in use '
                          'by a request, or refused by vCenter; see the log; '
                          'the periodic purge retries): %s' % (
                              len(self.failed),
                              'y' if len(self.failed) == 1 else 'ies',
                              ', '.join(self.failed)))
            return errors.EXIT_FAILED
        return code

    def take_action(self, parsed_args):
        backend, conf = self.app.configure()
        notify.setup(CONF)
        with vcenter.lock_coordinator(), self.cache_session(
                backend, conf, images=image_access.GlanceImages()) as (
                image_cache, session):
            keys = self._on_datastore(parsed_args, image_cache, session)
            deleted = image_cache.purge(
                expired_only=parsed_args.expired_only,
                image_id=parsed_args.image_id, keys=keys)
            failed = []
            if not parsed_args.expired_only:
                # Everything listed was asked for: what is left failed.
                gone = {e.key for e in deleted}
                failed = [e for e in image_cache.entries()
                          if e.key not in gone and
                          parsed_args.image_id in (None, e.image_id) and
                          (keys is None or e.key in keys)]
            outcome = sorted([(e, 'deleted') for e in deleted] +
                             [(e, 'failed') for e in failed],
                             key=lambda item: records.order(item[0]))
            names = records.datastore_names(session, deleted + failed)
            found = [dict(records.make_record(
                e, image_cache.policy, names,
                image_cache.inventory.datacenter_names), result=result)
                for e, result in outcome]
        self.failed = [e.name for e in failed]
        if not found and parsed_args.datastore:
            self.app.note('No copy on datastore %s in the image cache of '
                          'backend %s.' % (parsed_args.datastore, backend))
        elif not found:
            self.app.note('Nothing to purge in the image cache of backend '
                          '%s.' % backend)
        return self.rows(parsed_args, found)

    @staticmethod
    def _on_datastore(parsed_args, image_cache, session):
        """Keys of the entries on --datastore; None without the option."""
        if parsed_args.datastore is None:
            if parsed_args.datacenter is not None:
                raise errors.CommandError('--datacenter needs --datastore',
                                          errors.EXIT_USAGE)
            return None
        entries = image_cache.list_all()
        try:
            found = records.on_datastore(
                entries, records.datastore_names(session, entries),
                image_cache.inventory.datacenter_names,
                parsed_args.datastore, parsed_args.datacenter)
        except ValueError as exc:
            raise errors.CommandError(str(exc), errors.EXIT_USAGE)
        return {e.key for e in found}


class Warm(_CacheCommand, lister.Lister):
    """Fill the cache with an image ahead of use."""

    fields = records.FIELDS + ('result',)
    table_columns = records.LIST_COLUMNS + ('result',)

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image_id', metavar='IMAGE_ID',
                            help='Glance image id. A cached image only has '
                                 'its last use refreshed.')
        parser.add_argument('--datastore', metavar='NAME', action='append',
                            dest='datastores',
                            help='Put a copy on this datastore (repeat for '
                                 'several), seeded from a copy in its '
                                 'datacenter where there is one. Default: '
                                 'the datastore the stock selection '
                                 'chooses.')
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
            raise errors.CommandError(str(exc), errors.EXIT_USAGE)
        image_service = glance.get_default_image_service()
        with vcenter.lock_coordinator(), vcenter.set_up_driver(
                backend, conf, self.app.options.vcenter_timeout) as drv:
            try:
                done = drv.image_cache.warm(context, image_service, image_id,
                                            datastores=parsed_args.datastores)
            except exceptions.DatastoreNotEligible as exc:
                raise errors.CommandError(
                    'cannot warm image %s on backend %s: %s' % (
                        image_id, backend, exc), errors.EXIT_USAGE)
            except exceptions.ImageNotCacheable as exc:
                raise errors.CommandError(
                    'image %s cannot be cached on backend %s: %s' % (
                        image_id, backend, exc))
            except exceptions.CacheWaitTimeout:
                raise errors.CommandError(
                    'another request held the cache lock of image %s for '
                    'longer than image_cache_wait_timeout; try again later'
                    % image_id)
            except cinder_exception.ImageNotFound:
                raise errors.CommandError(
                    'image %s is not in Glance, or cinder\'s service user '
                    'cannot see it; check the id' % image_id)
            except cinder_exception.ImageNotAuthorized:
                raise errors.CommandError(
                    'cinder\'s service user may not read image %s; check '
                    'its visibility and the [glance] or [service_user] '
                    'credentials' % image_id)
            entries = [entry for entry, _added in done]
            names = records.datastore_names(drv.session, entries)
            drv.image_cache.inventory.discover_folders()
            found = [dict(records.make_record(
                entry, drv.image_cache.policy, names,
                drv.image_cache.inventory.datacenter_names),
                result=_WARM_RESULTS.get(added, 'already cached'))
                for entry, added in done]
        return self.rows(parsed_args, found)


_WARM_RESULTS = {cache.ADDED_FILLED: 'filled',
                 cache.ADDED_SEEDED: 'seeded'}


COMMANDS = (('list', ListEntries), ('show', ShowEntries), ('purge', Purge),
            ('warm', Warm))
