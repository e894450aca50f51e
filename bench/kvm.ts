// Benchmark: how many emulated clock ioctls per second the kvm core handles, against a baseline
// measured in the same run: reading one event row from SQLite (better-sqlite3) and parsing its JSON.
//
//   npx tsx bench/kvm.ts
// or, without tsx (rolldown ships with vite):
//   npx rolldown bench/kvm.ts --platform node --external better-sqlite3 \
//     --file node_modules/.cache/clockledger-bench/kvm.mjs && node node_modules/.cache/clockledger-bench/kvm.mjs
//
// Every kvm input is deterministic: a fixed host, fixed instants and a fixed-seed PRNG.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHost, sampleHost } from '../kvm/host.js';
import { getProfile } from '../kvm/profiles.js';
import { KVM_CLOCK_REALTIME } from '../kvm/uapi.js';
import { getKvmclock, kvmVmIoctlSetClock, type KvmClockData } from '../kvm/x86/clock.js';
import type { IoctlRequest } from '../kvm/ioctl.js';
import { kvmArchTscSetOffset, x86Ioctl } from '../kvm/x86/ioctl.js';
import type { X86Ctx, X86Vm } from '../kvm/x86/state.js';
import { kvmArchInitVm, kvmVcpuExitToUser } from '../kvm/x86/vm.js';
import { prng } from './lib/prng.js'; // mulberry32 (Math.random is not used anywhere)

const ROUNDS = 7;
const ROWS = 100_000;
const TARGET_RATIO = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Warm up, then time ROUNDS rounds of `n` calls; the median ns per call. */
function measure(n: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.max(n, 20_000); i++) fn(i);
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(i);
    rounds.push(Number(process.hrtime.bigint() - t0) / n);
  }
  return median(rounds);
}

// ---------------------------------------------------------------------------------------------
// The kvm core: a 4-vCPU VM on a 2 GHz VMX host, master clock on, vCPUs back in userspace.
// ---------------------------------------------------------------------------------------------
const host = createHost({ id: 'bench', arch: 'x86', profile: 'linux-6.18', tscKhz: 2_000_000, initialCounter: 1_000_000_000_000n });
const sw = getProfile('linux-6.18').x86;
const ctxAt = (t: bigint): X86Ctx => ({ caps: host.x86!, sw, hw: sampleHost(host, t), tscClocksource: host.counterClocksource });

function buildVm(): { vm: X86Vm; t: bigint } {
  let t = 1_000_000_000n;
  const vm = kvmArchInitVm(ctxAt(t));
  for (let id = 0; id < 4; id++) {
    t += 1_000n;
    if (x86Ioctl(ctxAt(t), vm, { ioctl: 'KVM_CREATE_VCPU', arg: id }).ret !== 0) throw new Error('KVM_CREATE_VCPU failed');
  }
  for (let id = 0; id < 4; id++) {
    t += 1_000n;
    x86Ioctl(ctxAt(t), vm, { ioctl: 'KVM_RUN', vcpu: id });
  }
  for (const v of vm.vcpus) kvmVcpuExitToUser(v);
  if (!vm.useMasterClock) throw new Error('the master clock should be on');
  return { vm, t };
}

const { vm, t: t0 } = buildVm();
// 1024 pre-sampled hardware instants, 997 ns apart; call i uses ctxs[i & 1023].
const CTX_RING = 1024;
const ctxs: X86Ctx[] = Array.from({ length: CTX_RING }, (_, i) => ctxAt(t0 + 1_000_000n + BigInt(i) * 997n));
const ctx = (i: number) => ctxs[i & (CTX_RING - 1)]!;

