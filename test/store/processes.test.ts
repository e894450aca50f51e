// Real OS processes against one database file: concurrent appenders (optimistic concurrency and
// idempotent retries across processes), and writers killed with SIGKILL mid-transaction or
// mid-stream of commits. The children run the compiled store (dist/, built by the global setup).
import Database from 'better-sqlite3';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, ev, openStore, runFixture, tempDbPath, type ChildResult } from './helpers.js';

afterEach(cleanup);

function requestCount(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT COUNT(*) FROM requests').pluck().get() as number;
  } finally {
    db.close();
  }
}

describe('concurrent appenders', () => {
  it('4 processes × 150 commits on one stream: 600 events, contiguous, each exactly once, intact', async () => {
    const CHILDREN = 4;
    const PER_CHILD = 150;
    const TOTAL = CHILDREN * PER_CHILD;
    const stream = 'vm/shared';
    // the file does not exist yet: the children also race to create and migrate it
    const path = tempDbPath();

    // start barrier: every child opens the store, says "ready", and waits for the go file
    const goFile = join(dirname(path), 'go');
    let ready = 0;
    const results = await Promise.all(
      Array.from({ length: CHILDREN }, (_, i) =>
        runFixture('appender.mjs', [path, String(i), String(PER_CHILD), stream, goFile], {
          timeoutMs: 120_000,
          onLine: (line) => {
            if (line === 'ready' && ++ready === CHILDREN) writeFileSync(goFile, 'go');
          },
        }),
      ),
    );
    // all children's failures at once, not only the first child's
    expect(results.map((r) => ({ code: r.code, stderr: r.stderr }))).toEqual(results.map(() => ({ code: 0, stderr: '' })));
    const summaries = results.map((r: ChildResult, i) => {
      expect(r.stderr, `child ${i} stderr`).toBe('');
      expect(r.code, `child ${i} exit code`).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toBe('ready');
      return JSON.parse(lines.at(-1)!) as { childId: string; count: number; conflicts: number; duplicates: number };
    });
    for (const [i, s] of summaries.entries()) {
      expect(s.childId).toBe(String(i));
      expect(s.duplicates).toBe(PER_CHILD / 10);
    }

    const s = openStore(path);
    const events = s.read();
    expect(events).toHaveLength(TOTAL);
    expect(s.lastPosition()).toBe(TOTAL);
    expect(events.map((e) => e.position)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    expect(events.every((e) => e.streamId === stream)).toBe(true);
    expect(events.map((e) => e.version)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    expect(s.streamVersion(stream)).toBe(TOTAL);

    // every (child, seq) exactly once, and each child's own commits in order
    const seen = new Map<string, number>();
    const lastSeqOf = new Map<string, number>();
    for (const e of events) {
      const d = e.data as { child: string; seq: number };
      const key = `${d.child}/${d.seq}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      expect(d.seq, `child ${d.child} out of order`).toBe((lastSeqOf.get(d.child) ?? -1) + 1);
      lastSeqOf.set(d.child, d.seq);
      // the recorded response names this very event
      expect(s.findRequest(`child-${d.child}-seq-${d.seq}`)).toEqual({ response: { position: e.position, version: e.version } });
    }
    expect(seen.size).toBe(TOTAL);
    for (let c = 0; c < CHILDREN; c++) for (let q = 0; q < PER_CHILD; q++) expect(seen.get(`${c}/${q}`), `${c}/${q}`).toBe(1);
    expect(requestCount(path)).toBe(TOTAL);

    expect(s.verify()).toMatchObject({ intact: true, checked: TOTAL });

    const switches = events.filter((e, i) => i > 0 && (e.data as { child: string }).child !== (events[i - 1]!.data as { child: string }).child).length;
    // preconditions: the children really interleaved and really raced (conflicts were retried);
    // typically ~300 switches and ~600 conflicts
    expect(switches).toBeGreaterThanOrEqual(10);
    expect(summaries.reduce((n, x) => n + x.conflicts, 0)).toBeGreaterThan(0);
  }, 150_000);
});

describe('a writer killed with SIGKILL', () => {
  /** Run txn-crash.mjs and SIGKILL it when it prints a line starting with `killOn`. */
  async function killTxnChild(path: string, n: number, fillerBytes: number, killOn: string): Promise<{ result: ChildResult; walBytesAtKill: number }> {
    let walBytesAtKill = -1;
    const result = await runFixture('txn-crash.mjs', [path, String(n), String(fillerBytes)], {
      onLine: (line, child) => {
        if (line.startsWith(killOn) && walBytesAtKill < 0) {
          walBytesAtKill = existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0;
          child.kill('SIGKILL');
        }
      },
    });
    return { result, walBytesAtKill };
  }

  // The second case writes ~25 MB inside the transaction, more than better-sqlite3's page cache
  // (16 MB by default), so SQLite spills uncommitted pages into the WAL before the kill: recovery
  // must ignore WAL frames that have no commit record.
  it.each([
    ['a fresh database, killed after the first few inserts', 0, 'inside', 50, 600],
    ['a database with events, killed while busy-looping in the transaction', 25, 'spinning', 6000, 4000],
  ])('inside store.transaction, on %s: nothing of the transaction survives', async (_label, pre, killOn, n, fillerBytes) => {
    const path = tempDbPath();
    let hashes: string[] = [];
    if (pre > 0) {
      const s0 = openStore(path);
      for (let i = 0; i < pre; i++) s0.commit([{ streamId: `pre/${i % 3}`, expectedVersion: 'any', events: [ev('pre', i, { i })] }], { requestId: `pre-${i}` });
      hashes = s0.read().map((e) => e.hash);
      s0.close();
    }

    const { result, walBytesAtKill } = await killTxnChild(path, n, fillerBytes, killOn);
    expect(result.signal, result.stderr).toBe('SIGKILL');
    expect(result.stdout).toContain('inside\n');
    if (killOn === 'spinning') {
      // the child had appended all n events inside its (never committed) transaction
      expect(result.stdout).toContain(`spinning ${pre + n}\n`);
      // precondition of the scenario: uncommitted pages really reached the WAL file
      expect(walBytesAtKill, 'no uncommitted pages were spilled to the WAL').toBeGreaterThan(4 << 20);
    }

    const s = openStore(path);
    expect(s.lastPosition()).toBe(pre);
    expect(s.read().map((e) => e.hash)).toEqual(hashes);
    expect(s.streams('crash/')).toEqual([]);
    expect(s.findRequest('txn-0')).toBeUndefined();
    expect(requestCount(path)).toBe(pre);
    expect(s.verify()).toMatchObject({ intact: true, checked: pre });

    // the log is writable again and the chain continues
    const r = s.commit([{ streamId: 'after', expectedVersion: 0, events: [ev('after', 1_000_000)] }], { requestId: 'after-crash' });
    expect(r.written.map((w) => w.position)).toEqual([pre + 1]);
    expect(s.verify()).toMatchObject({ intact: true, checked: pre + 1 });
    expect(s.findRequest('txn-0')).toBeUndefined();
  });

  it('mid-stream of separate 3-event commits: a contiguous prefix of whole commits survives, intact', async () => {
    for (let round = 0; round < 3; round++) {
      const path = tempDbPath();
      const result = await runFixture('commits-crash.mjs', [path, String(20 + 15 * round)], {
        onLine: (line, child) => {
          if (line === 'ready') {
            // let it run on a little so the kill lands at an arbitrary point
            setTimeout(() => child.kill('SIGKILL'), 5 * round);
          }
        },
      });
      expect(result.signal, result.stderr).toBe('SIGKILL');

      const s = openStore(path);
      const events = s.read();
      const count = events.length;
      expect(count).toBeGreaterThanOrEqual(3 * (20 + 15 * round));
      expect(count % 3, `round ${round}: ${count} events is not a whole number of commits`).toBe(0);
      expect(s.lastPosition()).toBe(count);
      expect(events.map((e) => e.position)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
      const commits = count / 3;
      for (let c = 0; c < commits; c++) {
        const group = events.slice(3 * c, 3 * c + 3);
        expect(group.map((e) => (e.data as { c: number; k: number }).c)).toEqual([c, c, c]);
        expect(group.map((e) => (e.data as { c: number; k: number }).k)).toEqual([0, 1, 2]);
        expect(group.map((e) => [e.streamId, e.version])).toEqual([
          ['crash/a', 2 * c + 1],
          ['crash/a', 2 * c + 2],
          ['crash/b', c + 1],
        ]);
      }
      // the request table agrees with the events: exactly the surviving commits are remembered
      expect(requestCount(path)).toBe(commits);
      expect(s.findRequest(`commit-${commits - 1}`)).toEqual({ response: [count - 2, count - 1, count] });
      expect(s.findRequest(`commit-${commits}`)).toBeUndefined();
      expect(s.verify()).toMatchObject({ intact: true, checked: count });

      // and a new commit continues the log
      const r = s.commit([{ streamId: 'crash/b', expectedVersion: commits, events: [ev('after', 1)] }]);
      expect(r.written[0]!.position).toBe(count + 1);
      expect(s.verify()).toMatchObject({ intact: true, checked: count + 1 });
      s.close();
    }
  });
});
