import { handlers } from '/work/main/handlers/index.js';
import { openEventStore } from '/work/main/store/sqlite-event-store.js';
import { Session } from '/work/main/machines/session.js';
import { CODE_VERSION } from '/work/main/machines/version.js';
import { rmSync } from 'node:fs';
const db = '/tmp/rv/c.db'; for (const s of ['','-wal','-shm']) rmSync(db+s, { force: true });
const ctx = { db }; const H = handlers as any;
await H.createHost({ hostId: 'h', tscKhz: 3_000_000 }, ctx);
await H.createVm({ vmId: 'a', hostId: 'h', vcpus: 1 }, ctx);
await H.runVcpu({ vmId: 'a' }, ctx);
await H.advanceTime({ ns: '1000000000' }, ctx);   // t = 1 s
// "process A": a second connection; it starts an ioctl session at t = 1 s but commits late
const storeA = openEventStore(db, { codeVersion: CODE_VERSION });
const sA = new Session(storeA, { handler: 'ioctl' });
const r = sA.vmCommand('a', { type: 'guest', vcpu: 0, op: 'rdtsc' } as any);
// "process B": advances time by 10 s and commits first
console.log('B advance', JSON.stringify(await H.advanceTime({ ns: '10000000000' }, ctx)));
sA.commit();
console.log('A committed', JSON.stringify(r.result));
const evs = (await H.events({}, ctx)).events.map((e: any) => `${e.position}:${e.streamId}:${e.type}@${e.time}`);
console.log(evs.slice(-4).join('\n'));
console.log('stateAt time 5s ->', JSON.stringify((await H.stateAt({ streamId: 'ledger', time: '5000000000' }, ctx))).slice(0,200));
const s = await H.stateAt({ vmId: 'a', time: '5000000000' }, ctx);
console.log('vm a at 5s: position', s.position, 'version', s.version);
