#!/usr/bin/env python3
"""Measure the simulator's data-rate model (vcsim -upload-mbps etc.).

Run it from the project's checkout against a simulator built by
tools/vcsim/vcsim.sh, started with two datastores (the cross-datastore clone
needs LocalDS_1), here in a prefix and on a port of its own:

    export VCSIM_PREFIX=/tmp/rates-vcsim VCSIM_LISTEN=127.0.0.1:48990
    VCSIM_ARGS="-ds-type VMFS -ds 2" tools/vcsim/vcsim.sh start
    python3 tools/vcsim/rates_check.py --port 48990     # needs pyvmomi
    # also cinder's driver (needs cinder and oslo.vmware too; the project's
    # tox envs have all three, e.g. .tox/vcsim/bin/python), with the vim25
    # WSDL that "tools/vcsim/vcsim.sh wsdl" generates (and prints the URL of:
    # file://$VCSIM_PREFIX/wsdl/vimService.wsdl):
    VCSIM_PYTHON=.tox/vcsim/bin/python tools/vcsim/vcsim.sh wsdl
    .tox/vcsim/bin/python tools/vcsim/rates_check.py --port 48990 --cinder \\
        --wsdl file:///tmp/rates-vcsim/wsdl/vimService.wsdl
    tools/vcsim/vcsim.sh stop

It sets the rates itself over https://HOST:PORT/vcsim/rates (the simulator's
start-up flags do not matter), runs every path twice, with the model off and
with the profile (default: -upload-mbps 16 -xds-copy-mbps 32, local copies
uncapped), and puts the simulator's rates back as they were.  For a disk of
--mib MiB (default 64) it times:

    upload /folder/       HTTP PUT of the disk's -flat.vmdk (datastore upload)
    upload /nfc/          ImportVApp + HttpNfcLease PUT (as cinder's
                          streamOptimized image import)
    clone, same ds        full CloneVM_Task on LocalDS_0
    clone, other ds       full CloneVM_Task LocalDS_0 -> LocalDS_1
    ... 2 at once         two such clones started together (each task has
                          the rate to itself: they overlap)
    CopyVirtualDisk       LocalDS_0 -> LocalDS_1
    relocate              RelocateVM_Task of a full clone to the other
                          datastore (vcsim does not move the files; the
                          model charges the bytes that would move)
    linked clone          CloneVM_Task from a snapshot, diskMoveType
                          createNewChildDiskBacking (copies nothing)

and prints a table: path, bytes copied or uploaded, seconds, MiB/s.  Times
are wall clock on the client, from the call to the task's success (tasks
are polled every 10 ms).  For copies, "bytes" are the simulator's own
counters (GET /vcsim/rates), so the table also shows whether it took a copy
as local or cross-datastore; for uploads, the body's size.

--cinder also drives cinder's stock VMwareVcVmdkDriver (no database) on the
two datastores: datastore selection, a volume on LocalDS_0, a full clone of
it to LocalDS_1 (create_cloned_volume), and a linked clone
(vmware:clone_type=linked, COW snapshot, create_volume_from_snapshot).
Exit status: 0 when every measured time is within its expected range.
"""

import sys

if '--cinder-child' in sys.argv:
    # cinder needs eventlet's monkey patch before ssl is imported
    import eventlet
    eventlet.monkey_patch()

import argparse  # noqa: E402,I202
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import ssl  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402

MIB = 1 << 20
CTX = ssl._create_unverified_context()


class Sim(object):
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.base = 'https://%s:%d' % (host, port)

    def rates(self, method='GET', body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + '/vcsim/rates', data=data,
                                     method=method)
        with urllib.request.urlopen(req, context=CTX, timeout=10) as resp:
            return json.loads(resp.read())

    def put(self, path, data):
        """PUT data to an absolute path on the simulator; seconds taken."""
        conn = http.client.HTTPSConnection(self.host, self.port, context=CTX,
                                           timeout=600)
        t0 = time.monotonic()
        conn.putrequest('PUT', path)
        conn.putheader('Content-Length', str(len(data)))
        conn.putheader('Content-Type', 'application/octet-stream')
        conn.endheaders()
        view = memoryview(data)
        for i in range(0, len(data), MIB):
            conn.send(view[i:i + MIB])
        resp = conn.getresponse()
        resp.read()
        took = time.monotonic() - t0
        conn.close()
        if resp.status >= 300:
            raise RuntimeError('PUT %s: HTTP %d' % (path, resp.status))
        return took


