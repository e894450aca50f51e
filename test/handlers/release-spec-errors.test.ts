// A strategy spec that does not resolve is one coded error (ReleaseSpecError, a CodedError with
// code invalid_request and the request field it came from), answered as it is by every handler
// that reads a spec: no layer catches it to wrap it again.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { CodedError } from '../../lib/coded-error.js';
import { type ReleaseSpecError, resolveStrategyRelease } from '../../machines/migration/strategies/releases.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

const OLDER = /^qemu 0\.1 is older than every modelled release \(modelled: [0-9., ]+\)$/;

let l: Ledger;
afterEach(() => {
  closeStores();
  l?.cleanup();
});

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('nothing thrown');
}

describe('ReleaseSpecError', () => {
  it('is a CodedError: invalid_request, with the field strategy, or the field a caller names leading its message', () => {
    const e = thrown(() => resolveStrategyRelease('qemu@0.1')) as ReleaseSpecError;
    expect(e).toBeInstanceOf(CodedError);
    expect([e.code, e.field, e.details]).toEqual(['invalid_request', 'strategy', { field: 'strategy' }]);
    expect(e.message).toMatch(OLDER);
    const named = thrown(() => resolveStrategyRelease('qemu@0.1', { field: 'releases' })) as ReleaseSpecError;
    expect([named.field, named.details]).toEqual(['releases', { field: 'releases' }]);
    expect(named.message).toBe(`releases: ${e.message}`);
    const sw = thrown(() => resolveStrategyRelease('qemu+nope=true')) as ReleaseSpecError;
    expect(sw.message).toBe(
      "unknown switch 'nope' for qemu (switches: kvmclockCtrlEveryVcpu, pausedNoPreSaveRead, tscKhzWithinTolerance, adjustClockStableMask, downtimeAccounting)",
    );
  });

  it('reaches the caller as { code, message, details: { field } } from bisectReleases and conformance, and as a schema issue from migrate', async () => {
    l = newLedger();
    await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
    await l.ok('createVm', { vmId: 'web', hostId: 'a', vcpus: 1 });
    const migrate = (await l.call('migrate', { vmId: 'web', toHost: 'a', strategy: 'qemu@0.1', blackoutNs: 1 })).error;
    expect(migrate.code).toBe('invalid_request');
    expect(migrate.message).toMatch(/^strategy: qemu 0\.1 is older/);
    expect(migrate.details).toMatchObject({ field: 'strategy', issueCount: 1 });
    const bisect = (await l.call('bisectReleases', { migrationId: 'm1', releases: ['qemu@10.1', 'qemu@0.1'] })).error;
    expect(Object.keys(bisect)).toEqual(['code', 'message', 'details']);
    expect([bisect.code, bisect.details]).toEqual(['invalid_request', { field: 'releases' }]);
    expect(bisect.message).toMatch(/^releases: qemu 0\.1 is older/);
    await l.ok('importTrace', { path: join(import.meta.dirname, '..', 'fixtures', 'traces', 'ch-restore-offsets-differ.trace') });
    const conf = (await l.call('conformance', { traceId: 't1', strategy: 'qemu@0.1', profile: 'linux-6.18' })).error;
    expect([conf.code, conf.details]).toEqual(['invalid_request', { field: 'strategy' }]);
    expect(conf.message).toMatch(OLDER);
  });
});
