// A request's stored response, as text the server can finish once it knows where the commit lands.
// A commit whose events are chained by the server (migrations/pg/008) learns its positions only
// under the append lock; the response stored with it may name those positions (a guest read
// answers with the position of its event). The response is worked out twice, at two bases far
// apart: a number that moves by exactly the distance between them is a position plus a constant,
// and the text is cut there. Anything else that moves (a position inside a string, a number
// derived some other way) leaves the response unfit for a server-side finish: null, and the
// caller commits the way that knows the positions first.
import { defineKey } from './canonical.js';
import type { WrittenEvent } from './types.js';

/** The stored text is pieces[0], base + offsets[0], pieces[1], …: base is the log's last position before the commit. */
export interface ResponseTemplate {
  pieces: string[];
  offsets: number[];
}

/** How far apart the two bases are: far beyond any commit's size, well inside a safe integer. */
const SHIFT = 2 ** 32;
/** a slot's marker inside a string: JSON escapes NUL, so the text holds `"\u0000<n>\u0000"` */
const MARK = '\u0000';
const MARKED = /"\\u0000(\d+)\\u0000"/g;

/** The written events of a plan made from the log's last position `base`, moved to another base. */
export function movedTo(written: readonly WrittenEvent[], from: number, to: number): WrittenEvent[] {
  return written.map((w) => ({ ...w, position: w.position - from + to }));
}

/**
 * The response for events planned after position `base`, and its text as a template (null: the
 * text depends on the positions in a way a template cannot hold). `response` is called with the
 * events moved far away first, then as given, so a caller that keeps what it was last called with
 * keeps the real one.
 */
export function responseTemplate(
  response: (written: WrittenEvent[]) => unknown,
  written: readonly WrittenEvent[],
  base: number,
): { response: unknown; template: ResponseTemplate | null } {
  const far = JSON.stringify(response(movedTo(written, base, base + SHIFT)) ?? null);
  const value = response([...written]);
  const text = JSON.stringify(value ?? null);
  if (text === far) return { response: value, template: { pieces: [text], offsets: [] } };
  // (a response holding a NUL character could forge a marker: no template)
  if (text.includes('\\u0000')) return { response: value, template: null };
  const offsets: number[] = [];
  const marked = markPositions(JSON.parse(text), JSON.parse(far), base, offsets);
  if (marked === undefined) return { response: value, template: null };
  const parts = JSON.stringify(marked).split(MARKED);
  // (the captures at odd indices say which slot each cut is)
  const template = { pieces: parts.filter((_, i) => i % 2 === 0), offsets: parts.filter((_, i) => i % 2 === 1).map((n) => offsets[Number(n)]!) };
  // the template gives back the text it was cut from, or it is not used
  return { response: value, template: fillTemplate(template, base) === text ? template : null };
}

/** The text a template stands for, the commit having landed after position `base`. */
export function fillTemplate(t: ResponseTemplate, base: number): string {
  let out = t.pieces[0]!;
  for (let i = 0; i < t.offsets.length; i++) out += `${base + t.offsets[i]!}${t.pieces[i + 1]!}`;
  return out;
}

/**
 * `near` with every number that is `far`'s less SHIFT replaced by a marker (its offset from `base`
 * appended to `offsets`, in text order); undefined when the two differ in any other way.
 */
function markPositions(near: unknown, far: unknown, base: number, offsets: number[]): unknown {
  if (typeof near === 'number' && typeof far === 'number') {
    if (near === far) return near;
    if (far - near !== SHIFT || !Number.isSafeInteger(near)) return undefined;
    offsets.push(near - base);
    return `${MARK}${offsets.length - 1}${MARK}`;
  }
  if (near === null || typeof near !== 'object' || far === null || typeof far !== 'object') return near === far ? near : undefined;
  if (Array.isArray(near) !== Array.isArray(far)) return undefined;
  if (Array.isArray(near)) {
    const f = far as unknown[];
    if (near.length !== f.length) return undefined;
    const out: unknown[] = [];
    for (let i = 0; i < near.length; i++) {
      const x = markPositions(near[i], f[i], base, offsets);
      if (x === undefined) return undefined;
      out.push(x);
    }
    return out;
  }
  const nk = Object.keys(near);
  const fk = Object.keys(far);
  if (nk.length !== fk.length) return undefined;
  const out: Record<string, unknown> = {};
  for (let i = 0; i < nk.length; i++) {
    const k = nk[i]!;
    if (fk[i] !== k) return undefined;
    const x = markPositions((near as Record<string, unknown>)[k], (far as Record<string, unknown>)[k], base, offsets);
    if (x === undefined) return undefined;
    defineKey(out, k, x);
  }
  return out;
}
