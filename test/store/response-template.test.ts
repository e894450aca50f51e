// A stored response cut where it names the commit's positions, so the server can finish it once
// it knows where the commit lands; a response that names them any other way is not cut at all.
import { describe, expect, it } from 'vitest';
import { fillTemplate, responseTemplate } from '../../store/response-template.js';
import type { WrittenEvent } from '../../store/types.js';

const written = (...positions: number[]): WrittenEvent[] => positions.map((position, i) => ({ position, streamId: 'vm-1', version: i + 1, type: 'T' }));

describe('responseTemplate', () => {
  it('a response that names no position is its own text', () => {
    const t = responseTemplate(() => ({ ok: true, n: 2 }), written(11, 12), 10);
    expect(t).toEqual({ response: { ok: true, n: 2 }, template: { pieces: ['{"ok":true,"n":2}'], offsets: [] } });
  });

  it('positions anywhere in the JSON, and a position plus a constant, become offsets from the base', () => {
    const respond = (w: WrittenEvent[]) => ({ b: [w[1]!.position, { p: w[0]!.position }], 7: w[0]!.position + 5, before: 3, s: 'x' });
    const t = responseTemplate(respond, written(11, 12), 10);
    // integer-like keys first, as JSON.stringify writes them
    expect(t.template).toEqual({ pieces: ['{"7":', ',"b":[', ',{"p":', '}],"before":3,"s":"x"}'], offsets: [6, 2, 1] });
    // landed after 100 instead of 10: the text the response has there
    expect(fillTemplate(t.template!, 100)).toBe(JSON.stringify(respond(written(101, 102))));
  });

  it('is called at the far base first, then with the events as given (a caller keeping its last call keeps the real one)', () => {
    const calls: number[] = [];
    responseTemplate((w) => calls.push(w[0]!.position), written(11), 10);
    expect(calls).toEqual([11 + 2 ** 32, 11]);
  });

  it('no template when a position is inside a string, derived otherwise, or the shape changes', () => {
    expect(responseTemplate((w) => `at ${w[0]!.position}`, written(11), 10).template).toBeNull();
    expect(responseTemplate((w) => ({ twice: 2 * w[0]!.position }), written(11), 10).template).toBeNull();
    expect(responseTemplate((w) => (w[0]!.position > 1000 ? { far: true } : { near: true }), written(11), 10).template).toBeNull();
    expect(responseTemplate((w) => (w[0]!.position > 1000 ? [1, 2] : [1]), written(11), 10).template).toBeNull();
  });

  it('no template for a response holding a NUL character, which could forge a cut', () => {
    const t = responseTemplate((w) => ({ p: w[0]!.position, s: '\u00000\u0000' }), written(11), 10);
    expect(t).toEqual({ response: { p: 11, s: '\u00000\u0000' }, template: null });
  });

  it('a "__proto__" key is kept as data', () => {
    const respond = (w: WrittenEvent[]) => JSON.parse(`{"__proto__":{"p":${w[0]!.position}}}`);
    const t = responseTemplate(respond, written(11), 10);
    expect(fillTemplate(t.template!, 20)).toBe('{"__proto__":{"p":21}}');
  });
});
