// The guest's settings as command-line options (createVm, configureGuest, audit, timeline): flat
// flags gathered into the request's nested `guest` object.
import type { CliOption, CliValues } from './spec.js';

/** Each guest option: its flag, what it sets (a path in `guest`), and how its value is read. */
const GUEST_FLAGS: readonly (CliOption & { path: string })[] = [
  { flags: '--guest-kernel <version>', description: 'the guest kernel version ("6.6", "5.15.16")', path: 'kernel' },
  { flags: '--guest-clocksource <cs>', description: 'clocksource= on the guest command line', choices: ['auto', 'kvm-clock', 'tsc'], path: 'clocksource' },
  { flags: '--tsc-reliable', description: 'tsc=reliable: the TSC is not watched', path: 'tscReliable' },
  { flags: '--invariant-tsc', description: 'the vCPUs show an invariant TSC (kvm-clock rates 299)', path: 'invariantTsc' },
  { flags: '--tsc-unstable', description: 'tsc=unstable on the guest command line: the TSC is marked unstable at boot', path: 'tscUnstable' },
  { flags: '--no-preempt-rcu', description: 'a kernel without CONFIG_PREEMPT_RCU (its stalls are rcu_sched)', path: 'preemptRcu' },
  { flags: '--watchdog-thresh <s>', description: 'kernel.watchdog_thresh (s)', value: 'int', path: 'watchdogThreshS' },
  { flags: '--wall-clock-tolerance <duration>', description: 'the CLOCK_REALTIME error tolerated', value: 'duration', path: 'wallClockToleranceNs' },
  { flags: '--ntp <client>', description: 'the NTP client', choices: ['chrony', 'ntpd', 'none'], path: 'ntp.client' },
  { flags: '--ntp-poll <duration>', description: "the NTP client's poll", value: 'duration', path: 'ntp.pollNs' },
  { flags: '--makestep-threshold <duration>', description: 'chrony makestep threshold', value: 'duration', path: 'ntp.makestepThresholdNs' },
  { flags: '--makestep-limit <n>', description: 'chrony makestep limit (-1: no limit)', value: 'number', path: 'ntp.makestepLimit' },
  {
    flags: '--refclock <driver>',
    description: "chrony's PHC refclock on /dev/ptp0 (ptp_kvm: the host's clock through KVM_HC_CLOCK_PAIRING)",
    choices: ['ptp_kvm'],
    path: 'ntp.refclock',
  },
  { flags: '--refclock-poll <duration>', description: "the refclock's poll (default 16 s)", value: 'duration', path: 'ntp.refclockPollNs' },
  {
    flags: '--agent-every <duration>',
    description: 'a guest agent checking CLOCK_REALTIME against the host this often',
    value: 'duration',
    path: 'agent.everyNs',
  },
  { flags: '--agent-step-above <duration>', description: 'the error beyond which the agent steps it', value: 'duration', path: 'agent.stepAboveNs' },
];

const fieldOf = (path: string) => `guest_${path.replace('.', '_')}`;

/** The guest options of a command (their values reach the request only through guestRequest). */
export const guestOptions: readonly CliOption[] = GUEST_FLAGS.map(({ path, ...o }) => ({ ...o, field: fieldOf(path) }));

/** The values without the guest options, and the `guest` object they make (undefined: none given). */
export function guestRequest(v: CliValues): { rest: CliValues; guest: Record<string, unknown> | undefined } {
  const rest: CliValues = {};
  const guest: Record<string, Record<string, unknown> | unknown> = {};
  const byField = new Map(GUEST_FLAGS.map((f) => [fieldOf(f.path), f.path]));
  for (const [k, x] of Object.entries(v)) {
    const path = byField.get(k);
    if (!path) {
      rest[k] = x;
      continue;
    }
    if (x === undefined) continue;
    const [a, b] = path.split('.') as [string, string | undefined];
    if (b === undefined) guest[a] = x;
    else guest[a] = { ...((guest[a] as Record<string, unknown>) ?? {}), [b]: x };
  }
  return { rest, guest: Object.keys(guest).length ? guest : undefined };
}
