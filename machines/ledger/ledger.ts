// The ledger stream: the one simulated true-time axis every host shares.

export { LEDGER_STREAM } from '../stream-ids.js';

export type LedgerEvent = { type: 'TimeAdvanced'; data: { from: string; to: string } };

export interface LedgerState {
  now: bigint;
}

export function applyLedgerEvent(state: LedgerState | null, ev: LedgerEvent): LedgerState {
  return { now: BigInt(ev.data.to) > (state?.now ?? 0n) ? BigInt(ev.data.to) : (state?.now ?? 0n) };
}
