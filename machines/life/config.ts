// The guest recorded with a VM (stream guest-<vmId>): the settings createVm gave it and every
// configureGuest since, each an event at its instant. A VM a migration or a clone created
// continues the guest of the VM it came from (lineage.ts), so its settings are looked up along
// that line. A VM without this stream (every log recorded before it existed) has the default
// guest, as its audits always had.
import { toSortedJson, type Json } from '../codec.js';
import type { GuestOverrides } from '../guest/settings.js';

/** Guest settings as the log holds them: u64 values as decimal strings. */
export type GuestConfigJson = { [k: string]: Json };

export interface GuestConfiguredData {
  vmId: string;
  /** 'createVm' or 'configureGuest' */
  by: string;
  /** the settings in force from this event on (a whole set: configureGuest merges into the one before it) */
  guest: GuestConfigJson;
}

export type GuestConfigEvent = { type: 'GuestConfigured'; data: GuestConfiguredData };

export interface GuestConfigState {
  vmId: string;
  /** every configuration, oldest first, with its instant */
  history: { time: string; guest: GuestConfigJson }[];
}

export function applyGuestConfigEvent(state: GuestConfigState | null, ev: GuestConfigEvent, time: bigint): GuestConfigState {
  if (ev.type !== 'GuestConfigured') throw new Error(`unknown guest event ${(ev as { type: string }).type}`);
  const s = state ?? { vmId: ev.data.vmId, history: [] };
  s.history.push({ time: time.toString(), guest: ev.data.guest });
  return s;
}

/** The settings whose values are u64 (decimal strings in the log), by path. */
const U64_KEYS = [
  'watchdogMarginNs',
  'watchdogIntervalNs',
  'watchdogMaxIntervalNs',
  'wallClockToleranceNs',
  'sleeperPeriodNs',
  'horizonNs',
  'ntp.pollNs',
  'ntp.makestepThresholdNs',
  'ntp.maxSlewPpb',
  'ntp.stepoutNs',
  'ntp.panicNs',
  'ntp.refclockPollNs',
  'agent.everyNs',
  'agent.stepAboveNs',
];

/** Settings as the log writes them (canonical key order, u64 as decimal strings). */
export function guestConfigToJson(g: GuestOverrides): GuestConfigJson {
  return toSortedJson(g) as GuestConfigJson;
}

/** Settings read back from the log. */
export function guestConfigFromJson(j: GuestConfigJson): GuestOverrides {
  const out = structuredClone(j) as Record<string, unknown>;
  for (const path of U64_KEYS) {
    const [a, b] = path.split('.') as [string, string | undefined];
    const holder = (b === undefined ? out : out[a]) as Record<string, unknown> | undefined;
    const key = b ?? a;
    if (holder && typeof holder[key] === 'string') holder[key] = BigInt(holder[key] as string);
  }
  return out as GuestOverrides;
}

/** configureGuest: the settings before with the ones given merged in (ntp and agent field by field). */
export function mergeGuestConfig(before: GuestOverrides, change: GuestOverrides): GuestOverrides {
  const ntp = before.ntp || change.ntp ? { ...(before.ntp ?? {}), ...(change.ntp ?? {}) } : undefined;
  const merged: GuestOverrides = { ...before, ...change };
  if (ntp) merged.ntp = ntp;
  return merged;
}
