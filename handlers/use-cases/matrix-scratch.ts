// One run of the matrix on a scratch ledger: a fresh in-memory SQLite log, the handlers called on
// it exactly as a script would call them (createHost, createVm, ..., migrate, audit), then thrown
// away. Optionally each cell's full HTML report (the migration report with the cell's guest) is
// written while the scratch ledger is still there.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditFrom } from '../../machines/audit/audit.js';
import { logAuditSource } from '../../machines/audit/source.js';
import { toJson, type Json } from '../../machines/codec.js';
import { memoAuditSource } from '../../machines/matrix/audit-source.js';
import { clearRebuildCache } from '../../machines/rebuild.js';
import { migrationHtml } from '../../machines/export/html/migration.js';
import { migrationReportData } from '../../machines/export/report-data.js';
import { runCells, SCRATCH, type AuditAgain, type CellOutcome } from '../../machines/matrix/run.js';
import type { RunSpec } from '../../machines/matrix/plan.js';
import { CODE_VERSION } from '../../machines/version.js';
import { openEventStore } from '../../store/sqlite-event-store.js';
import type { EventStore } from '../../store/types.js';
import type { DefinedHandler } from '../define.js';
import { HandlerError } from '../errors.js';
import { advanceTime, createHost } from './hosts.js';
import { audit, guestSchema, migrate } from './migrations.js';
import { createVm, guest, runVcpu } from './vms.js';

const HANDLERS: Record<string, DefinedHandler> = { createHost, advanceTime, createVm, runVcpu, guest, migrate, audit };

/** Which cells' reports to write (data only: it crosses to worker threads): `<dir>/<prefix><index>.html` for the cells of these verdicts. */
export interface ReportsOption {
  dir: string;
  prefix: string;
  verdicts: CellOutcome['verdict'][];
}

/** The file name of a cell's report. */
export const reportFile = (prefix: string, index: number): string => `${prefix}${index}.html`;

/** The handlers bound to one store, each answer insisted on (a refusal is the matrix's bug or its spec's, named with the step). */
export function scratchCall(store: EventStore, r: RunSpec) {
  return async (name: string, request: Record<string, Json>): Promise<Record<string, any>> => {
    const res = (await HANDLERS[name]!(request, { store })) as Record<string, any>;
    if (!res.ok) {
      const e = res.error as { code: string; message: string };
      throw new HandlerError(
        e.code === 'invalid_request' ? 'invalid_request' : 'internal',
        `cell ${r.firstCell} (${r.from.name} → ${r.to.name}, ${r.strategy}, blackout ${r.blackoutNs} ns): ${name} refused: ${e.message}`,
        { cell: r.firstCell, step: name, code: e.code },
      );
    }
    return res;
  };
}

/**
 * The audit of the scratch migration for another guest: the audit handler's own function
 * (auditFrom on the log, the guest's settings parsed by the handler's schema) over reads
 * remembered between the guests of the run (the log no longer changes). The same report as the
 * `audit` handler's (tested), without reading and rebuilding the migration's VM states once per guest.
 */
function auditAgainOn(store: EventStore): AuditAgain {
  const src = memoAuditSource(logAuditSource(store));
  return async (settings) => {
    const guest = guestSchema.parse(settings);
    return toJson(auditFrom(src, SCRATCH.migrationId, guest ? { guest } : {})) as Record<string, any>;
  };
}

/** A fresh scratch ledger. */
export function openScratch(): EventStore {
  // Rebuilt tip states are cached by database path, and every in-memory database is ':memory:':
  // forget those of the scratch ledgers before (their versions could match this one's).
  clearRebuildCache();
  return openEventStore(':memory:', { codeVersion: CODE_VERSION });
}

/** Run `r` on a ledger of its own (and, if asked, write its cells' reports); the store is closed after. */
export async function runOnScratch(r: RunSpec, reports?: ReportsOption): Promise<CellOutcome[]> {
  const store = openScratch();
  try {
    return await runCells(r, scratchCall(store, r), reports && ((g, a) => writeReport(store, r.firstCell + g, a, reports)), auditAgainOn(store));
  } finally {
    store.close();
  }
}

/** A cell's report page: its migration, audited with its guest. */
export function cellReportHtml(store: EventStore, auditReport: Record<string, any>): string {
  return migrationHtml(auditReport, migrationReportData(store, SCRATCH.migrationId));
}

function writeReport(store: EventStore, index: number, a: Record<string, any>, o: ReportsOption): void {
  if (!o.verdicts.includes(a.verdict)) return;
  const file = join(o.dir, reportFile(o.prefix, index));
  try {
    writeFileSync(file, cellReportHtml(store, a));
  } catch (e) {
    throw new HandlerError('io', `cannot write the report of cell ${index} to ${file}: ${(e as Error).message}`, { field: 'reportsDir' });
  }
}
