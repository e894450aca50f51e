// A live migration (or snapshot/restore) as an XState machine that drives it: each VMM step is an
// invoked actor whose completion (onDone) moves the machine on and whose refusal (onError with a
// StepFailure) sends it to rollingBack; the blackout is a delayed transition on the session's
// clock. The machine emits the migration's events (each phase it enters, the blackout's end, how
// it ended); the run records them on the migration's stream. The VMM it drives (one strategy's
// steps bound to a port) comes with its input. XState does not persist delayed events, so the
// blackout's end is a domain event (BlackoutElapsed). A template runs only its save half and a
// clone only its restore half (machines/migration/clone.ts), chosen by guards on the input.
import { assign, emit, setup, type ActorLogic, type Snapshot } from 'xstate';
import { StepFailure, type Side } from './port.js';
import type { MigrationEvent, MigrationFailure, MigrationPhase } from './state.js';

/** The VMM the machine drives: one strategy's steps bound to a port, and the guest's reads. */
export interface Vmm {
  /** the source VMM stops the guest (and may read state at the stop) */
  pause(): unknown;
  /** it reads the clock state out of the source kernel */
  save(atStop: unknown): unknown;
  /** the destination VMM creates the VM and writes the clock state */
  restore(saved: unknown): void;
  /** and lets the vCPUs run */
  resume(saved: unknown): void;
  /** after a refused step: the source VMM resumes the guest where it was */
  rollback(atStop: unknown, saved: unknown): void;
  /** the guest reads its clocks on every running vCPU of a side (after a resume its watchdog also looks for PVCLOCK_GUEST_STOPPED) */
  guestReads(side: Side, afterResume: boolean): void;
  /** a completed migration retires its source VM (a pause in place keeps it) */
  release(): void;
}

export interface MigrationMachineInput {
  /** the blackout in ns, exactly (the session clock reads it from here: see delayNs) */
  blackoutNs: bigint;
  vmm: Vmm;
  /**
   * one half of a migration: 'save' stops after the save (a template: the state kept for later
   * restores), 'restore' starts at the restore from `saved` (a clone of a template); absent: both
   */
  half?: 'save' | 'restore';
  /** with half 'restore': the saved state to restore */
  saved?: unknown;
}

/** What a step is given: the VMM, and what it holds (the state read at the stop, the state saved). */
export interface Held {
  vmm: Vmm;
  atStop: unknown;
  saved: unknown;
}

export interface GuestReadsInput {
  vmm: Vmm;
  side: Side;
  afterResume: boolean;
}

export type StepSnapshot<O, I> = Snapshot<O> & { input: I };
export type StepLogic<O, I> = ActorLogic<StepSnapshot<O, I>, { type: 'run' } | { type: 'xstate.stop' }, I>;

/**
 * A VMM step as an actor: started, it runs the step once and is done with its result, or fails
 * with what the step threw. The step is synchronous, and so is the actor: its completion reaches
 * the machine within the same send (XState queues it on the machine's mailbox), so a whole
 * migration runs inside one session call.
 */
export function vmmStep<O, I>(run: (input: I) => O): StepLogic<O, I> {
  return {
    config: run,
    getInitialSnapshot: (_scope, input) => ({ status: 'active', output: undefined, error: undefined, input }),
    start: (_snapshot, { self }) => self.send({ type: 'run' }),
    // (a throw here is the actor's error: XState reports it to the machine as xstate.error.actor.<id>)
    transition: (snapshot, event) => {
      if (snapshot.status !== 'active') return snapshot;
      if (event.type === 'xstate.stop') return { ...snapshot, status: 'stopped' } as StepSnapshot<O, I>;
      return { ...snapshot, status: 'done', output: run(snapshot.input) };
    },
    getPersistedSnapshot: (snapshot) => snapshot,
  };
}

/**
 * The machine's delays by name. XState hands its clock only a number, so a delay resolves to its
 * index here and the clock reads the exact u64 ns it names from the machine's input (delayNs):
 * the blackout is never a double.
 */
export const DELAY_NAMES = ['blackout'] as const;

/** The exact duration of a delay of the machine (as XState passes it to the clock). */
export function delayNs(input: MigrationMachineInput, delay: number): bigint {
  if (DELAY_NAMES[delay] === 'blackout') return input.blackoutNs;
  throw new Error(`the migration machine has no delay ${delay}`);
}

type Context = MigrationMachineInput & Held & { failure: MigrationFailure | null };

const held = ({ context }: { context: Context }): Held => ({ vmm: context.vmm, atStop: context.atStop, saved: context.saved });
const reads =
  (side: Side, afterResume: boolean) =>
  ({ context }: { context: Context }): GuestReadsInput => ({ vmm: context.vmm, side, afterResume });
const phase = (p: MigrationPhase) => ({ type: 'enterPhase', params: { phase: p } }) as const;

/** A refused step (StepFailure) rolls back; anything else the step threw ends the machine in error. */
const refused = { guard: 'refused', target: '#migration.rollingBack', actions: 'rememberFailure' } as const;

