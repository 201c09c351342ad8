#!/usr/bin/env python3
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

"""Benchmark the image-template cache against the stock VMDK driver.

Runs against the vCenter named by VCENTER_HOST, VCENTER_PORT and
VCENTER_WSDL (the simulator or a real one), in one process except for the
concurrent hits in two processes (bench/worker.py, sharing a private
redis-server), prints a table and writes results.json, bench.png and
bench.log under --out. Everything it creates in vCenter is deleted at the
end. See README.md.
"""

import argparse
import contextlib
import dataclasses
import functools
import json
import logging
import os
import shutil
import socket
import ssl
import sys
import time
import urllib.request
import uuid
import warnings

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)
warnings.filterwarnings('ignore', message='(?s).*Eventlet is deprecated')

# Importing bench first applies cinder's eventlet monkey patching (see
# bench/__init__.py), which must precede oslo_vmware and cinder.volume.
from bench import cluster
from bench import probe as probe_mod
from bench import report
from cinder.volume.drivers.vmware import vmdk
from cinder.volume.drivers.vmware import volumeops
import eventlet
from oslo_utils import units
from oslo_vmware import exceptions as vexc
from oslo_vmware import vim_util

from cinder_vmware_cache import cache as cache_mod
from cinder_vmware_cache import driver as cache_driver
from cinder_vmware_cache import inventory as inv
from cinder_vmware_cache.testing import disk_images
from cinder_vmware_cache.testing import endpoint
from cinder_vmware_cache.testing import images
from cinder_vmware_cache.testing import servers
from cinder_vmware_cache.testing import vcenter

ENV = ('VCENTER_HOST', 'VCENTER_PORT', 'VCENTER_WSDL')
PROFILES = {
    'full': {'sizes': [64, 256, 1024], 'reps': 5, 'ns': [1, 5, 20],
             'templates': [0, 10, 100, 1000], 'two_ds_mib': 256,
             'hit_ns': [1, 8, 20]},
    'quick': {'sizes': [1, 4], 'reps': 1, 'ns': [1, 5],
              'templates': [0, 10], 'two_ds_mib': 128, 'hit_ns': [1, 8, 20]},
}
# The concurrent-hits section's image, in MiB (streamOptimized).
HITS_MIB = 1
# The two-datastores section's data-rate model: the 2-core profile of
# doc/simulator.md, in MiB/s (0: no cap, local copies at disk speed).
RATE_PROFILE = {'upload_mbps': 16, 'xds_copy_mbps': 60, 'local_copy_mbps': 0}
DISK_TYPES = ('streamOptimized', 'preallocated')
# Alternate orders, so no kind always runs right after the same other one.
ORDERS = (('stock', 'miss', 'hit', 'floor'), ('miss', 'floor', 'hit', 'stock'))
CACHE_BACKEND = 'bench_cache'
STOCK_BACKEND = 'bench_stock'
PROJECT = 'cvc-bench'
CACHED = {'use_image_cache': 'true'}
POOL = 8
LOG = logging.getLogger('bench')


class BenchError(Exception):
    pass


class RatesUnavailable(Exception):
    pass


class RateModel(object):
    """The simulator's data-rate model: GET and POST /vcsim/rates."""

    def __init__(self):
        settings = endpoint.from_env()
        self.url = 'https://%s:%d/vcsim/rates' % (
            settings['vmware_host_ip'], settings['vmware_host_port'])
        self._tls = (ssl._create_unverified_context()
                     if settings['vmware_insecure']
                     else ssl.create_default_context())

    def state(self, settings=None):
        """The rates and counters, after setting ``settings`` if given."""
        request = urllib.request.Request(
            self.url, method='GET' if settings is None else 'POST',
            data=None if settings is None else json.dumps(settings).encode(),
            headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, context=self._tls,
                                        timeout=10) as answer:
                state = json.loads(answer.read())
        except (OSError, ValueError) as exc:
            raise RatesUnavailable('%s %s: %s' % (request.method, self.url,
                                                  exc))
        if not (isinstance(state, dict) and
                {'counters', *RATE_PROFILE} <= set(state)):
            raise RatesUnavailable('%s %s: not a data-rate model: %.80s'
                                   % (request.method, self.url, state))
        return state

    def counters(self):
        return self.state()['counters']


