// A rule of the audit's tables (rules.ts, guest-rules.ts): what it judges, its condition against
// the thresholds, its severity, its message and what it cites. A module of its own so that both
// tables depend on it and not on each other.
import type { GuestReport } from '../guest/types.js';
import type { GuestSettings } from '../guest/settings.js';
import type { AuditFrame } from './frame.js';
import type { Citations, Measurement } from './measure.js';
import type { Severity } from './report-types.js';
import type { AuditThresholds, FindingCode } from './thresholds.js';

export interface RuleInput {
  f: AuditFrame;
  m: Measurement;
  th: AuditThresholds;
  /** the simulated guest (null: none) */
  g: GuestReport | null;
  /** the simulated guest's settings */
  gs: GuestSettings;
}

export interface Rule<S = any> {
  code: FindingCode;
  /** the architecture it judges (both when absent) */
  arch?: 'x86' | 'arm64';
  /** judged only once the guest resumed (not while the migration is in flight) */
  atResume: boolean;
  /** the condition, in words, and the thresholds it compares with */
  condition: string;
  thresholds: (keyof AuditThresholds)[];
  /** each case found (one finding each; none: no finding) */
  cases(c: RuleInput): S[];
  severity: Severity;
  /** another severity when this holds of a case */
  or?: { severity: Severity; when(s: S, c: RuleInput): boolean; condition: string };
  message(s: S, c: RuleInput): string;
  /** the recorded events cited: the measurement's lists, or positions the rule finds itself */
  cites: (keyof Citations)[] | ((s: S, c: RuleInput) => number[]);
  /** guest-model rules: the guest.log entries the finding stands on */
  guestLog?: (s: S, c: RuleInput) => number[];
}

/** A row of a rule table, its case type inferred. */
export const rule = <S>(r: Rule<S>): Rule<S> => r;
