// The HTML reports read from the log: a migration's page and the fleet's (the replay comparison
// is rendered from the replay's report, replayHtml). Pure: they read the store and return text.
import type { EventStore } from '../../../store/types.js';
import { auditMigration } from '../../audit/audit.js';
import { MIGRATION_STREAM_PREFIX, migrationIdOf } from '../../stream-ids.js';
import { migrationReportData } from '../report-data.js';
import { fleetHtml } from './compare.js';
import { migrationHtml } from './migration.js';

/** A migration's report page (null: no such migration). */
export function migrationReportPage(store: EventStore, migrationId: string): string | null {
  const a = auditMigration(store, migrationId);
  return a ? migrationHtml(a, migrationReportData(store, migrationId, a)) : null;
}

/** Every migration of the log in one table of verdicts; `links`: each to `<migrationId>.html` beside the page. */
export function fleetReportPage(store: EventStore, opts: { links?: boolean } = {}): string {
  const audits = store.streams(MIGRATION_STREAM_PREFIX).map((s) => auditMigration(store, migrationIdOf(s)!)!);
  const count = (v: string) => audits.filter((a) => a.verdict === v).length;
  return fleetHtml(audits, { pass: count('pass'), warn: count('warn'), fail: count('fail'), inFlight: count('in_flight') }, opts);
}