class Bench(object):
    """The scenarios; every volume, clone and template is tracked."""

    def __init__(self, probe, errors):
        self.probe = probe
        self.errors = errors
        self.svc = images.LocalImageService()
        self.scratch = images.scratch_dir()
        self.files = {}
        self.ctx = vcenter.user_context(PROJECT)
        self.volumes = []
        self.clones = []
        self.cache_drv = self.stock_drv = self.cache = None

    # ---- set-up and clean-up -------------------------------------------
    def setup(self):
        self.cache_drv = vcenter.make_driver(
            CACHE_BACKEND, enable_image_cache=True,
            driver_class=cache_driver.VMwareVcVmdkCacheDriver)
        self.cache = self.cache_drv.image_cache
        # No periodic purge: it would add round trips to the counts.
        self.cache.stop()
        self.stock_drv = vcenter.make_driver(
            STOCK_BACKEND, driver_class=vmdk.VMwareVcVmdkDriver)
        self.refresh_datastores()
        stale = self.cache.purge(expired_only=False)
        wrap = self.probe.wrap
        wrap(self.cache_drv, ['_select_ds_for_volume', 'copy_image_to_volume',
                              '_extend_backing'])
        wrap(self.cache_drv.volumeops, ['clone_backing', 'get_backing',
                                        'update_backing_disk_uuid'])
        wrap(self.cache.inventory, ['folder_for', 'copies', 'touch',
                                    'publish', 'seed', 'list_entries',
                                    'disk_size'])
        wrap(self.stock_drv, ['_fetch_stream_optimized_image',
                              '_create_volume_from_non_stream_optimized_image',
                              '_extend_backing'])
        return len(stale)

    def about(self):
        about = self.cache_drv.session.vim.service_content.about
        return '%s (API %s)' % (about.fullName, about.apiVersion)

    def delete_volumes(self):
        for drv, volume in self.volumes:
            ref = drv.volumeops.get_backing(volume.name, volume.id)
            if ref is not None:
                drv.volumeops.delete_backing(ref)
        for ref in self.clones:
            self.cache_drv.volumeops.delete_backing(ref)
        self.volumes, self.clones = [], []
        self.refresh_datastores()

    def refresh_datastores(self):
        """Have vCenter re-read the free space of every datastore.

        The simulator does not give the space of a destroyed VM's disks back
        to summary.freeSpace; without a refresh, the volumes of a full run
        use it up and datastore selection fails (NoValidDatastore).
        """
        session = self.cache_drv.session
        for ref in self._refs('Datastore'):
            try:
                session.invoke_api(session.vim, 'RefreshDatastore', ref)
            except vexc.VimException:
                LOG.warning('RefreshDatastore failed on %s', ref,
                            exc_info=True)

    def cleanup(self):
        """Delete what the run made in vCenter; return what is left."""
        if self.cache_drv is None:
            return []
        self.delete_volumes()
        refs = [e.ref for e in self.cache.list_all()]
        list(eventlet.GreenPool(POOL).imap(self.cache.inventory.delete,
                                           refs))
        left = self.cache.list_all()
        for project in (PROJECT, inv.project_name(CACHE_BACKEND)):
            self._delete_project_folder(project)
        return ['cache VM %s' % e.name for e in left]

    def _refs(self, mo_type):
        """References of every managed object of one type."""
        session = self.cache_drv.session
        result = session.invoke_api(vim_util, 'get_objects', session.vim,
                                    mo_type, 100)
        with vim_util.WithRetrieval(session.vim, result) as objects:
            return [obj.obj for obj in objects]

    def _delete_project_folder(self, project):
        session = self.cache_drv.session
        vops = self.cache_drv.volumeops
        for dc in self._refs('Datacenter'):
            path = '%s/vm/OpenStack/Project (%s)' % (
                vops.get_inventory_path(dc).rstrip('/'), project)
            folder = vops.get_entity_by_inventory_path(path)
            if folder is None:
                continue
            if self._vm_count(folder):
                self.errors.append('not deleted, not empty: %s' % path)
                continue
            session.wait_for_task(session.invoke_api(
                session.vim, 'Destroy_Task', folder))

    def _vm_count(self, folder):
        session = self.cache_drv.session
        children = session.invoke_api(vim_util, 'get_object_property',
                                      session.vim, folder, 'childEntity')
        refs = getattr(children, 'ManagedObjectReference', None) or []
        return sum(self._vm_count(r) if r._type == 'Folder' else 1
                   for r in refs)

    def evict(self, image_id, keys=None):
        self.cache.purge(expired_only=False, image_id=image_id, keys=keys)

    # ---- helpers -------------------------------------------------------
    def image(self, size_mib, disk_type):
        """A new image id (so never cached) over a generated vmdk file."""
        key = (size_mib, disk_type)
        if key not in self.files:
            directory = os.path.join(self.scratch, '%s-%d' % key[::-1])
            os.mkdir(directory)
            self.files[key] = disk_images.make_vmdk(
                directory, size_mib * units.Mi, disk_type)
        return self.svc.add(self.files[key], disk_type=disk_type,
                            virtual_size=size_mib * units.Mi)

    def new_volume(self, drv, cached):
        volume = vcenter.new_volume(self.ctx, 1, CACHED if cached else None)
        self.volumes.append((drv, volume))
        return volume

    def measure(self, kind, image_id, label):
        # Flush the page cache first, so that writing back what the last
        # step wrote is not timed as part of this one.
        os.sync()
        if kind == 'floor':
            return self.measured_floor(self.template(image_id))
        drv = self.stock_drv if kind == 'stock' else self.cache_drv
        return self.measured_create(kind, drv, image_id, label)

    def measured_create(self, kind, drv, image_id, label):
        volume = self.new_volume(drv, kind != 'stock')
        before = self.svc.downloads.get(image_id, 0)
        with self.probe.measure() as m:
            drv.clone_image(self.ctx, volume, None,
                            self.svc.show(self.ctx, image_id), self.svc)
        if drv.volumeops.get_backing(volume.name, volume.id) is None:
            raise BenchError('%s %s: volume %s has no backing'
                             % (label, kind, volume.id))
        downloads = self.svc.downloads.get(image_id, 0) - before
        if downloads != (0 if kind == 'hit' else 1):
            self.errors.append('%s %s: %d downloads' % (label, kind,
                                                        downloads))
        return m.as_dict()

    def template(self, image_id):
        for entry in self.cache.entries():
            if entry.image_id == image_id and entry.ready:
                return entry
        raise BenchError('no cached template of image %s' % image_id)

    def measured_floor(self, entry):
        volume = vcenter.new_volume(self.ctx, 1)
        host, rp, folder, summary = self.cache_drv._select_ds_for_volume(
            volume)
        with self.probe.measure() as m:
            self.clones.append(self.cache_drv.volumeops.clone_backing(
                'bench-floor-%s' % volume.id, entry.ref, None,
                volumeops.FULL_CLONE_TYPE, summary.datastore, host=host,
                resource_pool=rp, folder=folder))
        return m.as_dict()

    # ---- scenarios -----------------------------------------------------
    def create_times(self, sizes, reps):
        rows = []
        for size in sizes:
            for disk_type in DISK_TYPES:
                image_id = self.image(size, disk_type)
                label = '%d MiB %s' % (size, disk_type)
                runs = {kind: [] for kind in report.KINDS}
                for rep in range(reps):
                    print('  %s, repetition %d/%d' % (label, rep + 1, reps),
                          flush=True)
                    for kind in ORDERS[rep % len(ORDERS)]:
                        runs[kind].append(self.measure(kind, image_id,
                                                       label))
                    self.delete_volumes()
                    self.evict(image_id)
                rows.append({'size_mib': size, 'disk_type': disk_type,
                             'runs': runs})
        return rows

    def concurrency(self, ns, size):
        rows = []
        for n in ns:
            image_id = self.image(size, DISK_TYPES[0])
            volumes = [self.new_volume(self.cache_drv, True)
                       for _ in range(n)]
            pool = eventlet.GreenPool(n)
            with self.probe.measure(phases=False) as m:
                outcomes = list(pool.imap(
                    functools.partial(self._one_request, image_id), volumes))
            failed = [o for o in outcomes if isinstance(o, str)]
            for message in sorted(set(failed)):
                self.errors.append('N=%d: %s' % (n, message))
            latencies = sorted(o for o in outcomes if not isinstance(o, str))
            rows.append({'n': n, 'seconds': m.seconds, 'calls': m.calls,
                         'downloads': self.svc.downloads.get(image_id, 0),
                         'ok': len(latencies), 'failed': len(failed),
                         'max_request_s': max(latencies or [0])})
            self.delete_volumes()
            self.evict(image_id)
        return rows

    def concurrent_hits(self, ns, size_mib):
        """N concurrent hits of one cached image against N bare clones.

        The image is cached first by one request (not measured). Per N, N
        hits (our ``clone_image``) run at once, and N bare ``CloneVM_Task``
        of the same template, as the floor does them; the order of the two
        alternates from one N to the next. The simulator's data-rate model
        is off (all rates 0) while the section runs, and the rates in place
        before are restored afterwards; a vCenter without the model runs as
        it is.
        """
        rates = RateModel()
        try:
            before = rates.state()
        except RatesUnavailable as exc:
            rates = None
            model = 'none: %s' % exc
        else:
            model = 'off while measuring, then restored to %s' % (
                ', '.join('%s %g' % (k, before[k]) for k in RATE_PROFILE))
        image_id = self.image(size_mib, DISK_TYPES[0])
        rows = []
        try:
            if rates is not None:
                rates.state({k: 0 for k in RATE_PROFILE})
            warm = self._one_request(image_id,
                                     self.new_volume(self.cache_drv, True))
            if isinstance(warm, str):
                raise BenchError('concurrent hits: the request that caches '
                                 'the image failed: %s' % warm)
            entry = self.template(image_id)
            for i, n in enumerate(ns):
                print('  N=%d' % n, flush=True)
                rows.append(self._hits_row(
                    rates, i, n, functools.partial(
                        self._concurrent_hits, image_id, n),
                    functools.partial(self._concurrent_bare, entry, n)))
            two = self._two_process_hits(rates, image_id, size_mib, entry,
                                         ns)
        finally:
            if rates is not None:
                rates.state({k: before[k] for k in RATE_PROFILE})
            self.delete_volumes()
            self.evict(image_id)
        return {'size_mib': size_mib, 'disk_type': DISK_TYPES[0],
                'rate_model': model, 'rows': rows, 'two_processes': two}

    def _hits_row(self, rates, i, n, hits, bare):
        """One N: hits() and bare(), in an order alternating with ``i``."""
        row = {'n': n}
        for kind in (('hits', 'bare'), ('bare', 'hits'))[i % 2]:
            os.sync()
            before_bytes = rates.counters() if rates else None
            row[kind] = hits() if kind == 'hits' else bare()
            if rates is not None:
                after = rates.counters()
                row[kind]['bytes'] = {k: after[k] - before_bytes[k]
                                      for k in report.BYTE_COUNTERS}
        self.delete_volumes()
        return row

    def _two_process_hits(self, rates, image_id, size_mib, entry, ns):
        """The same N hits and N bare clones, split across two processes.

        Two worker processes (bench/worker.py), each with its own driver,
        vCenter session and coordinator on one private redis-server, first
        make one hit each (their warm-up, as the one-process section's
        first request; not measured), then get ceil(N/2) and floor(N/2)
        requests (N = 1: the first one only) and start them when this
        process sends "go". Wall time: from just before "go" to the end of
        the last request of either process.
        Returns {'skipped': why, 'ns': ns} (and 'fix') when redis-server
        or the redis package is missing, or when a worker fails outside a
        request (an error too).
        """
        missing = cluster.unavailable()
        if missing:
            print('  two processes on redis: not measured: %s; fix: %s'
                  % missing, flush=True)
            return {'skipped': missing[0], 'fix': missing[1], 'ns': ns}
        print('  two processes on redis: starting redis-server and two '
              'workers', flush=True)
        server = servers.RedisServer()
        workers = []
        try:
            server.start()
            job = {'backend': CACHE_BACKEND, 'lock_url': server.url,
                   'project': PROJECT,
                   'image': {'id': image_id, 'disk_type': DISK_TYPES[0],
                             'path': self.files[(size_mib, DISK_TYPES[0])],
                             'size': size_mib * units.Mi}}
            workers = [cluster.Worker(name, job, self.scratch)
                       for name in ('A', 'B')]
            warm_up = []
            for worker in workers:
                ready = worker.expect('ready', timeout=300)
                self.volumes.extend((self.cache_drv, _Named(**v))
                                    for v in ready['volumes'])
                warm_up.append(ready['warm_up'])
                if ready['warm_up']['downloads']:
                    self.errors.append(
                        'concurrent hits, two processes: the warm-up hit of '
                        'worker %s downloaded the cached image' % worker.name)
                LOG.info('two processes on %s: worker %s is pid %s',
                         server.url, worker.name, ready['pid'])
            self.delete_volumes()
            template = vim_util.get_moref_value(entry.ref)
            rows = []
            for i, n in enumerate(ns):
                split = [n] if n == 1 else [n - n // 2, n // 2]
                print('  N=%d, two processes on redis (%s)' % (
                    n, '+'.join(map(str, split)) if n > 1
                    else 'one process only'), flush=True)
                row = self._hits_row(
                    rates, i, n,
                    functools.partial(self._in_workers, workers, 'hits',
                                      split, template, n),
                    functools.partial(self._in_workers, workers, 'bare',
                                      split, template, n))
                row['split'] = split
                rows.append(row)
        except (cluster.WorkerError, RuntimeError, OSError) as exc:
            LOG.exception('two processes on redis failed')
            self.errors.append('concurrent hits, two processes on redis: %s'
                               % exc)
            return {'skipped': 'failed: %s' % str(exc).splitlines()[0],
                    'ns': ns}
        finally:
            for worker in workers:
                worker.close()
            server.stop()
        return {'lock_server': 'redis-server %s' % server.version,
                'warm_up': warm_up, 'rows': rows}

    def _in_workers(self, workers, kind, split, template, n):
        """``kind`` requests in the workers, ``split`` between them.

        Each worker first makes its volumes or stock placements (not
        timed) and says so, then all get "go" at once. The volumes are
        tracked as soon as they are named, the clones when reported.
        """
        busy = workers[:len(split)]
        for worker, count in zip(busy, split):
            worker.send(json.dumps({'kind': kind, 'count': count,
                                    'template': template}))
        for worker in busy:
            self.volumes.extend(
                (self.cache_drv, _Named(**v))
                for v in worker.expect('armed')['volumes'])
        go = time.time()
        for worker in busy:
            worker.send('go')
        done = [worker.expect('done') for worker in busy]
        for answer in done:
            self.clones.extend(vim_util.get_moref(value, 'VirtualMachine')
                               for value in answer['clones'])
        records = [r for answer in done for r in answer['records']]
        downloads = sum(answer['downloads'] for answer in done)
        if downloads:
            self.errors.append('concurrent hits N=%d, two processes: %d '
                               'download(s) of a cached image'
                               % (n, downloads))
        m = probe_mod.Measurement()
        m.seconds = max(r['finished'] for r in records) - go
        for answer in done:
            m.calls += answer['calls']
            m.soap_seconds += answer['soap_seconds']
            m.methods.update(answer['methods'])
        row = self._concurrent_row(
            'two processes, %s' % ('hits' if kind == 'hits'
                                   else 'bare clones'), n, m,
            [r['error'] or r['finished'] - r['started'] for r in records])
        row['processes'] = [
            {'requests': len(a['records']), 'calls': a['calls'],
             'go_delay_s': a['go_at'] - go,
             'seconds': max(r['finished'] for r in a['records']) - go}
            for a in done]
        return row

    def _concurrent_hits(self, image_id, n):
        volumes = [self.new_volume(self.cache_drv, True) for _ in range(n)]
        downloads = self.svc.downloads.get(image_id, 0)
        pool = eventlet.GreenPool(n)
        with self.probe.measure(phases=False) as m:
            outcomes = list(pool.imap(functools.partial(
                self._one_request, image_id, check=False), volumes))
        downloads = self.svc.downloads.get(image_id, 0) - downloads
        if downloads:
            self.errors.append('concurrent hits N=%d: %d download(s) of a '
                               'cached image' % (n, downloads))
        outcomes = [o if isinstance(o, str) or
                    self.cache_drv.volumeops.get_backing(v.name, v.id)
                    else 'no backing after create'
                    for v, o in zip(volumes, outcomes)]
        return self._concurrent_row('hits', n, m, outcomes)

    def _concurrent_bare(self, entry, n):
        placements = []
        for _ in range(n):
            volume = vcenter.new_volume(self.ctx, 1)
            placements.append((volume,) +
                              tuple(self.cache_drv._select_ds_for_volume(
                                  volume)))
        pool = eventlet.GreenPool(n)
        with self.probe.measure(phases=False) as m:
            outcomes = list(pool.imap(functools.partial(
                self._one_clone, entry), placements))
        return self._concurrent_row('bare clones', n, m, outcomes)

    def _one_clone(self, entry, placement):
        """Seconds of one bare clone of the template (as the floor)."""
        volume, host, rp, folder, summary = placement
        start = time.monotonic()
        try:
            self.clones.append(self.cache_drv.volumeops.clone_backing(
                'bench-bare-%s' % volume.id, entry.ref, None,
                volumeops.FULL_CLONE_TYPE, summary.datastore, host=host,
                resource_pool=rp, folder=folder))
        except Exception as exc:
            LOG.exception('concurrent bare clone failed')
            return '%s: %s' % (type(exc).__name__, exc)
        return time.monotonic() - start

    def _concurrent_row(self, what, n, m, outcomes):
        failed = [o for o in outcomes if isinstance(o, str)]
        for message in sorted(set(failed)):
            self.errors.append('concurrent hits N=%d, %s: %s'
                               % (n, what, message))
        latencies = sorted(o for o in outcomes if not isinstance(o, str))
        return {'seconds': m.seconds, 'calls': m.calls,
                'soap_seconds': m.soap_seconds, 'methods': dict(m.methods),
                'ok': len(latencies), 'failed': len(failed),
                'latencies': latencies}

    def _one_request(self, image_id, volume, check=True):
        """Seconds of one create, or what went wrong.

        check=False leaves the look-up of the new backing to the caller, so
        that its round trip is not counted as part of the request.
        """
        start = time.monotonic()
        try:
            self.cache_drv.clone_image(
                self.ctx, volume, None, self.svc.show(self.ctx, image_id),
                self.svc)
            if check and self.cache_drv.volumeops.get_backing(
                    volume.name, volume.id) is None:
                return 'no backing after create'
        except Exception as exc:
            LOG.exception('concurrent create failed')
            return '%s: %s' % (type(exc).__name__, exc)
        return time.monotonic() - start

    def stats(self, counts):
        volume = vcenter.new_volume(self.ctx, 1)
        host, rp, _, summary = self.cache_drv._select_ds_for_volume(volume)
        folder = self.cache.inventory.folder_for(self.cache_drv._get_dc(rp))
        make = functools.partial(self._fake_template, folder, rp, host,
                                 summary)
        rows, have = [], 0
        for count in sorted(counts):
            print('  %d cached templates' % count, flush=True)
            list(eventlet.GreenPool(POOL).imap(make, range(count - have)))
            have = count
            with self.probe.measure(phases=False) as relist:
                self.cache.purge()
            with self.probe.measure(phases=False) as m:
                stats = self.cache_drv.get_volume_stats(refresh=True)
            with self.probe.measure(phases=False) as stock:
                self.stock_drv.get_volume_stats(refresh=True)
            listed = sum(1 for e in self.cache.entries() if e.ready)
            if listed != count:
                self.errors.append('the cache lists %d of %d templates'
                                   % (listed, count))
            rows.append({
                'templates': count, 'listed': listed, 'calls': m.calls,
                'seconds': m.seconds, 'methods': dict(m.methods),
                'stock_calls': stock.calls, 'relist_calls': relist.calls,
                'provisioned_gb': stats.get(cache_driver.STATS_KEY)})
        return rows

    def two_datastores(self, size_mib, reps):
        """The stock driver and the cache's paths between two datastores.

        Runs with RATE_PROFILE set on the simulator's data-rate model, so
        that where the bytes travel (upload, cross-datastore or local copy)
        decides the time as on a vCenter; the rates in place before are
        restored afterwards. Returns {'skipped': why} without a data-rate
        model (a real vCenter) or with fewer than two datastores.
        """
        rates = RateModel()
        try:
            before = rates.state()
        except RatesUnavailable as exc:
            return {'skipped': 'the vCenter has no data-rate model (%s)'
                    % exc}
        names = self._datastore_names()
        if len(set(names.values())) < 2:
            return {'skipped': 'the backend has %d datastore(s) (%s); the '
                    'section needs two (simulator: -ds 2)' % (
                        len(names), ', '.join(sorted(names.values())))}
        stock_ds, copy_ds = sorted(set(names.values()))[:2]
        image_id = self.image(size_mib, DISK_TYPES[0])
        # The first copy is filled unpaced: oslo.vmware closes an NFC upload
        # without reading the answer, and the simulator loses what a paced
        # upload still has in flight, so the copy would lack its last MiBs.
        rates.state(dict(RATE_PROFILE, upload_mbps=0))
        try:
            [(_entry, added)] = self.cache.warm(
                self.ctx, self.svc, image_id, datastores=[copy_ds])
            if added != cache_mod.ADDED_FILLED:
                raise BenchError('warm on %s: %s, not filled'
                                 % (copy_ds, added))
            rates.state(RATE_PROFILE)
            with self._stock_choice(stock_ds):
                runs = self._two_datastore_runs(rates, names, image_id,
                                                stock_ds, copy_ds, reps)
        finally:
            rates.state({k: before[k] for k in RATE_PROFILE})
            self.delete_volumes()
            self.evict(image_id)
        return {'size_mib': size_mib, 'disk_type': DISK_TYPES[0],
                'image_bytes': os.path.getsize(
                    self.files[(size_mib, DISK_TYPES[0])]),
                'rates': RATE_PROFILE, 'stock_datastore': stock_ds,
                'copy_datastore': copy_ds, 'runs': runs}

    def _two_datastore_runs(self, rates, names, image_id, stock_ds, copy_ds,
                            reps):
        """The measurements of each path, per repetition in this order.

        Stock; a hit where the first copy is (copy_ds); a seeded first hit
        and the next hit where it is not (stock_ds); after dropping the
        seeded copy, the previous release's clone from copy_ds to stock_ds.
        """
        runs = {path: [] for path in report.TWO_DS_PATHS}

        def create(path, expected_ds):
            runs[path].append(self._create_on(rates, names, path, image_id,
                                              expected_ds))

        for rep in range(reps):
            print('  repetition %d/%d' % (rep + 1, reps), flush=True)
            create('stock', None)
            self._expect_copies(image_id, names, {copy_ds}, 'before hit')
            create('hit', copy_ds)
            with self._policy(placement='stock'):
                create('seeded', stock_ds)
                self._expect_copies(image_id, names, {copy_ds, stock_ds},
                                    'after seeded')
                create('next', stock_ds)
            self.evict(image_id, keys=[
                e.key for e in self.cache.list_all()
                if e.image_id == image_id and
                names.get(e.datastore) == stock_ds])
            with self._policy(placement='stock', max_copies_per_image=1):
                create('previous', stock_ds)
            self._expect_copies(image_id, names, {copy_ds}, 'after previous')
            self.delete_volumes()
        return runs

    def _create_on(self, rates, names, path, image_id, expected_ds):
        """One measured create, plus where its bytes and volume went.

        ``bytes``: what the rate model counted on each path while it ran.
        """
        os.sync()
        before = rates.counters()
        cached = path != 'stock'
        drv = self.cache_drv if cached else self.stock_drv
        m = self.measured_create('hit' if cached else 'stock', drv,
                                 image_id, 'two datastores, %s' % path)
        after = rates.counters()
        m['bytes'] = {k: after[k] - before[k] for k in report.BYTE_COUNTERS}
        _drv, volume = self.volumes[-1]
        backing = drv.volumeops.get_backing(volume.name, volume.id)
        m['datastore'] = names.get(vim_util.get_moref_value(
            drv.volumeops.get_datastore(backing)))
        if expected_ds and m['datastore'] != expected_ds:
            self.errors.append('two datastores, %s: volume on %s, not %s'
                               % (path, m['datastore'], expected_ds))
        return m

    def _datastore_names(self):
        """{moref value: name} of the datastores the cache may use."""
        stock = self.cache._stock
        candidates = stock.candidates(vcenter.new_volume(self.ctx, 1))
        return {vim_util.get_moref_value(ref): props['summary'].name
                for ref, props in candidates.datastores.items()}

    def _expect_copies(self, image_id, names, expected, when):
        found = {names.get(e.datastore, e.datastore)
                 for e in self.cache.list_all()
                 if e.image_id == image_id and e.ready}
        if found != expected:
            raise BenchError('two datastores, %s: copies on %s, expected %s'
                             % (when, sorted(found), sorted(expected)))

    @contextlib.contextmanager
    def _policy(self, **changes):
        policy = self.cache.policy
        self.cache.policy = dataclasses.replace(policy, **changes)
        try:
            yield
        finally:
            self.cache.policy = policy

    @contextlib.contextmanager
    def _stock_choice(self, name):
        """Make datastore ``name`` the stock selection's choice.

        The simulator's datastores share one file system, so the stock
        ranking (free space) may flip from one step to the next, and a
        path would land elsewhere than measured. Only the choice among
        all candidates is pinned: prefer-cached and warm still choose
        among the datastores they name.
        """
        stock = self.cache._stock
        place = stock.place

        def pinned(volume, candidates, datastores=None):
            if datastores is None:
                datastores = {ref: props for ref, props
                              in candidates.datastores.items()
                              if props['summary'].name == name}
            return place(volume, candidates, datastores)

        stock.place = pinned
        try:
            yield
        finally:
            stock.place = place

    def _fake_template(self, folder, rp, host, summary, _):
        """A ready cache entry of 1 GiB without a disk: cheap to make."""
        image_id = str(uuid.uuid4())
        vm = self.cache_drv.volumeops.create_backing_disk_less(
            inv.partial_name(image_id, uuid.uuid4().hex[:8]), folder, rp,
            host, summary.name)
        self.cache.inventory.publish(
            vm, image_id, units.Gi,
            vim_util.get_moref_value(summary.datastore),
            inv.template_name(image_id), None)


class _Named(object):
    """A volume that a worker created: what delete_volumes needs of it."""

    def __init__(self, id, name):
        self.id = id
        self.name = name


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: 1 and 4 MiB, one repetition, '
                             'N up to 5, 0 and 10 templates, 128 MiB on two '
                             'datastores (concurrent hits: N = 1, 8, 20 as '
                             'in a full run)')
    parser.add_argument('--sizes', help='image sizes in MiB, comma '
                        'separated (default 64,256,1024; quick: 1,4)')
    parser.add_argument('--reps', type=int,
                        help='repetitions per size (default 5; quick: 1)')
    parser.add_argument('--two-ds-mib', type=int,
                        help='image size in MiB of the two-datastores '
                             'section (default 256; quick: 128)')
    parser.add_argument('--out', default=os.path.join(TOP, 'bench',
                                                      'results'),
                        help='output directory (default bench/results)')
    args = parser.parse_args(argv)
    config = dict(PROFILES['quick' if args.quick else 'full'])
    if args.sizes:
        try:
            config['sizes'] = [int(s) for s in args.sizes.split(',')]
        except ValueError:
            parser.error('--sizes takes integers, e.g. 64,256,1024')
    if args.reps is not None:
        config['reps'] = args.reps
    if args.two_ds_mib is not None:
        config['two_ds_mib'] = args.two_ds_mib
    if min(config['sizes'] + [config['two_ds_mib']]) < 1 or \
            config['reps'] < 1:
        parser.error('sizes and repetitions must be at least 1')
    config['mode'] = 'quick' if args.quick else 'full'
    return args, config


