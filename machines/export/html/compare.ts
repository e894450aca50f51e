// Two HTML reports over several migrations: a replay comparison (each affected migration's audit
// under both profiles side by side, and the first divergence), and the fleet table of verdicts.
import { findingsSection, summaryList, vcpuTable, type AuditLike } from './migration.js';
import { argText, esc, signedDuration, page, table, td, tdNum, verdictBadge } from './page.js';

/** What a replay report holds that the page shows (the replay handler's answer). */
export type ReplayLike = Record<string, any>;

function divergenceBlock(d: AuditLike | null | undefined): string {
  if (!d) return '<p>No divergence: every result replayed as recorded.</p>';
  const side = (label: string, x: AuditLike | undefined) =>
    `<div><h3>${esc(label)}</h3>` +
    `<p class="mono">${esc(argText(x?.result ?? null))}</p>` +
    `${
      Array.isArray(x?.trace) && x!.trace.length
        ? `<p class="mono">${esc(x!.trace.map((t: unknown) => (typeof t === 'string' ? t : JSON.stringify(t))).join('\n'))}</p>`
        : ''
    }</div>`;
  return [
    `<p><strong>${esc(d.summary ?? '')}</strong></p>`,
    `<dl class="kv"><dt>position</dt><dd>${esc(d.position)}</dd>` +
      `<dt>VM</dt><dd>${esc(d.vmId)}</dd><dt>vCPU</dt><dd>${esc(d.vcpu ?? 'VM fd')}</dd>` +
      `<dt>event</dt><dd>${esc(d.ioctl ?? d.type)}</dd>` +
      `${d.migrationId ? `<dt>migration</dt><dd>${esc(`${d.migrationId}, phase ${d.phase ?? '?'}, step ${d.step ?? '?'}`)}</dd>` : ''}</dl>`,
    `<div class="side">${side('recorded', d.recorded)}${side('replayed', d.replayed)}</div>`,
  ].join('\n');
}

/** A replay comparison as one page: the first divergence, then each migration's two audits side by side. */
export function replayHtml(r: ReplayLike): string {
  const out: string[] = [];
  out.push(
    `<h1>${esc(`Replay under ${r.profile} against ${r.reference}`)} ` +
      `<span class="verdict ${r.diverged ? 'v-fail' : 'v-pass'}">${r.diverged ? 'diverged' : 'same'}</span></h1>`,
  );
  out.push(`<div class="sub">${esc(`${r.eventsReplayed} events of ${r.vmsReplayed} VMs replayed, ${r.divergenceCount} divergences`)}</div>`);
  out.push('<h2>First divergence</h2>', divergenceBlock(r.firstDivergence));
  for (const m of (r.byMigration ?? []) as AuditLike[]) {
    const a = m.audit?.recorded;
    const b = m.audit?.replayed;
    out.push(
      `<h2>${esc(`Migration ${m.migrationId} (${m.strategy}): ${m.divergences} divergences`)}` +
        `${m.failingStep ? esc(`, the replay fails at step ${m.failingStep}`) : ''}</h2>`,
    );
    if (m.firstDivergence) out.push(`<p>${esc(m.firstDivergence.summary ?? '')}</p>`);
    const col = (label: string, x: AuditLike | null | undefined, prefix: string) =>
      x
        ? `<div><h3>${esc(label)} ${verdictBadge(x.verdict)}</h3>` +
          `${summaryList(x)}${vcpuTable(x)}` +
          `<h4>Findings</h4>${findingsSection(x.findings ?? [], new Set(), prefix)}</div>`
        : `<div><h3>${esc(label)}</h3><p>No audit.</p></div>`;
    out.push(`<div class="side">${col(String(r.reference), a, `${m.migrationId}-a-`)}${col(String(r.profile), b, `${m.migrationId}-b-`)}</div>`);
    const diff = m.difference;
    if (diff) {
      out.push(
        table(['', String(r.reference), String(r.profile), 'difference'].map(esc), [
          [td('verdict'), td(diff.verdict?.recorded), td(diff.verdict?.replayed), td('')],
          ...((diff.tscErrorNs ?? []) as AuditLike[]).map((v) => [
            td(`vCPU ${v.vcpu} TSC error`),
            tdNum(signedDuration(v.recorded)),
            tdNum(signedDuration(v.replayed)),
            tdNum(signedDuration(v.delta)),
          ]),
          ...(diff.kvmclockErrorNs
            ? [
                [
                  td('kvmclock error'),
                  tdNum(signedDuration(diff.kvmclockErrorNs.recorded)),
                  tdNum(signedDuration(diff.kvmclockErrorNs.replayed)),
                  tdNum(signedDuration(diff.kvmclockErrorNs.delta)),
                ],
              ]
            : []),
        ]),
      );
    }
  }
  return page(`clockledger: replay under ${r.profile}`, out.join('\n'));
}

const worstNs = (a: AuditLike): bigint | null => {
  let worst: bigint | null = null;
  for (const v of a.vcpus ?? []) {
    const e = BigInt(String(v.tscErrorNs));
    if (worst === null || (e < 0n ? -e : e) > (worst < 0n ? -worst : worst)) worst = e;
  }
  return worst;
};

/** The fleet: every migration in the log, one row each, its verdict and findings; links to `<migrationId>.html` when `links`. */
export function fleetHtml(audits: AuditLike[], summary: AuditLike, opts: { links?: boolean } = {}): string {
  const rows = audits.map((a) => [
    opts.links ? `<td><a href="${esc(encodeURIComponent(String(a.migrationId)))}.html">${esc(a.migrationId)}</a></td>` : td(a.migrationId),
    td(`${a.strategy}${a.vmm?.release ? ` ${a.vmm.release}` : ''}`),
    td(`${a.vmId} → ${a.newVmId}`),
    td(`${a.fromHost} → ${a.toHost}`),
    td(a.status),
    tdNum(signedDuration(worstNs(a))),
    tdNum(signedDuration(a.kvmclock?.errorNs)),
    `<td>${verdictBadge(a.verdict)}</td>`,
    `<td>${((a.findings ?? []) as AuditLike[])
      .map((f) => `<span class="sev s-${esc(f.severity)}" title="${esc(f.message)}">` + `${esc(f.code)}</span>`)
      .join(' ')}</td>`,
  ]);
  const body = [
    `<h1>Fleet: ${esc(audits.length)} migrations</h1>`,
    `<div class="sub">` +
      `${esc(`pass ${summary.pass ?? 0} · warn ${summary.warn ?? 0} · fail ${summary.fail ?? 0} · in flight ${summary.inFlight ?? 0}`)}</div>`,
    table(['migration', 'strategy', 'VM', 'hosts', 'status', 'worst TSC error', 'kvmclock error', 'verdict', 'findings'].map(esc), rows, 'fleet'),
  ].join('\n');
  return page('clockledger: fleet of migrations', body);
}
