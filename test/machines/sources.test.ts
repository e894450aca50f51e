// One table of sources: every kernel profile, kernel behaviour switch and modelled VMM release names
// where its version fact comes from (a commit, a tag, a CHANGELOG or release-notes line, a posted
// series, a documentation file), or says plainly that none was found. `profiles`, `strategies`
// (JSON and human output) and docs/versions.md show them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderStrategies } from '../../handlers/cli/render/migrations.js';
import { renderProfiles } from '../../handlers/cli/render/replay.js';
import { PROFILES, SWITCH_SOURCES, switchNames } from '../../kvm/profiles.js';
import { STRATEGY_NAMES } from '../../machines/migration/strategies/index.js';
import { releaseTable } from '../../machines/migration/strategies/releases.js';
import { versionsDocs } from '../../scripts/versions-docs.js';
import { newLedger } from '../helpers/ledger.js';

/**
 * What a source looks like: a commit id (9+ hex digits), a tag or kernel version (v1.2, Linux v6.1,
 * Linux 7.1), a CHANGELOG or release-notes line, a mailing-list post or series, a documentation
 * file or a source file read at a commit, or the plain statement that no source was found.
 */
const SOURCE = new RegExp(
  [
    /\b[0-9a-f]{9,40}\b/,
    /\btag v\d|\bLinux v?\d+\.\d+/,
    /CHANGELOG \d|release notes v\d/,
    /\b(kvm|kvmarm) list\b|qemu-devel/,
    /Documentation\/\S+\.rst|Cargo\.toml/,
    /no published source found/,
  ]
    .map((r) => r.source)
    .join('|'),
);
const sourced = (s: unknown) => typeof s === 'string' && SOURCE.test(s);

describe('every version fact names its source', () => {
  it('tells a source from a claim without one', () => {
    const good = ['tag v53.0 (2026-07-12)', 'CHANGELOG 1.10.0: #4460', '8fe2e698fce4 "KVM: x86: …"', 'Linux v6.18', 'kvm list, 2026-07-03: v6'];
    for (const ok of good) expect(sourced(ok), ok).toBe(true);
    for (const bad of [undefined, '', 'mainline', 'the newest release', 'estimated from the merge date']) expect(sourced(bad), String(bad)).toBe(false);
  });

  it('each kernel profile, each behaviour switch', () => {
    for (const p of PROFILES) expect(sourced(p.source), p.name).toBe(true);
    expect(Object.keys(SWITCH_SOURCES).sort()).toEqual([...switchNames()].sort());
    for (const n of switchNames()) expect(sourced(SWITCH_SOURCES[n]), n).toBe(true);
  });

  it('each modelled release of every strategy, and each newest published release', () => {
    for (const name of STRATEGY_NAMES) {
      const t = releaseTable(name);
      for (const r of t.releases) expect(sourced(r.source), `${name} ${r.version}: ${r.source}`).toBe(true);
      if (t.newest) expect(sourced(t.newest.source), `${name} newest`).toBe(true);
    }
  });

  it('profiles and strategies give them as JSON and in their human output', async () => {
    const l = newLedger();
    try {
      const p = await l.ok('profiles', {});
      expect(p.profiles.map((x: { source: string }) => sourced(x.source))).toEqual(PROFILES.map(() => true));
      expect(p.switchSources['x86.globalClockUpdateRateLimit']).toMatch(/^8fe2e698fce4 /);
      const text = renderProfiles(p);
      for (const x of PROFILES) expect(text).toContain(`  ${x.name}: ${x.source}`);
      expect(text).toContain(`  x86.userSetTscGate: ${SWITCH_SOURCES['x86.userSetTscGate']}`);
      const s = await l.ok('strategies', {});
      for (const e of s.strategies) for (const d of e.releaseDetails) expect(sourced(d.source), `${e.name} ${d.release}`).toBe(true);
      const human = renderStrategies(s);
      const fc = releaseTable('firecracker').releases;
      for (const r of fc) expect(human).toContain(`source: ${r.source.slice(0, 40)}`);
    } finally {
      l.cleanup();
    }
  });

  it('docs/versions.md is what `npm run docs` generates now, and lists every entry with its source', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'versions.md'), 'utf8');
    expect(doc).toBe(versionsDocs());
    for (const p of PROFILES) expect(doc).toContain(`| \`${p.name}\` |`);
    expect(doc).toContain('### cloud-hypervisor (x86, arm64)');
    expect(doc).toContain('The newest published release: 53.0 (tag v53.0 (2026-07-12), the newest: no v54.0 was tagged)');
    expect(doc).toMatch(/\| 1\.10\.0 \| `zeroDeadlineFilled`, `deadlineAfterTsc`, `kvmclockCtrlAtPause` \| .* \| CHANGELOG 1\.10\.0: #4460 /);
  });
});