def run(config, errors):
    probe = probe_mod.Probe()
    probe.install()
    bench = Bench(probe, errors)
    results = {'config': config, 'errors': errors, 'facts': []}
    started = time.monotonic()
    try:
        print('Setting up the drivers...', flush=True)
        stale = bench.setup()
        if stale:
            results['facts'].append('%d cache templates left by an earlier '
                                    'run were deleted first.' % stale)
        results['header'] = report.header(config, bench.about(), TOP)
        print('Create time per volume:', flush=True)
        results['create'] = bench.create_times(config['sizes'],
                                               config['reps'])
        print('Concurrent requests for one uncached image...', flush=True)
        results['concurrency'] = bench.concurrency(config['ns'],
                                                   config['sizes'][0])
        print('Concurrent hits of one cached %d MiB image against bare '
              'clones:' % HITS_MIB, flush=True)
        results['concurrent_hits'] = bench.concurrent_hits(config['hit_ns'],
                                                           HITS_MIB)
        print('Two datastores, %d MiB image:' % config['two_ds_mib'],
              flush=True)
        results['two_datastores'] = bench.two_datastores(
            config['two_ds_mib'], config['reps'])
        if 'skipped' in results['two_datastores']:
            print('  skipped: %s' % results['two_datastores']['skipped'],
                  flush=True)
        print('Stats round trips:', flush=True)
        results['stats'] = bench.stats(config['templates'])
    finally:
        print('Cleaning up...', flush=True)
        try:
            errors.extend('left in vCenter: %s' % what
                          for what in bench.cleanup())
        finally:
            shutil.rmtree(bench.scratch, ignore_errors=True)
            probe.uninstall()
            vcenter.stop_coordination()
    results['seconds'] = time.monotonic() - started
    results['facts'].append('Load average at the end: %.2f %.2f %.2f (1, 5, '
                            '15 min); the machine has %d CPUs.'
                            % (os.getloadavg() + (os.cpu_count(),)))
    return results


