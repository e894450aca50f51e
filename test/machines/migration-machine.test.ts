// The migration machine alone, with its steps and its record action provided by the test: what
// it records and runs, in order, for a completed run, a step refused at restore, and a step that
// throws something other than a refusal; and the blackout as a timer on one clock. No session,
// no SQLite.
import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import { delayNs, migrationMachine, vmmStep, type GuestReadsInput, type Held } from '../../machines/migration/machine.js';
import { StepFailure } from '../../machines/migration/port.js';
import { SessionClock } from '../../machines/migration/run.js';
import type { MigrationEvent } from '../../machines/migration/state.js';

function harness(blackoutNs: bigint, fail: { step: string; error: Error } | null = null) {
  let t = 1_000n;
  const log: string[] = [];
  const time = { now: () => t, advance: (ns: bigint) => void (t += ns) };
  const step = (name: string, out: unknown) =>
    vmmStep<unknown, Held>((h) => {
      log.push(`${name}(${String(h.atStop)},${String(h.saved)})@${t}`);
      if (fail?.step === name) throw fail.error;
      t += 10n;
      return out;
    });
  const input = { blackoutNs };
  const machine = migrationMachine.provide({
    actions: {
      record: (_a, ev: MigrationEvent) => log.push(`${ev.type}${'phase' in ev.data ? `:${ev.data.phase}` : ''}${'ns' in ev.data ? `:${ev.data.ns}` : ''}${'step' in ev.data ? `:${ev.data.step}` : ''}@${t}`),
    },
    actors: {
      pause: step('pause', 'A'),
      save: step('save', 'S'),
      restore: step('restore', undefined),
      resume: step('resume', undefined),
      rollback: step('rollback', undefined),
      release: step('release', undefined),
      guestReads: vmmStep<unknown, GuestReadsInput>(({ side, afterResume }) => void log.push(`reads ${side}${afterResume ? ' after resume' : ''}@${t}`)),
    },
  });
  const clock = new SessionClock(time, (d) => delayNs(input, d));
  const actor = createActor(machine, { clock, input });
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
      `restore(A,S)@${1_020n + blackout}`,
      `MigrationPhaseEntered:resuming@${1_030n + blackout}`,
      `resume(A,S)@${1_030n + blackout}`,
      `MigrationPhaseEntered:verifying@${end}`,
      `reads destination after resume@${end}`,
      `MigrationCompleted@${end}`,
      `release(A,S)@${end}`,
    ]);
    // the machine waits for its blackout on the clock: nothing after transferring until it runs
    expect(h.afterStart.at(-1)).toBe('MigrationPhaseEntered:transferring@1020');
    expect(h.snapshot.status).toBe('done');
    expect(h.snapshot.output).toEqual({ status: 'completed' });
    expect(h.now).toBe(end + 10n);
  });

  it('rolls back a refused step with what the VMM holds, and ends failed with the refusal', () => {
    const h = harness(300n, { step: 'restore', error: new StepFailure('restore', 'KVM_SET_TSC_KHZ failed with EINVAL', null) });
    expect(h.log.slice(8)).toEqual([
      'restore(A,S)@1320',
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