def task_info(task):
    """info.state, .result and .error of a task.

    Not all of task.info: pyVmomi rejects vcsim's info.entity of
    VirtualDiskManager tasks.
    """
    from pyVmomi import vim
    from pyVmomi import vmodl
    pc = task._stub.si.content.propertyCollector
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=task)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(
            type=vim.Task, pathSet=['info.state', 'info.result',
                                    'info.error'])])
    props = {p.name: p.val for p in pc.RetrieveContents([spec])[0].propSet}
    return (props.get('info.state'), props.get('info.result'),
            props.get('info.error'))


def wait(task, poll=0.01):
    """Wait for a task; returns (result, seen running)."""
    running = False
    while True:
        state, result, error = task_info(task)
        if state == 'success':
            return result, running
        if state == 'error':
            raise RuntimeError('task %s: %s' % (task._moId, error))
        running = running or state == 'running'
        time.sleep(poll)


def timed(call):
    """Run a *_Task call and wait.

    Returns (result, seconds, call seconds, seen running).
    """
    t0 = time.monotonic()
    task = call()
    t_call = time.monotonic() - t0
    result, running = wait(task)
    return result, time.monotonic() - t0, t_call, running


class Inventory(object):
    def __init__(self, si):
        from pyVmomi import vim
        self.si = si
        content = si.RetrieveContent()
        self.dc = [e for e in content.rootFolder.childEntity
                   if isinstance(e, vim.Datacenter)][0]
        self.ds = {d.name: d for d in self.dc.datastore}
        hosts = [h for cr in self.dc.hostFolder.childEntity
                 for h in getattr(cr, 'host', [])]
        self.host = hosts[0]
        self.pool = self.host.parent.resourcePool
        self.folder = self.dc.vmFolder
        self.vms = []

    def create_vm(self, name, ds, mib):
        from pyVmomi import vim
        ctrl = vim.vm.device.VirtualLsiLogicController(
            key=-101, busNumber=0,
            sharedBus=vim.vm.device.VirtualSCSIController.Sharing.noSharing)
        disk = vim.vm.device.VirtualDisk(
            key=-102, controllerKey=-101, unitNumber=0,
            capacityInKB=mib * 1024,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName='', diskMode='persistent', thinProvisioned=True))
        add = vim.vm.device.VirtualDeviceSpec.Operation.add
        spec = vim.vm.ConfigSpec(
            name=name, guestId='otherGuest', numCPUs=1, memoryMB=64,
            files=vim.vm.FileInfo(vmPathName='[%s]' % ds),
            deviceChange=[
                vim.vm.device.VirtualDeviceSpec(operation=add, device=ctrl),
                vim.vm.device.VirtualDeviceSpec(
                    operation=add, device=disk,
                    fileOperation=vim.vm.device.VirtualDeviceSpec
                    .FileOperation.create)])
        vm, _ = wait(self.folder.CreateVM_Task(config=spec, pool=self.pool,
                                               host=self.host))
        self.vms.append(vm)
        return vm

    @staticmethod
    def disk_backing(vm):
        from pyVmomi import vim
        return [d.backing for d in vm.config.hardware.device
                if isinstance(d, vim.vm.device.VirtualDisk)][0]

    def clone_spec(self, ds=None, linked=False, snapshot=None):
        from pyVmomi import vim
        move = ('createNewChildDiskBacking' if linked else
                'moveAllDiskBackingsAndDisallowSharing')
        loc = vim.vm.RelocateSpec(pool=self.pool, host=self.host,
                                  diskMoveType=move)
        if ds is not None:
            loc.datastore = self.ds[ds]
        return vim.vm.CloneSpec(location=loc, powerOn=False, template=False,
                                snapshot=snapshot)

    def clone(self, vm, name, **kw):
        spec = self.clone_spec(**kw)
        clone, secs, t_call, running = timed(
            lambda: vm.CloneVM_Task(folder=self.folder, name=name, spec=spec))
        self.vms.append(clone)
        return clone, secs, t_call, running

    def cleanup(self):
        for vm in reversed(self.vms):
            try:
                wait(vm.Destroy_Task())
            except Exception as exc:  # noqa
                print('cleanup: %s' % exc, file=sys.stderr)
        self.vms = []


