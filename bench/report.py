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

"""Tables, targets, notes and the plot of a benchmark run."""

import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess

KINDS = ('stock', 'miss', 'hit', 'floor')
PACKAGES = ('cinder', 'oslo.vmware', 'suds-community', 'pyvmomi', 'eventlet',
            'tooz')
GIB_MIB = 1024
STOCK_HIT_MIN = 10.0
HIT_FLOOR_MAX = 1.3
MISS_STOCK_MAX = 1.3
TARGET_N = 20
# The two-datastores section: its paths, and the rate model's byte counters.
TWO_DS_PATHS = ('stock', 'hit', 'seeded', 'next', 'previous')
TWO_DS_LABELS = {
    'stock': 'stock driver (no cache)',
    'hit': 'hit on the datastore holding a copy',
    'seeded': 'first hit on the other datastore (seeds a copy)',
    'next': 'next hit on that datastore',
    'previous': 'previous release: one copy, cloned across datastores',
}
BYTE_COUNTERS = ('upload_bytes', 'xds_copy_bytes', 'local_copy_bytes')
# The concurrent-hits section: N hits against N bare clones.
HITS_BARE_MAX = 1.3
ROUND_TRIPS_PER_HIT_MAX = 6
HITS_ROUND_TRIPS_N = 1


# ---- header ------------------------------------------------------------
def _read(path, key):
    try:
        with open(path) as stream:
            for line in stream:
                if line.startswith(key):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return None