// Pre-built arguments. The offset written is the one all vCPUs already share, so every write is
// matched into the current generation and the master clock stays on throughout.
const sharedOffset = vm.vcpus[0]!.l1TscOffset;
const first = getKvmclock(ctx(0), vm);
const setClockData: KvmClockData = { clock: first.clock, flags: KVM_CLOCK_REALTIME, realtime: first.realtime - 1_000n, hostTsc: 0n };
const getClockReq: IoctlRequest = { ioctl: 'KVM_GET_CLOCK' };
const setClockReq: IoctlRequest = { ioctl: 'KVM_SET_CLOCK', arg: { clock: first.clock, flags: KVM_CLOCK_REALTIME, realtime: setClockData.realtime } };
const setOffsetReqs: IoctlRequest[] = vm.vcpus.map((v) => ({
  ioctl: 'KVM_SET_DEVICE_ATTR',
  vcpu: v.id,
  arg: { group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_OFFSET', value: sharedOffset },
}));

let sink = 0n; // keeps results observable so no call is optimised away
const N = 200_000;
const core = {
  KVM_GET_CLOCK: {
    ioctl: measure(N, (i) => {
      sink ^= (x86Ioctl(ctx(i), vm, getClockReq).out!.clock as bigint) & 1n;
    }),
    direct: measure(N, (i) => {
      sink ^= getKvmclock(ctx(i), vm).clock & 1n;
    }),
  },
  KVM_SET_CLOCK: {
    ioctl: measure(N, (i) => {
      sink ^= BigInt(x86Ioctl(ctx(i), vm, setClockReq).ret);
    }),
    direct: measure(N, (i) => {
      sink ^= kvmVmIoctlSetClock(ctx(i), vm, setClockData) === 0 ? 0n : 1n;
    }),
  },
  'KVM_SET_DEVICE_ATTR(KVM_VCPU_TSC_OFFSET)': {
    ioctl: measure(N, (i) => {
      sink ^= BigInt(x86Ioctl(ctx(i), vm, setOffsetReqs[i & 3]!).ret);
    }),
    direct: measure(N, (i) => {
      kvmArchTscSetOffset(ctx(i), vm, vm.vcpus[i & 3]!, sharedOffset);
      sink ^= vm.lastTscOffset & 1n;
    }),
  },
};
if (!vm.useMasterClock || new Set(vm.vcpus.map((v) => v.l1TscOffset)).size !== 1) throw new Error('the benchmark disturbed the VM');

// ---------------------------------------------------------------------------------------------
// Baseline: one event row from a 100k-row SQLite file database, by position, plus JSON.parse of its data.
// ---------------------------------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'clockledger-bench-'));
let baseline: { getNs: number; iterateNs: number; dataBytes: number; metadataBytes: number };
try {
  const db = new Database(join(dir, 'events.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE events (
    position INTEGER PRIMARY KEY,
    stream_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    time INTEGER NOT NULL,
    data TEXT NOT NULL,
    metadata TEXT NOT NULL,
    UNIQUE (stream_id, version)
  )`);
  const rnd = prng(0x6b766d);
  const big = () => String(BigInt(Math.floor(rnd() * 2 ** 52)) * 4096n + BigInt(Math.floor(rnd() * 4096)));
  const insert = db.prepare('INSERT INTO events (position, stream_id, version, type, time, data, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const versions = new Map<string, number>();
  let dataBytes = 0;
  let metadataBytes = 0;
  db.transaction(() => {
    for (let pos = 1; pos <= ROWS; pos++) {
      const stream = `vm-${(pos % 64).toString(16).padStart(4, '0')}`;
      const version = (versions.get(stream) ?? 0) + 1;
      versions.set(stream, version);
      const vcpu = pos & 3;
      const data = JSON.stringify({
        ioctl: 'KVM_SET_DEVICE_ATTR',
        vcpu,
        arg: { group: 0, attr: 0, value: big() },
        result: { ret: 0 },
        hw: { t: big(), tsc: big(), raw_ns: big() },
        vm: { kvmclock_offset: `-${big()}`, use_master_clock: true, cur_tsc_generation: version },
      });
      const metadata = JSON.stringify({
        host: 'host-a',
        profile: 'linux-6.18',
        actor: 'migration-agent',
        correlation_id: `c-${big()}`,
        causation_id: `e-${pos - 1}`,
        schema: 3,
      });
      dataBytes += data.length;
      metadataBytes += metadata.length;
      insert.run(pos, stream, version, 'ioctl', 1_767_225_600_000 + pos, data, metadata);
    }
  })();

  interface Row {
    position: number;
    stream_id: string;
    version: number;
    type: string;
    time: number;
    data: string;
    metadata: string;
  }
  const byPosition = db.prepare('SELECT position, stream_id, version, type, time, data, metadata FROM events WHERE position = ?');
  const POS_RING = 1 << 16;
  const positions = Int32Array.from({ length: POS_RING }, () => 1 + Math.floor(rnd() * ROWS));
  let check = 0;
  const getNs = measure(N, (i) => {
    const row = byPosition.get(positions[i & (POS_RING - 1)]!) as Row;
    const d = JSON.parse(row.data) as { vcpu: number };
    check += d.vcpu;
  });
  const scan = db.prepare('SELECT position, stream_id, version, type, time, data, metadata FROM events ORDER BY position');
  const scanOnce = () => {
    for (const row of scan.iterate() as IterableIterator<Row>) check += (JSON.parse(row.data) as { vcpu: number }).vcpu;
  };
  scanOnce(); // warm-up
  const scans: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const s0 = process.hrtime.bigint();
    scanOnce();
    scans.push(Number(process.hrtime.bigint() - s0) / ROWS);
  }
  if (check === 0) throw new Error('no rows read');
  db.close();
  baseline = { getNs, iterateNs: median(scans), dataBytes: dataBytes / ROWS, metadataBytes: metadataBytes / ROWS };
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------
const fmt = (ns: number) => `${ns.toFixed(1).padStart(8)} ns/op  ${(1e9 / ns).toExponential(2).padStart(9)} /s`;
console.log(`clockledger kvm core benchmark — node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}`);
console.log(`median of ${ROUNDS} rounds after warm-up; 4-vCPU VM, master clock on, profile linux-6.18\n`);
console.log('baseline (better-sqlite3, file database in os.tmpdir(), 100k event rows):');
console.log(`  row size: data ${baseline.dataBytes.toFixed(0)} B JSON, metadata ${baseline.metadataBytes.toFixed(0)} B JSON`);
console.log(`  prepared .get(position) + JSON.parse(data)   ${fmt(baseline.getNs)}`);
console.log(`  .iterate() scan + JSON.parse(data), per row  ${fmt(baseline.iterateNs)}\n`);
console.log(`kvm core (ratio = baseline .get() ns per row / core ns per op; target ≥ ${TARGET_RATIO}×; "scan" = vs the iterate() row):`);
for (const [name, r] of Object.entries(core)) {
  console.log(`  ${name}`);
  for (const [how, ns] of [
    ['x86Ioctl (parsed args)', r.ioctl],
    ['core function'.padEnd(22), r.direct],
  ] as const) {
    const ratio = baseline.getNs / ns;
    console.log(
      `    ${how} ${fmt(ns)}  ratio ${ratio.toFixed(1).padStart(6)}×  ${ratio >= TARGET_RATIO ? 'meets' : 'MISSES'} ` +
        `≥${TARGET_RATIO}×  (scan ${(baseline.iterateNs / ns).toFixed(2)}×)`,
    );
  }
}
if (sink === -1n) console.log(sink);
