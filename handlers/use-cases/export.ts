// Exporting the log for other tools: a migration or a VM as a Chrome Trace Event file, which the
// Perfetto UI and chrome://tracing open, or as a tracefs trace file of the kernel's tracepoints;
// and reports to read in a browser: a migration, a replay comparison or the fleet as one HTML page.
import { z } from 'zod';
import { chromeTrace } from '../../machines/export/chrome-trace.js';
import { ftraceText } from '../../machines/export/ftrace.js';
import { replayHtml } from '../../machines/export/html/compare.js';
import { fleetReportPage, migrationReportPage } from '../../machines/export/html/reports.js';
import { auditMigration } from '../../machines/audit/audit.js';
import { replayLog, type ReplayScope } from '../../machines/replay/replay.js';
import { migrationSpan, replayReport } from '../../machines/replay/report.js';
import { migrationStreamId } from '../../machines/stream-ids.js';
import { vmStreamId } from '../../machines/vm/events.js';
import { profileSpec } from '../profile-field.js';
import { defineHandler } from '../define.js';
import { commonFields, idSchema } from '../fields.js';
import { HandlerError } from '../errors.js';

/** The formats exportTrace writes. */
export const EXPORT_FORMATS = ['chrome-trace', 'ftrace'] as const;

export const exportTrace = defineHandler({
  name: 'exportTrace',
  schema: z.object({ ...commonFields, id: idSchema, format: z.enum(EXPORT_FORMATS).default('chrome-trace') }).strict(),
  async run(req, env) {
    const store = await env.log();
    const trace = req.format === 'ftrace' ? ftraceText(store, req.id) : chromeTrace(store, req.id);
    if (!trace) throw new HandlerError('not_found', `no VM or migration '${req.id}'`, { id: req.id });
    return { format: req.format, trace };
  },
});

/** What `report` renders: one page, self-contained (HTML is the only format so far). */
export const REPORT_FORMATS = ['html'] as const;

/**
 * A report a person reads in a browser: a migration's audit with its timeline (id), a replay
 * comparison under another kernel profile (profile, and optionally id), or the fleet of every
 * migration in the log (neither).
 */
export const report = defineHandler({
  name: 'report',
  schema: z
    .object({
      ...commonFields,
      /** a migration (omitted: every migration in the log) */
      id: idSchema.optional(),
      format: z.enum(REPORT_FORMATS).default('html'),
      /** compare the recording (or `reference`) with a replay under this kernel profile */
      profile: profileSpec.optional(),
      reference: profileSpec.optional(),
      /** the fleet table links each migration to `<migrationId>.html` beside it */
      links: z.boolean().default(false),
    })
    .strict()
    .refine((r) => r.reference === undefined || r.profile !== undefined, { message: 'reference needs profile', path: ['reference'] }),
  async run(req, env) {
    // the log as the ledger's engine reads it (a PostgreSQL ledger has no SQLite store)
    const store = await env.log();
    const needMigration = (id: string) => {
      if (!store.streamVersion(migrationStreamId(id))) throw new HandlerError('not_found', `no migration '${id}'`, { migrationId: id });
    };
    if (req.profile) {
      let scope: ReplayScope = {};
      if (req.id) {
        needMigration(req.id);
        const m = migrationSpan(store, migrationStreamId(req.id))!;
        scope = {
          vmIds: [m.state.vmId, ...(store.streamVersion(vmStreamId(m.state.newVmId)) ? [m.state.newVmId] : [])],
          fromPosition: m.from,
          toPosition: m.to,
        };
      }
      const run = replayLog(store, { ...scope, profile: req.profile, reference: req.reference, keep: 200, onProgress: env.onProgress });
      const r = replayReport(store, run, req.profile, req.reference) as Record<string, any>;
      // the migration asked for is shown side by side even when nothing in it diverged
      if (req.id && !r.byMigration.some((m: { migrationId: string }) => m.migrationId === req.id)) {
        const recorded = auditMigration(store, req.id, undefined, req.reference ? { profile: req.reference } : {});
        const replayed = auditMigration(store, req.id, undefined, { profile: req.profile });
        r.byMigration = [
          ...r.byMigration,
          {
            migrationId: req.id,
            strategy: recorded?.strategy,
            divergences: 0,
            firstDivergence: null,
            failingStep: null,
            audit: { recorded, replayed },
            difference: null,
          },
        ];
      }
      return { format: req.format, kind: 'replay', html: replayHtml(r) };
    }
    if (req.id) {
      needMigration(req.id);
      return { format: req.format, kind: 'migration', html: migrationReportPage(store, req.id)! };
    }
    return { format: req.format, kind: 'fleet', html: fleetReportPage(store, { links: req.links }) };
  },
});
