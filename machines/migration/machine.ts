// A live migration (or snapshot/restore) as an XState machine. The VMM's steps run outside it;
// the machine accepts them only in order, records each phase it enters on the migration's
// stream, and owns the blackout as a delayed transition on a simulated clock. XState does not
// persist delayed events, so the blackout's end is recorded as a domain event (BlackoutElapsed).
import { assign, setup } from 'xstate';
import type { MigrationEvent, MigrationFailure, MigrationPhase } from './state.js';

export interface MigrationMachineInput {
  blackoutNs: number;
  /** records an event on the migration's stream (the session's record) */
  record: (ev: MigrationEvent) => void;
}

export type MigrationMachineEvent =
  | { type: 'PAUSED' }
  | { type: 'SAVED' }
  | { type: 'RESTORED' }
  | { type: 'RESUMED' }
  | { type: 'VERIFIED' }
  | { type: 'FAILED'; failure: MigrationFailure }
  | { type: 'ROLLED_BACK' };

const enter = (phase: MigrationPhase) => ({ context }: { context: { record: MigrationMachineInput['record'] } }) =>
  context.record({ type: 'MigrationPhaseEntered', data: { phase } });

export const migrationMachine = setup({
  types: {
    input: {} as MigrationMachineInput,
    context: {} as MigrationMachineInput & { failure: MigrationFailure | null },
    events: {} as MigrationMachineEvent,
  },
  delays: {
    blackout: ({ context }) => context.blackoutNs,
  },
  actions: {
    rememberFailure: assign({ failure: ({ event }) => (event.type === 'FAILED' ? event.failure : null) }),
  },
}).createMachine({
  id: 'migration',
  context: ({ input }) => ({ ...input, failure: null }),
  initial: 'pausing',
  states: {
    // The source VMM stops the vCPUs.
    pausing: { entry: enter('pausing'), on: { PAUSED: 'saving', FAILED: { target: 'rollingBack', actions: 'rememberFailure' } } },
    // It reads the guest's clock state out of the source kernel.
    saving: { entry: enter('saving'), on: { SAVED: 'transferring', FAILED: { target: 'rollingBack', actions: 'rememberFailure' } } },
    // The state crosses to the destination: nothing runs for the blackout.
    transferring: {
      entry: enter('transferring'),
      after: {
        blackout: {
          target: 'restoring',
          actions: ({ context }) => context.record({ type: 'BlackoutElapsed', data: { ns: String(context.blackoutNs) } }),
        },
      },
    },
    // The destination VMM creates the VM and writes the clock state into its kernel.
    restoring: { entry: enter('restoring'), on: { RESTORED: 'resuming', FAILED: { target: 'rollingBack', actions: 'rememberFailure' } } },
    // The destination's vCPUs enter KVM_RUN.
    resuming: { entry: enter('resuming'), on: { RESUMED: 'verifying', FAILED: { target: 'rollingBack', actions: 'rememberFailure' } } },
    // The guest reads its clocks on every vCPU.
    verifying: { entry: enter('verifying'), on: { VERIFIED: 'completed' } },
    completed: { type: 'final', entry: ({ context }) => context.record({ type: 'MigrationCompleted', data: {} }) },
    // A refused step: the destination is torn down and the source resumes, as a real VMM does.
    rollingBack: { entry: enter('rollingBack'), on: { ROLLED_BACK: 'failed' } },
    failed: { type: 'final', entry: ({ context }) => context.record({ type: 'MigrationFailed', data: context.failure! }) },
  },
});