export const migrationMachine = setup({
  types: {
    input: {} as MigrationMachineInput,
    context: {} as Context,
    events: {} as { type: 'START' },
    emitted: {} as MigrationEvent,
    output: {} as { status: 'completed' | 'failed' | 'saved' },
  },
  actors: {
    // (the result of pause is atStop; the result of save is saved)
    pause: vmmStep(({ vmm }: Held) => vmm.pause()),
    save: vmmStep(({ vmm, atStop }: Held) => vmm.save(atStop)),
    restore: vmmStep(({ vmm, saved }: Held) => vmm.restore(saved)),
    resume: vmmStep(({ vmm, saved }: Held) => vmm.resume(saved)),
    rollback: vmmStep(({ vmm, atStop, saved }: Held) => vmm.rollback(atStop, saved)),
    guestReads: vmmStep(({ vmm, side, afterResume }: GuestReadsInput) => vmm.guestReads(side, afterResume)),
    release: vmmStep(({ vmm }: Held) => vmm.release()),
  },
  actions: {
    enterPhase: emit((_args, { phase }: { phase: MigrationPhase }) => ({ type: 'MigrationPhaseEntered', data: { phase } }) as MigrationEvent),
    rememberFailure: assign({
      failure: ({ event }) => {
        const e = (event as unknown as { error: StepFailure }).error;
        return { step: e.step, reason: e.reason, ref: e.ref };
      },
    }),
  },
  guards: {
    refused: ({ event }) => (event as unknown as { error?: unknown }).error instanceof StepFailure,
    saveOnly: ({ context }) => context.half === 'save',
    restoreOnly: ({ context }) => context.half === 'restore',
  },
  delays: {
    blackout: DELAY_NAMES.indexOf('blackout'),
  },
}).createMachine({
  id: 'migration',
  context: ({ input }) => ({ ...input, atStop: null, saved: input.saved ?? null, failure: null }),
  initial: 'ready',
  output: ({ context }) => ({ status: context.failure ? 'failed' : context.half === 'save' ? 'saved' : 'completed' }),
  states: {
    // the guest runs on the source; nothing is recorded until the VMM begins (a clone begins at
    // the restore: its save is the template's)
    ready: { on: { START: [{ guard: 'restoreOnly', target: 'restoring' }, { target: 'pausing' }] } },
    pausing: {
      entry: phase('pausing'),
      initial: 'reading',
      states: {
        // the guest's last reads on the source before the stop
        reading: { invoke: { id: 'readsBefore', src: 'guestReads', input: reads('source', false), onDone: 'stopping' } },
        // the source VMM stops the vCPUs
        stopping: {
          invoke: {
            id: 'pause',
            src: 'pause',
            input: held,
            onDone: { target: '#migration.saving', actions: assign({ atStop: ({ event }) => event.output }) },
            onError: refused,
          },
        },
      },
    },
    // It reads the guest's clock state out of the source kernel.
    saving: {
      entry: phase('saving'),
      invoke: {
        id: 'save',
        src: 'save',
        input: held,
        onDone: [
          { guard: 'saveOnly', target: 'kept', actions: assign({ saved: ({ event }) => event.output }) },
          { target: 'transferring', actions: assign({ saved: ({ event }) => event.output }) },
        ],
        onError: refused,
      },
    },
    // A template's save ends here: the state is kept (a snapshot file) for restores later, and
    // the VM stays where the save left it.
    kept: { type: 'final', entry: phase('transferring') },
    // The state crosses to the destination: nothing runs for the blackout, on the session's clock.
    transferring: {
      entry: phase('transferring'),
      after: {
        blackout: {
          target: 'restoring',
          actions: emit(({ context }) => ({ type: 'BlackoutElapsed', data: { ns: context.blackoutNs.toString() } })),
        },
      },
    },
    // The destination VMM creates the VM and writes the clock state into its kernel.
    restoring: {
      entry: phase('restoring'),
      invoke: { id: 'restore', src: 'restore', input: held, onDone: 'resuming', onError: refused },
    },
    // The destination's vCPUs enter KVM_RUN.
    resuming: {
      entry: phase('resuming'),
      invoke: { id: 'resume', src: 'resume', input: held, onDone: 'verifying', onError: refused },
    },
    // The guest reads its clocks on every vCPU.
    verifying: {
      entry: phase('verifying'),
      invoke: {
        id: 'readsAfter',
        src: 'guestReads',
        input: reads('destination', true),
        onDone: { target: 'releasing', actions: emit(() => ({ type: 'MigrationCompleted', data: {} })) },
      },
    },
    // The source VM is retired (a pause in place keeps its VM).
    releasing: {
      invoke: { id: 'release', src: 'release', input: held, onDone: 'completed' },
    },
    completed: { type: 'final' },
    // A refused step: the destination is torn down and the source resumes, as a real VMM does;
    // then the guest reads its clocks on the source again.
    rollingBack: {
      entry: phase('rollingBack'),
      initial: 'resumingSource',
      states: {
        resumingSource: {
          invoke: { id: 'rollback', src: 'rollback', input: held, onDone: 'reading' },
        },
        reading: { invoke: { id: 'readsAgain', src: 'guestReads', input: reads('source', true), onDone: '#migration.failed' } },
      },
    },
    failed: { type: 'final', entry: emit(({ context }) => ({ type: 'MigrationFailed', data: context.failure! })) },
  },
});
