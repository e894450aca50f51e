// The import graph of the TypeScript sources, read from the files themselves (no compiler, no
// dependency): every relative module a file names, whether by import, export ... from, a side-effect
// import, a dynamic import() or a type-level import('...'), `import type` included: a circle of
// type-only imports still ties the files' designs together.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Each file (relative to root, '/'-separated) and the files it imports. */
export type ImportGraph = Map<string, string[]>;

/** The .ts files (not .d.ts) under `paths` (files or directories, relative to root). */
export function sourceFiles(root: string, paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    if (statSync(p).isDirectory()) {
      for (const f of readdirSync(p)) if (f !== 'node_modules' && f !== 'dist' && !f.startsWith('.')) walk(join(p, f));
    } else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  };
  for (const p of paths) if (existsSync(join(root, p))) walk(join(root, p));
  return out.map((f) => relative(root, f).split('\\').join('/')).sort();
}

// `from '…'` (import and export), `import '…'`, and `import('…')` (dynamic, or in a type)
const SPECIFIERS = /\bfrom\s*['"]([^'"]+)['"]|\bimport\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;
// comments: a block, or a line from `//` at its start (a `//` inside a string, such as a URL, stays)
const COMMENTS = /\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm;

/** The relative modules a source text names, as written. */
export function specifiersOf(text: string): string[] {
  const code = text.replace(COMMENTS, '');
  return [...code.matchAll(SPECIFIERS)].map((m) => (m[1] ?? m[2] ?? m[3])!).filter((s) => s.startsWith('.'));
}

/** The graph of the files, each relative import resolved to its .ts file (./x.js → ./x.ts, ./dir → ./dir/index.ts). */
export function importGraph(root: string, files: readonly string[]): ImportGraph {
  const known = new Set(files);
  const graph: ImportGraph = new Map();
  for (const f of files) {
    const deps = new Set<string>();
    for (const spec of specifiersOf(readFileSync(join(root, f), 'utf8'))) {
      const base = relative(root, resolve(root, dirname(f), spec))
        .split('\\')
        .join('/');
      const stem = base.replace(/\.(js|ts)$/, '');
      const target = [`${stem}.ts`, `${base}/index.ts`].find((c) => known.has(c));
      if (target) deps.add(target);
    }
    graph.set(f, [...deps].sort());
  }
  return graph;
}

/** The import circles: each group of files that reach one another (Tarjan's strongly connected components), files sorted. */
export function importCircles(graph: ImportGraph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      group.push(w);
    } while (w !== v);
    if (group.length > 1 || (graph.get(v) ?? []).includes(v)) circles.push(group.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return circles.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** One way around a circle, from its first file back to it: "a.ts → b.ts → a.ts" (the shortest, breadth first). */
export function circlePath(graph: ImportGraph, circle: readonly string[]): string {
  const inCircle = new Set(circle);
  const start = circle[0]!;
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length && !prev.has(start)) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!inCircle.has(w) || prev.has(w)) continue;
      prev.set(w, v);
      queue.push(w);
    }
  }
  const between: string[] = [];
  for (let v = prev.get(start); v !== undefined && v !== start; v = prev.get(v)) between.unshift(v);
  return [start, ...between, start].join(' → ');
}

/** Every file `entry` reaches through imports (itself included). */
export function reachable(graph: ImportGraph, entry: string): Set<string> {
  const seen = new Set<string>([entry]);
  const todo = [entry];
  while (todo.length) for (const w of graph.get(todo.pop()!) ?? []) if (!seen.has(w)) seen.add(w), todo.push(w);
  return seen;
}
