import { handlers } from '/work/main/handlers/index.js';
import { rmSync } from 'node:fs';
const db = '/tmp/rv/a.db'; rmSync(db, { force: true }); rmSync(db+'-wal',{force:true}); rmSync(db+'-shm',{force:true});
const ctx = { db };
const H = handlers as any;
const j = (x: unknown) => JSON.stringify(x, null, 0).slice(0, 1500);
console.log('host', j(await H.createHost({ hostId: 'src', tscKhz: 3_000_000 }, ctx)).slice(0,100));
await H.createHost({ hostId: 'dst', tscKhz: 2_000_000 }, ctx);
// VM with no vCPUs migrated
console.log('vm0', j(await H.createVm({ vmId: 'empty', hostId: 'src', vcpus: 0 }, ctx)).slice(0,200));
for (const strat of ['qemu','offset-documented','offset-corrected','clock-guest','guest-wide-offset','firecracker','cloud-hypervisor','crosvm']) {
  const r = await H.migrate({ vmId: 'empty', toHost: 'dst', strategy: strat, blackoutNs: 300_000_000, newVmId: 'empty-'+strat }, ctx);
  console.log('migrate empty', strat, r.ok ? [r.status ?? r.audit?.status, r.audit?.verdict, j(r.audit?.findings?.map((f:any)=>f.code)), j(r.audit?.kvmclock)] : j(r.error));
}
// stateAt with bad streamId
console.log('stateAt bad stream', j(await H.stateAt({ streamId: 'foo' }, ctx)));
console.log('stateAt version beyond', j(await H.stateAt({ hostId: 'src', version: 999 }, ctx)).slice(0,200));
console.log('events weird', j(await H.events({ streamId: 'nope' }, ctx)).slice(0,200));
