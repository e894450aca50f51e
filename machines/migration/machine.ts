// A live migration (or snapshot/restore) as an XState machine that drives it: each VMM step is an
// invoked actor whose completion (onDone) moves the machine on and whose refusal (onError with a
// StepFailure) sends it to rollingBack; the blackout is a delayed transition on the session's
// clock. The machine records each phase it enters on the migration's stream through its `record`
// action, and the steps through their actors: both are provided by the run (migrationRun), which
// binds them to one session, port and strategy. XState does not persist delayed events, so the
// blackout's end is recorded as a domain event (BlackoutElapsed).
import { assign, setup, type ActorLogic, type Snapshot } from 'xstate';
import { StepFailure, type Side } from './port.js';
import type { MigrationEvent, MigrationFailure, MigrationPhase } from './state.js';

export interface MigrationMachineInput {
  /** the blackout in ns, exactly (the session clock reads it from here: see delayNs) */
  blackoutNs: bigint;
}

/** What the VMM holds when a step runs: the state read at the stop, and the state saved. */
export interface Held {
  atStop: unknown;
  saved: unknown;
}

export interface GuestReadsInput {
  side: Side;
  /** after a resume the guest's watchdog also looks for PVCLOCK_GUEST_STOPPED */
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

const unprovided = (what: string) => () => {
  throw new Error(`migration machine: ${what} is provided by the run`);
};

type Context = MigrationMachineInput & Held & { failure: MigrationFailure | null };

const phase = (p: MigrationPhase) => ({ type: 'record', params: (): MigrationEvent => ({ type: 'MigrationPhaseEntered', data: { phase: p } }) }) as const;

/** A refused step (StepFailure) rolls back; anything else the step threw ends the machine in error. */
const refused = { guard: 'refused', target: '#migration.rollingBack', actions: 'rememberFailure' } as const;

export const migrationMachine = setup({
  types: {
    input: {} as MigrationMachineInput,
    context: {} as Context,
    events: {} as { type: 'START' },
    output: {} as { status: 'completed' | 'failed' },
  },
  actors: {
    // the source VMM stops the guest (and may read state at the stop): its result is atStop
    pause: vmmStep<unknown, Held>(unprovided('pause')),
    // it reads the clock state out of the source kernel: its result is saved
    save: vmmStep<unknown, Held>(unprovided('save')),
    restore: vmmStep<unknown, Held>(unprovided('restore')),
    resume: vmmStep<unknown, Held>(unprovided('resume')),
    rollback: vmmStep<unknown, Held>(unprovided('rollback')),
    /** the guest reads its clocks on every running vCPU of a side */
    guestReads: vmmStep<unknown, GuestReadsInput>(unprovided('guestReads')),
    /** a completed migration retires its source VM */
    release: vmmStep<unknown, Held>(unprovided('release')),
  },
  actions: {
    /** record an event on the migration's stream */
    record: (_args, _ev: MigrationEvent) => unprovided('record')(),
    rememberFailure: assign({
      failure: ({ event }) => {
        const e = (event as unknown as { error: StepFailure }).error;
        return { step: e.step, reason: e.reason, ref: e.ref };
      },
    }),
  },
  guards: {
    refused: ({ event }) => (event as unknown as { error?: unknown }).error instanceof StepFailure,
  },
  delays: {
    blackout: DELAY_NAMES.indexOf('blackout'),
  },
}).createMachine({
  id: 'migration',
  context: ({ input }) => ({ ...input, atStop: null, saved: null, failure: null }),
  initial: 'ready',
  output: ({ context }) => ({ status: context.failure ? 'failed' : 'completed' }),
  states: {
    // the guest runs on the source; nothing is recorded until the VMM begins
    ready: { on: { START: 'pausing' } },
    pausing: {
      entry: phase('pausing'),
      initial: 'reading',
      states: {
        // the guest's last reads on the source before the stop
        reading: { invoke: { id: 'readsBefore', src: 'guestReads', input: { side: 'source', afterResume: false }, onDone: 'stopping' } },
        // the source VMM stops the vCPUs
        stopping: {
          invoke: {
            id: 'pause',
            src: 'pause',
            input: ({ context }) => ({ atStop: context.atStop, saved: context.saved }),
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
        input: ({ context }) => ({ atStop: context.atStop, saved: context.saved }),
        onDone: { target: 'transferring', actions: assign({ saved: ({ event }) => event.output }) },
        onError: refused,
      },
    },
    // The state crosses to the destination: nothing runs for the blackout, on the session's clock.
    transferring: {
      entry: phase('transferring'),
      after: {
        blackout: {
          target: 'restoring',
          actions: { type: 'record', params: ({ context }) => ({ type: 'BlackoutElapsed', data: { ns: context.blackoutNs.toString() } }) },
        },
      },
    },
    // The destination VMM creates the VM and writes the clock state into its kernel.
    restoring: {
      entry: phase('restoring'),
      invoke: { id: 'restore', src: 'restore', input: ({ context }) => ({ atStop: context.atStop, saved: context.saved }), onDone: 'resuming', onError: refused },
    },
    // The destination's vCPUs enter KVM_RUN.
    resuming: {
      entry: phase('resuming'),
      invoke: { id: 'resume', src: 'resume', input: ({ context }) => ({ atStop: context.atStop, saved: context.saved }), onDone: 'verifying', onError: refused },
    },
    // The guest reads its clocks on every vCPU.
    verifying: {
      entry: phase('verifying'),
      invoke: {
        id: 'readsAfter',
        src: 'guestReads',
        input: { side: 'destination', afterResume: true },
        onDone: { target: 'releasing', actions: { type: 'record', params: (): MigrationEvent => ({ type: 'MigrationCompleted', data: {} }) } },
      },
    },
    // The source VM is retired (a pause in place keeps its VM).
    releasing: {
      invoke: { id: 'release', src: 'release', input: ({ context }) => ({ atStop: context.atStop, saved: context.saved }), onDone: 'completed' },
    },
    completed: { type: 'final' },
    // A refused step: the destination is torn down and the source resumes, as a real VMM does;
    // then the guest reads its clocks on the source again.
    rollingBack: {
      entry: phase('rollingBack'),
      initial: 'resumingSource',
      states: {
        resumingSource: {
          invoke: { id: 'rollback', src: 'rollback', input: ({ context }) => ({ atStop: context.atStop, saved: context.saved }), onDone: 'reading' },
        },
        reading: { invoke: { id: 'readsAgain', src: 'guestReads', input: { side: 'source', afterResume: true }, onDone: '#migration.failed' } },
      },
    },
    failed: { type: 'final', entry: { type: 'record', params: ({ context }) => ({ type: 'MigrationFailed', data: context.failure! }) } },
  },
});
