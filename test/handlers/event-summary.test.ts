// One line per event in `clockledger log` / `events`: a MatrixChecked event says its cells and
// verdicts, not the plan and compact results it carries (which `--json` shows whole).
import { describe, expect, it } from 'vitest';
import { eventSummary, type EventJson } from '../../handlers/cli/format.js';

const matrixEvent = (data: Record<string, unknown>): EventJson => ({ position: 7, streamId: 'matrix-x1', version: 1, type: 'MatrixChecked', time: '0', data });
const plan = { hosts: [{ name: 'a', tscKhz: 3_000_000 }], strategies: ['qemu'] };
const results = { verdicts: 'ppwf', findingSets: [''], findings: [0, 0, 0, 0] };

describe('the event summary of a checked matrix', () => {
  it('counts the cells by verdict, n/a only when there are some', () => {
    const s = eventSummary(matrixEvent({ matrixId: 'x1', plan, cells: 32, summary: { pass: 20, warn: 8, fail: 4, notApplicable: 0 }, results }));
    expect(s).toBe('32 cells: 20 pass, 8 warn, 4 fail');
    const na = eventSummary(matrixEvent({ matrixId: 'x1', plan, cells: 4, summary: { pass: 1, warn: 0, fail: 1, notApplicable: 2 }, results }));
    expect(na).toBe('4 cells: 1 pass, 0 warn, 1 fail, 2 n/a');
  });

  it('a before/after gives the after side and how many cells changed', () => {
    const changed = [{ index: 1, before: 'pass', after: 'warn', responsible: [] }];
    const after = { plan, summary: { pass: 2, warn: 1, fail: 1, notApplicable: 0 }, results, changed };
    const s = eventSummary(matrixEvent({ matrixId: 'x1', plan, cells: 4, summary: { pass: 3, warn: 0, fail: 1, notApplicable: 0 }, results, after }));
    expect(s).toBe('4 cells: 3 pass, 0 warn, 1 fail; after: 2 pass, 1 warn, 1 fail; 1 changed');
  });
});