def _command(*argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return 'not installed'


def header(config, vcenter_about, top):
    mem_kib = (_read('/proc/meminfo', 'MemTotal') or '0 kB').split()[0]
    commit = _command('git', '-C', top, 'rev-parse', '--short', 'HEAD')
    if commit and _command('git', '-C', top, 'status', '--porcelain'):
        commit += ' plus uncommitted changes'
    endpoint = '%s:%s' % (os.environ.get('VCENTER_HOST'),
                          os.environ.get('VCENTER_PORT'))
    return [
        ('date', datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC')),
        ('machine', '%s; %s; %d CPUs; %.1f GiB RAM' % (
            platform.platform(), _read('/proc/cpuinfo', 'model name'),
            os.cpu_count(), int(mem_kib) / 1024.0 / 1024.0)),
        ('load', '%.2f %.2f %.2f (1, 5, 15 min averages) at the start'
         % os.getloadavg()),
        ('python', platform.python_version()),
        ('packages', ', '.join('%s %s' % (p, _version(p))
                               for p in PACKAGES)),
        ('qemu-img', (_command('qemu-img', '--version').splitlines() or
                      ['not found'])[0]),
        ('vCenter', '%s at %s' % (vcenter_about, endpoint)),
        ('project', 'cinder_vmware_cache, commit %s' % (commit or '?')),
        ('run', '%s: sizes %s MiB, repetitions %d, N %s, templates %s, '
         'two datastores %d MiB, concurrent hits N %s' % (
             config['mode'], ','.join(map(str, config['sizes'])),
             config['reps'], ','.join(map(str, config['ns'])),
             ','.join(map(str, config['templates'])),
             config['two_ds_mib'], ','.join(map(str, config['hit_ns'])))),
    ]


# ---- numbers -----------------------------------------------------------
def _median(values):
    return statistics.median(values) if values else float('nan')


def _ratio(a, b):
    return a / b if b else float('nan')


def summarize(create_rows, stat=_median):
    """Times per kind (median by default), and the ratios, for each row."""
    out = []
    for row in create_rows:
        runs = row['runs']
        med = {k: stat([m['seconds'] for m in runs[k]]) for k in KINDS}
        calls = {k: _median([m['calls'] for m in runs[k]]) for k in KINDS}
        out.append(dict(row, time=med, calls=calls,
                        stock_hit=_ratio(med['stock'], med['hit']),
                        miss_stock=_ratio(med['miss'], med['stock']),
                        hit_floor=_ratio(med['hit'], med['floor'])))
    return out


def summarize_two_ds(section):
    """Per path: median seconds, calls and bytes, datastores, stock/path."""
    out = {}
    for path in TWO_DS_PATHS:
        runs = section['runs'][path]
        out[path] = {
            'time': _median([m['seconds'] for m in runs]),
            'calls': _median([m['calls'] for m in runs]),
            'bytes': {k: _median([m['bytes'][k] for m in runs])
                      for k in BYTE_COUNTERS},
            'datastores': sorted({m['datastore'] for m in runs})}
    for row in out.values():
        row['stock_ratio'] = _ratio(out['stock']['time'], row['time'])
    return out


def summarize_hits(section):
    """Per N: hits and bare clones' wall times, ratio, calls per request."""
    out = []
    for row in section['rows']:
        n, hits, bare = row['n'], row['hits'], row['bare']
        out.append({
            'n': n, 'hits_s': hits['seconds'], 'bare_s': bare['seconds'],
            'ratio': _ratio(hits['seconds'], bare['seconds']),
            'calls_per_hit': hits['calls'] / n,
            'calls_per_bare': bare['calls'] / n,
            'slowest_hit_s': max(hits['latencies'] or [0]),
            'slowest_bare_s': max(bare['latencies'] or [0]),
            'failed': hits['failed'] + bare['failed']})
    return out


def _phases(measurements):
    """Median seconds per phase, plus SOAP and untimed remainders."""
    names = sorted({p for m in measurements for p in m['phases']})
    phases = {p: _median([m['phases'].get(p, 0.0) for m in measurements])
              for p in names}
    phases['(not in a timed phase)'] = _median(
        [m['seconds'] - sum(m['phases'].values()) for m in measurements])
    return phases


def _methods(measurements):
    names = sorted({n for m in measurements for n in m['methods']})
    return {n: _median([m['methods'].get(n, 0) for m in measurements])
            for n in names}


# ---- text --------------------------------------------------------------
def table(headers, rows):
    cells = [list(headers)] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ['  '.join(c.rjust(w) if i else c.ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def _s(value):
    return '%.3f' % value


def _x(value):
    return '%.2fx' % value


def _create_table(rows, calls=True):
    headers = ('image', 'disk type', 'stock s', 'miss s', 'hit s',
               'floor s', 'stock/hit', 'miss/stock', 'hit/floor')
    body = [['%d MiB' % r['size_mib'], r['disk_type'],
             *[_s(r['time'][k]) for k in KINDS], _x(r['stock_hit']),
             _x(r['miss_stock']), _x(r['hit_floor'])] for r in rows]
    if calls:
        headers += ('calls s/m/h/f',)
        for line, r in zip(body, rows):
            line.append('/'.join('%g' % r['calls'][k] for k in KINDS))
    return table(headers, body)


def _mib(size_bytes):
    return '%.1f' % (size_bytes / 1048576.0)


def _two_ds_title(section, reps):
    if 'skipped' in section:
        return ['Two datastores: skipped: %s' % section['skipped']]
    rates = section['rates']
    return ['Two datastores: %d MiB %s image; data-rate model upload %g, '
            'cross-datastore copy %g, local copy %g MiB/s (0: no cap); '
            'stock choice pinned to %s, first copy on %s; median of %d; MiB '
            'moved per path from the model\'s counters' % (
                section['size_mib'], section['disk_type'],
                rates['upload_mbps'], rates['xds_copy_mbps'],
                rates['local_copy_mbps'], section['stock_datastore'],
                section['copy_datastore'], reps)]


def _two_ds_table(section):
    summary = summarize_two_ds(section)
    return table(('path', 'volume on', 'median s', 'stock/path',
                  'SOAP calls', 'upload MiB', 'cross-ds MiB', 'local MiB'),
                 [(TWO_DS_LABELS[p], ','.join(r['datastores']),
                   _s(r['time']), _x(r['stock_ratio']), '%g' % r['calls'],
                   *[_mib(r['bytes'][k]) for k in BYTE_COUNTERS])
                  for p, r in summary.items()])


def _phase_table(row):
    per_kind = {k: _phases(row['runs'][k]) for k in KINDS}
    names = sorted({p for v in per_kind.values() for p in v},
                   key=lambda p: (p.startswith('('), p))
    body = [(p, *[_s(per_kind[k][p]) if p in per_kind[k] else '-'
                  for k in KINDS]) for p in names]
    body.append(('total', *[_s(row['time'][k]) for k in KINDS]))
    body.append(('total, min-max', *['%.2f-%.2f' % (
        min(m['seconds'] for m in row['runs'][k]),
        max(m['seconds'] for m in row['runs'][k])) for k in KINDS]))
    body.append(('SOAP calls (count)', *['%g' % row['calls'][k]
                                         for k in KINDS]))
    body.append(('time inside SOAP calls', *[_s(_median(
        [m['soap_seconds'] for m in row['runs'][k]])) for k in KINDS]))
    return table(('%d MiB %s, median s' % (row['size_mib'],
                                           row['disk_type']),) + KINDS, body)


def _concurrency_table(rows):
    return table(('N', 'wall s', 'slowest request s', 'downloads',
                  'volumes created', 'failed', 'SOAP calls'),
                 [(r['n'], _s(r['seconds']), _s(r['max_request_s']),
                   r['downloads'], r['ok'], r['failed'], r['calls'])
                  for r in rows])


def _hits_title(section):
    return ('Concurrent hits of one cached %d MiB %s image against as many '
            'bare clones of its template (one process; data-rate model: %s)'
            % (section['size_mib'], section['disk_type'],
               section['rate_model']))


def _hits_table(section, n_cell=str):
    return table(('N', 'hits wall s', 'bare wall s', 'hits/bare',
                  'round trips per hit', 'round trips per bare clone',
                  'slowest hit s', 'slowest bare s', 'failed'),
                 [(n_cell(r['n']), _s(r['hits_s']), _s(r['bare_s']),
                   _x(r['ratio']), '%g' % r['calls_per_hit'],
                   '%g' % r['calls_per_bare'], _s(r['slowest_hit_s']),
                   _s(r['slowest_bare_s']), r['failed'])
                  for r in summarize_hits(section)])


def _split(row):
    split = row['split']
    return ('one process only' if len(split) == 1
            else '+'.join(map(str, split)))


def _hits_two_lines(section, two):
    """The two-process title and table, or the line saying why not."""
    title = ('Concurrent hits of one cached %d MiB %s image against as many '
             'bare clones of its template (two processes, redis): each N '
             'split across two worker processes, each with its own driver, '
             'vCenter session and coordinator on one private %s; the bare '
             'clones split the same way; wall time from "go" to the last '
             'request of either process; round trips of both processes; '
             'data-rate model as above' % (
                 section['size_mib'], section['disk_type'],
                 two.get('lock_server', 'redis-server')))
    if 'skipped' in two:
        return [title, '  not measured: %s%s' % (
            two['skipped'], '; fix: %s' % two['fix'] if 'fix' in two
            else '')]
    splits = {r['n']: _split(r) for r in two['rows']}
    return [title, _hits_table(two, lambda n: '%d (%s)' % (n, splits[n]))]


def _stats_table(rows):
    return table(('cached templates', 'listed by cache', 'stats round trips',
                  'stock driver round trips', 'stats s',
                  're-list round trips', 'provisioned GiB'),
                 [(r['templates'], r['listed'], r['calls'], r['stock_calls'],
                   _s(r['seconds']), r['relist_calls'], r['provisioned_gb'])
                  for r in rows])


# ---- targets and notes -------------------------------------------------
def _status(ok):
    return 'MET' if ok else 'MISSED'


def targets(summary, concurrency, stats):
    """[(status, text)] for the five targets of the issue."""
    out = []
    at_gib = [r for r in summary if r['size_mib'] == GIB_MIB]
    values = ', '.join('%s %s' % (r['disk_type'], _x(r['stock_hit']))
                       for r in at_gib)
    if at_gib:
        out.append((_status(all(r['stock_hit'] >= STOCK_HIT_MIN
                                for r in at_gib)),
                    'stock/hit >= %gx at 1 GiB: %s' % (STOCK_HIT_MIN,
                                                       values)))
    else:
        out.append(('n/a', 'stock/hit >= %gx at 1 GiB: 1 GiB not measured'
                    % STOCK_HIT_MIN))
    for key, limit, text in (('hit_floor', HIT_FLOOR_MAX, 'hit/floor'),
                             ('miss_stock', MISS_STOCK_MAX, 'miss/stock')):
        worst = max(summary, key=lambda r: r[key])
        out.append((_status(worst[key] <= limit),
                    '%s <= %g for every size: worst %s (%d MiB %s)' % (
                        text, limit, _x(worst[key]), worst['size_mib'],
                        worst['disk_type'])))
    row = [r for r in concurrency if r['n'] == TARGET_N]
    if row:
        out.append((_status(row[0]['downloads'] == 1 and
                            not row[0]['failed']),
                    'one download for %d concurrent requests: %d '
                    'download(s), %d failed' % (TARGET_N,
                                                row[0]['downloads'],
                                                row[0]['failed'])))
    else:
        last = concurrency[-1]
        out.append(('n/a', 'one download for %d concurrent requests: not '
                    'measured (N=%d: %d download(s))' % (
                        TARGET_N, last['n'], last['downloads'])))
    calls = sorted({r['calls'] for r in stats})
    out.append(('n/a' if len(stats) < 2 else _status(len(calls) == 1),
                'constant stats round trips: %s for %s templates' % (
                    '/'.join(str(r['calls']) for r in stats),
                    '/'.join(str(r['templates']) for r in stats))))
    return out


def _per_rep(runs, key):
    """Bytes of one counter, per repetition: '0', or '0/0/0' for three."""
    return '/'.join('%d' % m['bytes'][key] for m in runs)


def _every(runs, key, value):
    return all(m['bytes'][key] == value for m in runs)


def two_ds_targets(section):
    """[(status, text)] for the two-datastores targets of the issue.

    Bytes are judged on every repetition, times on the medians.
    """
    if 'skipped' in section:
        return [('n/a', 'two datastores: the section was skipped')]
    runs, image = section['runs'], section['image_bytes']
    summary = summarize_two_ds(section)
    hit, seeded, local = runs['hit'], runs['seeded'], runs['next']
    name = 'two datastores, %d MiB' % section['size_mib']
    return [
        (_status(_every(hit, 'upload_bytes', 0) and
                 _every(hit, 'xds_copy_bytes', 0)),
         '%s: a hit on the datastore holding a copy moves 0 upload and 0 '
         'cross-datastore bytes: upload %s B, cross-datastore %s B' % (
             name, _per_rep(hit, 'upload_bytes'),
             _per_rep(hit, 'xds_copy_bytes'))),
        (_status(summary['hit']['stock_ratio'] >= STOCK_HIT_MIN),
         '%s: stock/hit >= %gx: %s (stock %s s, hit %s s)' % (
             name, STOCK_HIT_MIN, _x(summary['hit']['stock_ratio']),
             _s(summary['stock']['time']), _s(summary['hit']['time']))),
        (_status(_every(seeded, 'upload_bytes', 0) and
                 _every(seeded, 'xds_copy_bytes', image)),
         '%s: a seeded first hit moves 0 upload bytes and one image (%d B) '
         'across datastores: upload %s B, cross-datastore %s B' % (
             name, image, _per_rep(seeded, 'upload_bytes'),
             _per_rep(seeded, 'xds_copy_bytes'))),
        (_status(_every(local, 'upload_bytes', 0) and
                 _every(local, 'xds_copy_bytes', 0) and
                 all(m['bytes']['local_copy_bytes'] for m in local)),
         '%s: the next hit on that datastore is local: upload %s B, '
         'cross-datastore %s B, local %s B' % (
             name, _per_rep(local, 'upload_bytes'),
             _per_rep(local, 'xds_copy_bytes'),
             _per_rep(local, 'local_copy_bytes'))),
    ]


def hits_targets(section):
    """[(status, text)] for the concurrent-hits targets.

    hits/bare per N (a failed request misses it whatever the times), and
    the round trips per hit at every N.
    """
    out = []
    summary = summarize_hits(section)
    for r in summary:
        failed = ', %d request(s) failed' % r['failed'] if r['failed'] else ''
        out.append((_status(r['ratio'] <= HITS_BARE_MAX and not r['failed']),
                    'concurrent hits N=%d: hits/bare <= %g: %s (hits %s s, '
                    'bare %s s%s)' % (r['n'], HITS_BARE_MAX, _x(r['ratio']),
                                      _s(r['hits_s']), _s(r['bare_s']),
                                      failed)))
    text = 'round trips per hit <= %d at every N' % ROUND_TRIPS_PER_HIT_MAX
    if summary:
        worst = max(r['calls_per_hit'] for r in summary)
        out.append((_status(worst <= ROUND_TRIPS_PER_HIT_MAX),
                    '%s: worst %g (%s; %d MiB image; a bare clone: %g)' % (
                        text, worst, ', '.join(
                            'N=%d %g' % (r['n'], r['calls_per_hit'])
                            for r in summary),
                        section['size_mib'], summary[0]['calls_per_bare'])))
    else:
        out.append(('n/a', '%s: not measured' % text))
    return out


def hits_two_targets(section):
    """[(status, text)]: hits/bare per N, in two processes on redis.

    A section that was not measured misses every target and says why.
    """
    two = section.get('two_processes')
    if two is None:
        return []
    name = 'concurrent hits, two processes on redis, N=%d: hits/bare <= %g'
    if 'skipped' in two:
        return [('MISSED', '%s: not measured: %s' % (
            name % (n, HITS_BARE_MAX), two['skipped'])) for n in two['ns']]
    out = []
    for r, row in zip(summarize_hits(two), two['rows']):
        failed = ', %d request(s) failed' % r['failed'] if r['failed'] else ''
        out.append((_status(r['ratio'] <= HITS_BARE_MAX and not r['failed']),
                    '%s: %s (hits %s s, bare %s s; %s%s)' % (
                        name % (r['n'], HITS_BARE_MAX), _x(r['ratio']),
                        _s(r['hits_s']), _s(r['bare_s']), _split(row),
                        failed)))
    return out


def all_targets(results):
    """[(status, text)] for every target of the run."""
    hits = results['concurrent_hits']
    return targets(summarize(results['create']), results['concurrency'],
                   results['stats']) + hits_targets(hits) + \
        hits_two_targets(hits) + two_ds_targets(results['two_datastores'])


def _listing(phases):
    return ', '.join('%s %s' % (p, _s(v)) for p, v in
                     sorted(phases.items(), key=lambda i: -i[1]) if v >= 5e-4)


def _breakdown(row, kind):
    return _listing(_phases(row['runs'][kind]))


def _method_diff(row, kind, base):
    a, b = _methods(row['runs'][kind]), _methods(row['runs'][base])
    diff = {n: a.get(n, 0) - b.get(n, 0) for n in set(a) | set(b)}
    return ', '.join('%s %+g' % (n, d) for n, d in sorted(diff.items()) if d)


def two_ds_notes(section):
    """Measured facts behind a missed stock/hit and the stock upload."""
    if 'skipped' in section:
        return []
    summary = summarize_two_ds(section)
    runs, out = section['runs'], []
    if summary['hit']['stock_ratio'] < STOCK_HIT_MIN:
        out.append('two datastores, stock/hit: stock %s s (%s), hit %s s '
                   '(%s); SOAP calls %g and %g.' % (
                       _s(summary['stock']['time']),
                       _listing(_phases(runs['stock'])),
                       _s(summary['hit']['time']),
                       _listing(_phases(runs['hit'])),
                       summary['stock']['calls'], summary['hit']['calls']))
    short = section['image_bytes'] - summary['stock']['bytes']['upload_bytes']
    if short > 0:
        out.append(
            'two datastores: the stock upload counted %d B short of the '
            '%d B image: oslo.vmware closes an NFC upload without reading '
            'the answer, and the simulator, reading at the paced rate, '
            'loses what is still in flight (its log: connection reset by '
            'peer). Stock times are about %s s shorter than a whole upload '
            '(the first copy was filled unpaced, so it is whole).' % (
                short, section['image_bytes'], _s(short / (
                    section['rates']['upload_mbps'] * 1048576.0))))
    return out


def _per_request(methods, n):
    return ', '.join('%s %g' % (name, count / n)
                     for name, count in sorted(methods.items()))


def _ms(seconds, calls):
    return '%.0f' % (1000.0 * seconds / calls) if calls else '-'


def _mean(values):
    return statistics.mean(values) if values else float('nan')


def hits_notes(section):
    """Measured facts behind the concurrent-hits targets."""
    out = _missed_hits_notes(section, 'concurrent hits N=%d')
    rows = {r['n']: r for r in section['rows']}
    one = rows.get(HITS_ROUND_TRIPS_N)
    if one and one['hits']['calls'] > ROUND_TRIPS_PER_HIT_MAX:
        out.append('round trips per hit (N=%d): %d; by method, per hit: %s. '
                   'A bare clone: %s.' % (
                       HITS_ROUND_TRIPS_N, one['hits']['calls'],
                       _per_request(one['hits']['methods'],
                                    HITS_ROUND_TRIPS_N),
                       _per_request(one['bare']['methods'],
                                    HITS_ROUND_TRIPS_N)))
    out += _moved_notes(section, 'concurrent hits')
    two = section.get('two_processes')
    if two is not None and 'skipped' not in two:
        out += hits_two_notes(section, two)
    return out


def hits_two_notes(section, two):
    """What each process did, the one-process bare clones, missed N."""
    name = 'concurrent hits, two processes on redis'
    one_bare = {r['n']: r['bare']['seconds'] for r in section['rows']}
    per_n = []
    for row in two['rows']:
        kinds = []
        for kind in ('hits', 'bare'):
            procs = row[kind]['processes']
            kinds.append('%s %s round trips, last request %s s after go' % (
                kind, '+'.join('%d' % p['calls'] for p in procs),
                '/'.join(_s(p['seconds']) for p in procs)))
        delay = max(p['go_delay_s'] for kind in ('hits', 'bare')
                    for p in row[kind]['processes'])
        per_n.append('N=%d (%s): %s; go read %.1f ms after it was sent at '
                     'most%s' % (
                         row['n'], _split(row), ', '.join(kinds),
                         1000.0 * delay,
                         '; one-process bare clones of that N: %s s'
                         % _s(one_bare[row['n']])
                         if row['n'] in one_bare else ''))
    out = ['%s, per process (A+B): %s. N=1 runs in one process only (the '
           'other waits), so its row measures one process on the shared '
           'redis.' % (name, '; '.join(per_n))]
    if two.get('warm_up'):
        out.append('%s: the first hit of each worker (its warm-up, before '
                   'any measurement) made %s round trips (%s s).' % (
                       name, '+'.join('%d' % w['calls']
                                      for w in two['warm_up']),
                       '/'.join(_s(w['seconds']) for w in two['warm_up'])))
    out += _missed_hits_notes(two, name + ', N=%d')
    out += _moved_notes(two, name)
    return out


def _missed_hits_notes(section, name):
    out = []
    rows = {r['n']: r for r in section['rows']}
    summary = summarize_hits(section)
    base = summary[0]
    for r in summary:
        row = rows[r['n']]
        if r['ratio'] <= HITS_BARE_MAX and not r['failed']:
            continue
        hits, bare = row['hits'], row['bare']
        text = (
            '%s: hits %s s (one hit: mean %s s, slowest '
            '%s s; %d round trips in all, %s ms of wall time each), bare '
            'clones %s s (one clone: mean %s s, slowest %s s; %d round '
            'trips in all, %s ms each).' % (
                name % r['n'], _s(r['hits_s']),
                _s(_mean(hits['latencies'])),
                _s(r['slowest_hit_s']), hits['calls'],
                _ms(r['hits_s'], hits['calls']), _s(r['bare_s']),
                _s(_mean(bare['latencies'])), _s(r['slowest_bare_s']),
                bare['calls'], _ms(r['bare_s'], bare['calls'])))
        if r['n'] != base['n']:
            text += (' Wall time relative to N=%d: hits %s, bare clones %s '
                     '(%s would be fully serialised).' % (
                         base['n'], _x(_ratio(r['hits_s'], base['hits_s'])),
                         _x(_ratio(r['bare_s'], base['bare_s'])),
                         _x(r['n'] / base['n'])))
        out.append(text)
    return out


def _moved_notes(section, name):
    moved = [(r['n'], kind, r[kind]['bytes']) for r in section['rows']
             for kind in ('hits', 'bare') if 'bytes' in r[kind]]
    if not moved:
        return []
    return ['%s, MiB the simulator copied (local / cross-datastore): %s.'
            % (name, '; '.join('N=%d %s %s / %s' % (
                n, kind, _mib(b['local_copy_bytes']),
                _mib(b['xds_copy_bytes'])) for n, kind, b in moved))]


def notes(summary, concurrency, stats):
    """Measured facts behind every missed target."""
    out = []
    for r in summary:
        name = '%d MiB %s' % (r['size_mib'], r['disk_type'])
        med = r['time']
        if r['size_mib'] == GIB_MIB and r['stock_hit'] < STOCK_HIT_MIN:
            out.append(
                'stock/hit, %s: stock %s s, hit %s s, floor %s s. A hit as '
                'fast as the floor would give stock/floor = %s. Image MiB '
                'per second: stock %.0f, floor %.0f. Stock: %s. Hit: %s.'
                % (name, _s(med['stock']), _s(med['hit']), _s(med['floor']),
                   _x(_ratio(med['stock'], med['floor'])),
                   _ratio(r['size_mib'], med['stock']),
                   _ratio(r['size_mib'], med['floor']),
                   _breakdown(r, 'stock'), _breakdown(r, 'hit')))
        if r['hit_floor'] > HIT_FLOOR_MAX:
            hit = _phases(r['runs']['hit'])
            out.append(
                'hit/floor, %s: hit %s s, floor %s s. The clone_backing of '
                'the hit took %s s; the rest of the hit: %s. The hit made '
                'these SOAP calls more than the floor: %s.' % (
                    name, _s(med['hit']), _s(med['floor']),
                    _s(hit.pop('clone_backing', 0.0)), _listing(hit),
                    _method_diff(r, 'hit', 'floor')))
        if r['miss_stock'] > MISS_STOCK_MAX:
            miss = _phases(r['runs']['miss'])
            stock = _phases(r['runs']['stock'])
            imports = max(stock, key=stock.get)
            out.append(
                'miss/stock, %s: miss %s s, stock %s s. The miss imported '
                'the image (copy_image_to_volume %s s; stock: %s %s s), '
                'then cloned the volume from the new template '
                '(clone_backing %s s); the rest of the miss: %s.' % (
                    name, _s(med['miss']), _s(med['stock']),
                    _s(miss.pop('copy_image_to_volume', 0.0)), imports,
                    _s(stock[imports]), _s(miss.pop('clone_backing', 0.0)),
                    _listing(miss)))
    largest = max(r['size_mib'] for r in summary)
    for r in [r for r in summary if r['size_mib'] == largest]:
        clones = sorted(m['phases'].get('clone_backing', 0.0)
                        for k in ('miss', 'hit', 'floor')
                        for m in r['runs'][k])
        out.append('clone_backing of the %d MiB %s template (the clone '
                   'of the miss, the hit and the floor; %d clones): %s-%s '
                   's, median %s s.' % (
                       r['size_mib'], r['disk_type'], len(clones),
                       _s(clones[0]), _s(clones[-1]), _s(_median(clones))))
    for r in concurrency:
        if r['downloads'] != 1 or r['failed']:
            out.append('N=%d: %d download(s), %d request(s) failed (see '
                       'the errors and bench.log).' % (
                           r['n'], r['downloads'], r['failed']))
    if len({r['calls'] for r in stats}) > 1:
        out.extend('stats with %d templates: %d round trips: %s.' % (
            r['templates'], r['calls'], ', '.join(
                '%s %d' % i for i in sorted(r['methods'].items())))
            for r in stats)
    return out


# ---- output ------------------------------------------------------------
def render(results):
    summary = summarize(results['create'])
    largest = max(r['size_mib'] for r in summary)
    parts = ['cinder_vmware_cache benchmark', '']
    parts += ['%-9s %s' % tuple(item) for item in results['header']]
    parts += ['', 'Create time per volume (median of %d; calls = median '
              'SOAP round trips)' % results['config']['reps'],
              _create_table(summary), '']
    if results['config']['reps'] > 1:
        parts += ['The same with the fastest of the %d repetitions'
                  % results['config']['reps'],
                  _create_table(summarize(results['create'], min), False),
                  '']
    parts += ['Where the time goes (largest image, medians)']
    for row in summary:
        if row['size_mib'] == largest:
            parts += [_phase_table(row), '']
    parts += ['Concurrent requests for one uncached %d MiB streamOptimized '
              'image' % results['config']['sizes'][0],
              _concurrency_table(results['concurrency']), '',
              _hits_title(results['concurrent_hits']),
              _hits_table(results['concurrent_hits']), '']
    if 'two_processes' in results['concurrent_hits']:
        parts += _hits_two_lines(results['concurrent_hits'],
                                 results['concurrent_hits']['two_processes'])
        parts += ['']
    parts += ['Round trips of one stats refresh (get_volume_stats)',
              _stats_table(results['stats']), '']
    two_ds = results['two_datastores']
    parts += _two_ds_title(two_ds, results['config']['reps'])
    if 'skipped' not in two_ds:
        parts += [_two_ds_table(two_ds)]
    parts += ['', 'Targets']
    parts += ['  [%s] %s' % t for t in all_targets(results)]
    facts = (results['facts'] +
             notes(summary, results['concurrency'], results['stats']) +
             hits_notes(results['concurrent_hits']) + two_ds_notes(two_ds))
    parts += ['', 'Notes']
    parts += ['  - %s' % f for f in facts + [
        'Round trips are counted in this process (oslo.vmware transport): '
        'other clients of the same vCenter do not change them, but they '
        'do change times.',
        'Run time %.0f s.' % results['seconds']]]
    if results['errors']:
        parts += ['', 'Errors'] + ['  - %s' % e for e in results['errors']]
    return '\n'.join(parts)


def plot(results, path):
    """Write the PNG; return None, or why it was skipped."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        from matplotlib import pyplot
    except ImportError:
        return 'matplotlib is not installed'
    summary = summarize(results['create'])
    two_ds = results['two_datastores']
    two_ds_row = 'skipped' not in two_ds
    figure, axes = pyplot.subplots(3 + two_ds_row, 2,
                                   figsize=(12, 4.5 * (3 + two_ds_row)))
    for ax, disk_type in zip(axes[0], ('streamOptimized', 'preallocated')):
        rows = [r for r in summary if r['disk_type'] == disk_type]
        width = 0.2
        for i, kind in enumerate(KINDS):
            ax.bar([j + (i - 1.5) * width for j in range(len(rows))],
                   [r['time'][kind] for r in rows], width, label=kind)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(['%d MiB' % r['size_mib'] for r in rows])
        ax.set_yscale('log')
        ax.set_ylabel('median create time (s)')
        ax.set_title('create from %s image' % disk_type)
        ax.legend()
    conc = results['concurrency']
    ax = axes[1][0]
    ax.plot([r['n'] for r in conc], [r['seconds'] for r in conc], 'o-')
    for r in conc:
        ax.annotate('%d download(s)' % r['downloads'],
                    (r['n'], r['seconds']))
    ax.set_xticks([r['n'] for r in conc])
    ax.set_xlabel('concurrent requests (N)')
    ax.set_ylabel('wall time (s)')
    ax.set_title('N requests for one uncached image')
    ax = axes[1][1]
    stats = results['stats']
    ax.plot([r['templates'] for r in stats], [r['calls'] for r in stats],
            'o-', label='cache driver')
    ax.plot([r['templates'] for r in stats],
            [r['stock_calls'] for r in stats], 's--', label='stock driver')
    ax.set_xscale('symlog', linthresh=10)
    ax.set_ylim(0, 2 + max([r['calls'] for r in stats] +
                           [r['stock_calls'] for r in stats] + [0]))
    ax.set_xlabel('cached templates')
    ax.set_ylabel('SOAP round trips')
    ax.set_title('one stats refresh')
    ax.legend()
    _plot_hits(axes[2], results['concurrent_hits'])
    if two_ds_row:
        _plot_two_ds(axes[3], two_ds)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return None


def _plot_hits(axes, section):
    summary = summarize_hits(section)
    ns = [r['n'] for r in summary]
    ax = axes[0]
    ax.plot(ns, [r['hits_s'] for r in summary], 'o-', label='hits')
    ax.plot(ns, [r['bare_s'] for r in summary], 's--', label='bare clones')
    for r in summary:
        ax.annotate(_x(r['ratio']), (r['n'], r['hits_s']))
    two = section.get('two_processes') or {'skipped': True}
    if 'skipped' not in two:
        two_summary = summarize_hits(two)
        two_ns = [r['n'] for r in two_summary]
        ax.plot(two_ns, [r['hits_s'] for r in two_summary], '^-',
                label='hits, two processes (redis)')
        ax.plot(two_ns, [r['bare_s'] for r in two_summary], 'v--',
                label='bare clones, two processes')
        for r in two_summary:
            ax.annotate(_x(r['ratio']), (r['n'], r['hits_s']))
    ax.set_xticks(ns)
    ax.set_xlabel('concurrent requests (N)')
    ax.set_ylabel('wall time (s); labels: hits/bare')
    ax.set_title('N hits of one cached %d MiB image' % section['size_mib'])
    ax.legend()
    ax = axes[1]
    ax.plot(ns, [r['calls_per_hit'] for r in summary], 'o-', label='hit')
    ax.plot(ns, [r['calls_per_bare'] for r in summary], 's--',
            label='bare clone')
    if 'skipped' not in two:
        ax.plot(two_ns, [r['calls_per_hit'] for r in two_summary], '^-',
                label='hit, two processes (redis)')
    ax.axhline(ROUND_TRIPS_PER_HIT_MAX, color='gray', linestyle=':',
               label='target per hit')
    ax.set_xticks(ns)
    per_hit = [r['calls_per_hit'] for r in summary]
    if 'skipped' not in two:
        per_hit += [r['calls_per_hit'] for r in two_summary]
    ax.set_ylim(0, 2 + max(per_hit + [ROUND_TRIPS_PER_HIT_MAX]))
    ax.set_xlabel('concurrent requests (N)')
    ax.set_ylabel('SOAP round trips per request')
    ax.set_title('round trips per hit and per bare clone')
    ax.legend()


def _plot_two_ds(axes, section):
    summary = summarize_two_ds(section)
    paths = range(len(TWO_DS_PATHS))
    ax = axes[0]
    ax.bar(paths, [summary[p]['time'] for p in TWO_DS_PATHS])
    for i, path in enumerate(TWO_DS_PATHS):
        ax.annotate(_x(summary[path]['stock_ratio']),
                    (i, summary[path]['time']), ha='center')
    ax.set_xticks(paths)
    ax.set_xticklabels(TWO_DS_PATHS)
    ax.set_yscale('log')
    ax.set_ylabel('median create time (s); labels: stock/path')
    ax.set_title('two datastores, %d MiB image' % section['size_mib'])
    ax = axes[1]
    width = 0.25
    for i, (key, label) in enumerate(zip(BYTE_COUNTERS, (
            'upload', 'cross-datastore copy', 'local copy'))):
        ax.bar([j + (i - 1) * width for j in paths],
               [summary[p]['bytes'][key] / 1048576.0 for p in TWO_DS_PATHS],
               width, label=label)
    ax.set_xticks(paths)
    ax.set_xticklabels(TWO_DS_PATHS)
    # Headroom above the bars for the legend.
    ax.set_ylim(0, 1.4 * section['image_bytes'] / 1048576.0)
    ax.set_ylabel('MiB moved (median)')
    ax.set_title('bytes per path of the data-rate model')
    ax.legend(loc='upper center', ncol=3)


def write(results, out):
    """Write results.json, report.txt and bench.png; return the text.

    results.json holds every measurement and the targets' verdicts.
    """
    targets_json = [{'status': status, 'target': text}
                    for status, text in all_targets(results)]
    with open(os.path.join(out, 'results.json'), 'w') as stream:
        json.dump(dict(results, targets=targets_json), stream, indent=1,
                  default=str)
    text = render(results)
    png = os.path.join(out, 'bench.png')
    skipped = plot(results, png)
    text += '\n\n' + ('Plot skipped: %s.' % skipped if skipped
                      else 'Plot: %s' % png)
    with open(os.path.join(out, 'report.txt'), 'w') as stream:
        stream.write(text + '\n')
    return text