def nfc_upload(sim, inv, name, ds, data):
    """ImportVApp of a one-disk VM, then PUT the disk through the lease."""
    from pyVmomi import vim
    spec = vim.vm.ConfigSpec(
        name=name, guestId='otherGuest', numCPUs=1, memoryMB=64,
        files=vim.vm.FileInfo(vmPathName='[%s]' % ds),
        deviceChange=[
            vim.vm.device.VirtualDeviceSpec(
                operation='add',
                device=vim.vm.device.VirtualLsiLogicController(
                    key=-101, busNumber=0, sharedBus='noSharing')),
            vim.vm.device.VirtualDeviceSpec(
                operation='add', fileOperation='create',
                device=vim.vm.device.VirtualDisk(
                    key=-102, controllerKey=-101, unitNumber=0,
                    capacityInKB=len(data) // 1024,
                    backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                        fileName='', diskMode='persistent',
                        thinProvisioned=True)))])
    lease = inv.pool.ImportVApp(
        spec=vim.vm.VmImportSpec(configSpec=spec),
        folder=inv.folder, host=inv.host)
    while lease.state == vim.HttpNfcLease.State.initializing:
        time.sleep(0.01)
    if lease.state != vim.HttpNfcLease.State.ready:
        raise RuntimeError('lease %s: %s' % (lease.state, lease.error))
    inv.vms.append(lease.info.entity)
    url = urllib.parse.urlsplit(lease.info.deviceUrl[0].url)
    secs = sim.put(url.path, data)
    lease.HttpNfcLeaseComplete()
    return secs


