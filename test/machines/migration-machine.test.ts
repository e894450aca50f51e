// The migration machine alone, driving a VMM the test provides and emitting its events: what it
// records and runs, in order, for a completed run, a step refused at restore, and a step that
// throws something other than a refusal; and the blackout as a timer on one clock. No session,
// no SQLite.
import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import { delayNs, migrationMachine, type MigrationMachineInput, type Vmm } from '../../machines/migration/machine.js';
import { StepFailure } from '../../machines/migration/port.js';
import { SessionClock } from '../../machines/migration/run.js';
import type { MigrationEvent } from '../../machines/migration/state.js';

function harness(blackoutNs: bigint, fail: { step: string; error: Error } | null = null, half: Pick<MigrationMachineInput, 'half' | 'saved'> = {}) {
  let t = 1_000n;
  const log: string[] = [];
  const time = { now: () => t, advance: (ns: bigint) => void (t += ns) };
  const step =
    (name: string, out: unknown) =>
    (atStop: unknown = null, saved: unknown = null): any => {
      log.push(`${name}(${String(atStop)},${String(saved)})@${t}`);
      if (fail?.step === name) throw fail.error;
      t += 10n;
      return out;
    };
  const vmm: Vmm = {
    pause: () => step('pause', 'A')(),
    save: (atStop) => step('save', 'S')(atStop),
    restore: (saved) => step('restore', undefined)(null, saved),
    resume: (saved) => step('resume', undefined)(null, saved),
    rollback: (atStop, saved) => step('rollback', undefined)(atStop, saved),
    release: () => step('release', undefined)(),
    guestReads: (side, afterResume) => void log.push(`reads ${side}${afterResume ? ' after resume' : ''}@${t}`),
  };
  const input = { blackoutNs, vmm, ...half };
  const clock = new SessionClock(time, (d) => delayNs(input, d));
  const actor = createActor(migrationMachine, { clock, input });
  actor.on('*', (ev: MigrationEvent) =>
    log.push(
      `${ev.type}${'phase' in ev.data ? `:${ev.data.phase}` : ''}${'ns' in ev.data ? `:${ev.data.ns}` : ''}${'step' in ev.data ? `:${ev.data.step}` : ''}@${t}`,
    ),
  );
  let crash: unknown = null;
  actor.subscribe({ error: (e) => (crash = e) });
  actor.start();
  actor.send({ type: 'START' });
  const afterStart = [...log];
  clock.run();
  return { log, afterStart, snapshot: actor.getSnapshot(), crash, now: t };
}

describe('the migration machine', () => {
  it('runs pause, save, the blackout, restore, resume and the reads in order, recording each phase', () => {
    const blackout = (1n << 53n) + 1n;
    const h = harness(blackout);
    const end = 1_040n + blackout; // 4 steps of 10 ns and the blackout
    expect(h.log).toEqual([
      'MigrationPhaseEntered:pausing@1000',
      'reads source@1000',
      'pause(null,null)@1000',
      'MigrationPhaseEntered:saving@1010',
      'save(A,null)@1010',
      'MigrationPhaseEntered:transferring@1020',
      `BlackoutElapsed:${blackout}@${1_020n + blackout}`,
      `MigrationPhaseEntered:restoring@${1_020n + blackout}`,
      `restore(null,S)@${1_020n + blackout}`,
      `MigrationPhaseEntered:resuming@${1_030n + blackout}`,
      `resume(null,S)@${1_030n + blackout}`,
      `MigrationPhaseEntered:verifying@${end}`,
      `reads destination after resume@${end}`,
      `MigrationCompleted@${end}`,
      `release(null,null)@${end}`,
    ]);
    // the machine waits for its blackout on the clock: nothing after transferring until it runs
    expect(h.afterStart.at(-1)).toBe('MigrationPhaseEntered:transferring@1020');
    expect(h.snapshot.status).toBe('done');
    expect(h.snapshot.output).toEqual({ status: 'completed' });
    expect(h.now).toBe(end + 10n);
  });

  it("a template's save half stops after the save, kept: no blackout, no restore, the VM where it is", () => {
    const h = harness(300n, null, { half: 'save' });
    expect(h.log).toEqual([
      'MigrationPhaseEntered:pausing@1000',
      'reads source@1000',
      'pause(null,null)@1000',
      'MigrationPhaseEntered:saving@1010',
      'save(A,null)@1010',
      'MigrationPhaseEntered:transferring@1020',
    ]);
    expect(h.snapshot.output).toEqual({ status: 'saved' });
    expect(h.now).toBe(1_020n);
  });

  it("a clone's restore half starts at the restore from the state it is given, and rolls back a refusal", () => {
    const ok = harness(300n, null, { half: 'restore', saved: 'T' });
    expect(ok.log).toEqual([
      'MigrationPhaseEntered:restoring@1000',
      'restore(null,T)@1000',
      'MigrationPhaseEntered:resuming@1010',
      'resume(null,T)@1010',
      'MigrationPhaseEntered:verifying@1020',
      'reads destination after resume@1020',
      'MigrationCompleted@1020',
      'release(null,null)@1020',
    ]);
    expect(ok.snapshot.output).toEqual({ status: 'completed' });
    const refused = harness(300n, { step: 'resume', error: new StepFailure('resume', 'KVM_RUN failed', null) }, { half: 'restore', saved: 'T' });
    expect(refused.log.slice(3)).toEqual([
      'resume(null,T)@1010',
      'MigrationPhaseEntered:rollingBack@1010',
      'rollback(null,T)@1010',
      'reads source after resume@1020',
      'MigrationFailed:resume@1020',
    ]);
    expect(refused.snapshot.output).toEqual({ status: 'failed' });
  });

  it('rolls back a refused step with what the VMM holds, and ends failed with the refusal', () => {
    const h = harness(300n, { step: 'restore', error: new StepFailure('restore', 'KVM_SET_TSC_KHZ failed with EINVAL', null) });
    expect(h.log.slice(8)).toEqual([
      'restore(null,S)@1320',
      'MigrationPhaseEntered:rollingBack@1320',
      'rollback(A,S)@1320',
      'reads source after resume@1330',
      'MigrationFailed:restore@1330',
    ]);
    expect(h.snapshot.status).toBe('done');
    expect(h.snapshot.output).toEqual({ status: 'failed' });
    expect(h.snapshot.context.failure).toEqual({ step: 'restore', reason: 'KVM_SET_TSC_KHZ failed with EINVAL', ref: null });
  });

  it('a refusal at pause rolls back with nothing held and never waits for the blackout', () => {
    const h = harness(300n, { step: 'pause', error: new StepFailure('pause', 'no', null) });
    expect(h.log).toEqual([
      'MigrationPhaseEntered:pausing@1000',
      'reads source@1000',
      'pause(null,null)@1000',
      'MigrationPhaseEntered:rollingBack@1000',
      'rollback(null,null)@1000',
      'reads source after resume@1010',
      'MigrationFailed:pause@1010',
    ]);
    expect(h.now).toBe(1_010n);
  });

  it('anything else a step throws ends the machine in error with that error, recording nothing more', () => {
    const boom = new Error('not a refusal');
    const h = harness(300n, { step: 'save', error: boom });
    expect(h.crash).toBe(boom);
    expect(h.snapshot.status).toBe('error');
    expect(h.log.at(-1)).toBe('save(A,null)@1010');
    expect(h.log.some((l) => l.startsWith('MigrationPhaseEntered:rollingBack') || l.startsWith('MigrationFailed'))).toBe(false);
  });
});
