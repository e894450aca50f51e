// The answer of the events handler (handlers/use-cases/events.ts), for people.
import type { ResponseOf } from '../../responses.js';
import { eventsTable } from '../format.js';

/** The events as a table, then how many of how many, and how to see the others (--from, --last). */
export function renderEvents(r: ResponseOf<'events'>): string {
  const evs = r.events ?? [];
  const total = typeof r.total === 'number' ? r.total : evs.length;
  const n = (k: number) => `${k} event${k === 1 ? '' : 's'}`;
  const first = evs[0]?.position;
  const last = evs.at(-1)?.position;
  if (first === undefined || last === undefined || evs.length >= total) return `${eventsTable(evs)}\n${n(evs.length)}`;
  const hints: string[] = [];
  if (r.before > 0) hints.push(`${r.before} before them`);
  if (r.after > 0) hints.push(`${r.after} after them: --from ${last + 1} for the next, --last ${Math.min(r.after, 1000)} for the last ones`);
  return `${eventsTable(evs)}\n${evs.length} of ${n(total)}, positions ${first} to ${last}${hints.length ? ` (${hints.join('; ')})` : ''}`;
}