def measure(sim, inv, data, tag):
    """Every path once; a list of (path, bytes, seconds, note)."""
    from pyVmomi import vim
    rows = []

    def counted(path, fn, note=''):
        """Run fn, add a row with the bytes the simulator counted."""
        before = sim.rates()['counters']
        out = fn()
        after = sim.rates()['counters']
        local, xds = (after[k] - before[k]
                      for k in ('local_copy_bytes', 'xds_copy_bytes'))
        secs = out if isinstance(out, float) else out[1]
        where = 'local %d, xds %d' % (local, xds) if local or xds else ''
        rows.append((path, local + xds, secs, ' '.join(
            n for n in (where, note) if n)))
        return out

    src = inv.create_vm('rates-src-%s' % tag, 'LocalDS_0', len(data) // MIB)
    src_disk = inv.disk_backing(src).fileName
    flat = src_disk.replace('.vmdk', '-flat.vmdk').split('] ', 1)[1]
    q = urllib.parse.urlencode({'dcPath': inv.dc.name, 'dsName': 'LocalDS_0'})
    secs = sim.put('/folder/%s?%s' % (urllib.parse.quote(flat), q), data)
    rows.append(('upload /folder/', len(data), secs, ''))
    secs = nfc_upload(sim, inv, 'rates-nfc-%s' % tag, 'LocalDS_0', data)
    rows.append(('upload /nfc/', len(data), secs, ''))

    local_clone = counted('clone, same ds', lambda: inv.clone(
        src, 'rates-local-%s' % tag, ds='LocalDS_0'))[0]

    def add_note(text):
        rows[-1] = rows[-1][:3] + ((rows[-1][3] + ' ' + text).strip(),)

    clone, _, t_call, running = counted('clone, other ds', lambda: inv.clone(
        src, 'rates-xds-%s' % tag, ds='LocalDS_1'))
    add_note('(call %.2f s, then running: %s; clone on %s)' % (
        t_call, running, inv.disk_backing(clone).fileName.split(' ')[0]))

    def two_clones():
        t0 = time.monotonic()
        tasks = [src.CloneVM_Task(folder=inv.folder, name='rates-x%d-%s' % (
            i, tag), spec=inv.clone_spec(ds='LocalDS_1')) for i in (1, 2)]
        for task in tasks:
            inv.vms.append(wait(task)[0])
        return time.monotonic() - t0
    counted('clone, other ds, 2 at once', two_clones)

    fm = inv.si.content.fileManager
    copy_dir = '[LocalDS_1] rates-copy-%s' % tag
    fm.MakeDirectory(name=copy_dir, datacenter=inv.dc,
                     createParentDirectories=True)
    counted('CopyVirtualDisk, other ds', lambda: timed(
        lambda: inv.si.content.virtualDiskManager.CopyVirtualDisk_Task(
            sourceName=src_disk, sourceDatacenter=inv.dc,
            destName=copy_dir + '/copy.vmdk', destDatacenter=inv.dc,
            force=True)))
    wait(fm.DeleteDatastoreFile_Task(name=copy_dir, datacenter=inv.dc))

    spec = vim.vm.RelocateSpec(datastore=inv.ds['LocalDS_1'], pool=inv.pool,
                               host=inv.host)
    counted('relocate to other ds', lambda: timed(
        lambda: local_clone.RelocateVM_Task(spec=spec)),
        note='(no file moves)')

    snap, _ = wait(src.CreateSnapshot_Task(name='s1', memory=False,
                                           quiesce=False))
    linked = counted('linked clone', lambda: inv.clone(
        src, 'rates-linked-%s' % tag, linked=True, snapshot=snap))[0]
    parent = inv.disk_backing(linked).parent
    add_note('parent %s' % (parent and parent.fileName))
    return rows


def expected(path, nbytes, up, xds, local):
    """(low, high) seconds expected for a row, with the profile on."""
    if path.startswith('upload'):
        t = nbytes / (up * MIB) if up else None
    elif '2 at once' in path:  # each task has the rate to itself
        t = nbytes / 2 / (xds * MIB) if xds else None
    elif 'other ds' in path:
        t = nbytes / (xds * MIB) if xds else None
    elif path == 'clone, same ds':
        t = nbytes / (local * MIB) if local else None
    else:  # linked clone
        return (0.0, 0.5)
    if t is None:
        return (0.0, 2.0)  # local disk speed
    return (t * 0.95, t * 1.15 + 0.3)


def cinder_check(args, sim, data):
    """cinder's stock VMDK driver on two datastores; a list of rows."""
    import tempfile
    import uuid

    from cinder import context as cinder_context
    from cinder import coordination
    from cinder import objects
    from cinder.volume import configuration
    from cinder.volume import driver as base_driver
    from cinder.volume.drivers.vmware import vmdk
    from oslo_config import cfg
    from oslo_vmware import vim_util

    conf_ = cfg.CONF
    objects.register_all()
    if not coordination.COORDINATOR.started:
        conf_.set_override('backend_url', 'file://%s' % tempfile.mkdtemp(
            prefix='rates-locks-'), group='coordination')
        coordination.COORDINATOR.start()
    ctx = cinder_context.get_admin_context()

    def driver(group, **kw):
        conf = configuration.Configuration(vmdk.vmdk_opts, config_group=group)
        conf.append_config_values(base_driver.volume_opts)
        values = dict(
            vmware_host_ip=sim.host, vmware_host_port=sim.port,
            vmware_host_username='user', vmware_host_password='pass',
            vmware_wsdl_location=args.wsdl, vmware_insecure=True,
            vmware_enable_volume_stats=True, vmware_api_retry_count=2,
            vmware_task_poll_interval=0.05, vmware_lazy_create=False,
            volume_backend_name=group)
        values.update(kw)
        for k, v in values.items():
            conf_.set_override(k, v, group=group)
        drv = vmdk.VMwareVcVmdkDriver(configuration=conf)
        drv.do_setup(ctx)
        return drv

    def volume(size=1):
        vol = objects.Volume(
            context=ctx, id=str(uuid.uuid4()), size=size,
            project_id='rates', user_id='rates', host='localhost@r#r',
            status='available', volume_type_id=None, display_name='rates',
            attach_status='detached', _name_id=None)
        vol.volume_attachment = objects.VolumeAttachmentList(objects=[])
        vol.metadata = {}
        vol.obj_reset_changes()
        return vol

    def backing_ds(drv, vol):
        vm = drv.volumeops.get_backing(vol.name, vol.id)
        dss = drv.session.invoke_api(vim_util, 'get_object_property',
                                     drv.session.vim, vm, 'datastore')
        names = [drv.session.invoke_api(vim_util, 'get_object_property',
                                        drv.session.vim, ds, 'name')
                 for ds in dss.ManagedObjectReference]
        disk = drv.volumeops._get_disk_device(vm)
        return vm, names, disk

    rows = []
    made = []
    any_ds = driver('rates_any')
    stats = any_ds.get_volume_stats(refresh=True)
    dss = any_ds.ds_sel._get_datastores()
    rows.append(('cinder: datastores seen', 0, 0.0, '%d datastores: %s; '
                 'stats total %s GiB' % (len(dss), ', '.join(sorted(
                     p['summary'].name for p in dss.values())),
                     stats['total_capacity_gb'])))
    v0 = volume()
    t0 = time.monotonic()
    any_ds.create_volume(v0)
    made.append((any_ds, v0))
    _, names, _ = backing_ds(any_ds, v0)
    rows.append(('cinder: create_volume (no regex)', 0,
                 time.monotonic() - t0, 'on %s' % ','.join(names)))

    ds0 = driver('rates_ds0', vmware_datastore_regex='^LocalDS_0$',
                 vmware_snapshot_format='COW')
    ds1 = driver('rates_ds1', vmware_datastore_regex='^LocalDS_1$')
    src = volume()
    ds0.create_volume(src)
    made.append((ds0, src))
    vm, names, disk = backing_ds(ds0, src)
    rel = disk.backing.fileName.split('] ', 1)[1].replace('.vmdk',
                                                          '-flat.vmdk')
    q = urllib.parse.urlencode({'dcPath': 'DC0', 'dsName': names[0]})
    sim.put('/folder/%s?%s' % (urllib.parse.quote(rel), q), data)
    rows.append(('cinder: source volume', len(data), 0.0,
                 'on %s, %d MiB written to its -flat.vmdk' % (
                     ','.join(names), len(data) // MIB)))

    def created(drv, create, *args):
        """(volume, seconds, bytes copied) of create(new volume, *args).

        Bytes are those the simulator counted, within and across
        datastores.
        """
        before = sim.rates()['counters']
        vol = volume()
        t0 = time.monotonic()
        create(vol, *args)
        secs = time.monotonic() - t0
        made.append((drv, vol))
        after = sim.rates()['counters']
        return vol, secs, sum(after[k] - before[k] for k in (
            'xds_copy_bytes', 'local_copy_bytes'))

    dst, secs, copied = created(ds1, ds1.create_cloned_volume, src)
    _, names, _ = backing_ds(ds1, dst)
    rows.append(('cinder: full clone, other ds', copied, secs,
                 'create_cloned_volume -> %s' % ','.join(names)))

    snap = objects.Snapshot(
        context=ctx, id=str(uuid.uuid4()), volume_id=src.id, volume_size=1,
        display_name='rates', display_description=None, status='creating',
        provider_location=None)
    snap.volume = src
    ds0.create_snapshot(snap)
    orig = vmdk._get_volume_type_extra_spec
    vmdk._get_volume_type_extra_spec = (
        lambda type_id, key, possible_values=None, default_value=None:
        'linked' if key == 'clone_type' else default_value)
    try:
        lnk, secs, copied = created(ds0, ds0.create_volume_from_snapshot,
                                    snap)
    finally:
        vmdk._get_volume_type_extra_spec = orig
    _, names, disk = backing_ds(ds0, lnk)
    parent = getattr(disk.backing, 'parent', None)
    rows.append(('cinder: linked clone', copied, secs,
                 'create_volume_from_snapshot -> %s, parent %s' % (
                     ','.join(names), parent and parent.fileName)))
    ds0.delete_snapshot(snap)
    for drv, vol in reversed(made):
        drv.delete_volume(vol)
    return rows


def run_child(cmd):
    """The cinder check in a child process (eventlet); its rows."""
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-6000:])
        raise RuntimeError('cinder check failed (exit %d)' % proc.returncode)
    return json.loads(proc.stdout.splitlines()[-1])


def table(rows_off, rows_on, profile):
    up, xds, local = profile
    print('%-26s %10s | %8s %9s | %8s %9s  %s' % (
        'path', 'bytes', 'off: s', 'MiB/s', 'on: s', 'MiB/s',
        'expected on (s)'))
    ok = True
    for off, on in zip(rows_off, rows_on):
        path, nbytes, s_on, note = on
        s_off = off[2]
        lo, hi = expected(path, nbytes, up, xds, local)
        good = lo <= s_on <= hi
        ok = ok and good

        def rate(s, copies=True):
            return '%9.1f' % (nbytes / MIB / s) if (
                s > 0 and nbytes and copies) else '%9s' % '-'
        # vcsim's relocate moves no file: no rate without the model
        print('%-26s %10d | %8.3f %s | %8.3f %s  %.2f-%.2f %s  %s' % (
            path, nbytes, s_off, rate(s_off, not path.startswith('relocate')),
            s_on, rate(s_on), lo, hi,
            'ok' if good else 'OUT OF RANGE', note))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=8989)
    ap.add_argument('--mib', type=int, default=64, help='disk size (MiB)')
    ap.add_argument('--upload-mbps', type=float, default=16)
    ap.add_argument('--xds-copy-mbps', type=float, default=32)
    ap.add_argument('--local-copy-mbps', type=float, default=0)
    ap.add_argument('--cinder', action='store_true',
                    help="also drive cinder's VMDK driver (needs --wsdl)")
    ap.add_argument('--wsdl', help='vim25 WSDL URL (as printed by '
                    'tools/vcsim/vcsim.sh wsdl)')
    ap.add_argument('--cinder-child', action='store_true',
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cinder and not args.wsdl:
        ap.error('--cinder needs --wsdl')

    sim = Sim(args.host, args.port)
    data = bytes(range(256)) * (args.mib * MIB // 256)
    if args.cinder_child:
        # rows as JSON on the last line; cinder's logging goes to stderr
        print(json.dumps(cinder_check(args, sim, data)))
        return 0
    saved = sim.rates()
    profile = {'upload_mbps': args.upload_mbps,
               'xds_copy_mbps': args.xds_copy_mbps,
               'local_copy_mbps': args.local_copy_mbps}
    ok = True
    try:
        from pyVim.connect import Disconnect
        from pyVim.connect import SmartConnect
        si = SmartConnect(host=args.host, port=args.port, user='user',
                          pwd='pass', disableSslCertValidation=True)
        si._stub.si = si  # for task_info()
        inv = Inventory(si)
        if 'LocalDS_1' not in inv.ds:
            sys.exit('needs two datastores (start vcsim with -ds 2); has: %s'
                     % ', '.join(inv.ds))
        try:
            sim.rates('POST', {'upload_mbps': 0, 'xds_copy_mbps': 0,
                               'local_copy_mbps': 0})
            rows_off = measure(sim, inv, data, 'off')
            inv.cleanup()
            sim.rates('POST', profile)
            rows_on = measure(sim, inv, data, 'on')
        finally:
            inv.cleanup()
            Disconnect(si)
        print('disk %d MiB; profile: upload %g, xds copy %g, local copy %g '
              'MiB/s (0 = uncapped)' % (args.mib, args.upload_mbps,
                                        args.xds_copy_mbps,
                                        args.local_copy_mbps))
        ok = table(rows_off, rows_on, (args.upload_mbps, args.xds_copy_mbps,
                                       args.local_copy_mbps))
        if args.cinder:
            child = [sys.executable, os.path.abspath(__file__),
                     '--cinder-child'] + [a for a in sys.argv[1:]
                                          if a != '--cinder']
            sim.rates('POST', {'upload_mbps': 0, 'xds_copy_mbps': 0,
                               'local_copy_mbps': 0})
            c_off = run_child(child)
            sim.rates('POST', profile)
            c_on = run_child(child)
            print()
            for off, on in zip(c_off, c_on):
                path, nbytes, s_on, note = on
                print('%-34s %10d | off %7.3f s | on %7.3f s  %s' % (
                    path, nbytes, off[2], s_on, note))
            xds = [r for r in c_on if r[0] == 'cinder: full clone, other ds']
            lnk = [r for r in c_on if r[0] == 'cinder: linked clone']
            want = len(data) / (args.xds_copy_mbps * MIB)
            ok = ok and bool(xds) and xds[0][1] == len(data) and (
                xds[0][2] >= want * 0.95) and bool(lnk) and lnk[0][1] == 0
    finally:
        sim.rates('POST', {k: saved[k] for k in profile})
    print('\nrates_check: %s' % ('OK' if ok else 'FAILED'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