def main(argv=None):
    args, config = parse_args(argv)
    missing = [name for name in ENV if not os.environ.get(name)]
    if missing:
        print('error: set %s to the vCenter to benchmark, e.g. the '
              'simulator: VCENTER_HOST=127.0.0.1 VCENTER_PORT=8989 '
              'VCENTER_WSDL=file://$VCSIM_PREFIX/wsdl/vimService.wsdl '
              '(or run it through tools/test.sh -e bench)'
              % ', '.join(missing), file=sys.stderr)
        return 2
    if not shutil.which('qemu-img'):
        print('error: qemu-img is missing (streamOptimized images); fix: '
              'apt-get install qemu-utils, or run tools/test.sh -e bench '
              'as root', file=sys.stderr)
        return 2
    host, port = os.environ['VCENTER_HOST'], os.environ['VCENTER_PORT']
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except (OSError, ValueError) as exc:
        print('error: no vCenter at %s:%s (%s)' % (host, port, exc),
              file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, 'bench.log')
    logging.basicConfig(filename=log_path, filemode='w', level=logging.INFO,
                        format='%(asctime)s %(levelname)s %(name)s '
                               '%(message)s', force=True)
    logging.captureWarnings(True)
    errors = []
    try:
        results = run(config, errors)
    except Exception as exc:
        LOG.exception('benchmark failed')
        print('error: the benchmark failed: %s: %s (details in %s)'
              % (type(exc).__name__, exc, log_path), file=sys.stderr)
        for error in errors:
            print('error: %s' % error, file=sys.stderr)
        return 1
    print(report.write(results, args.out))
    for error in errors:
        print('error: %s' % error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
