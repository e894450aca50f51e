// `clockledger state <id>`: which kind of id it is (a VM, then a host, then a migration, from the
// streams in the log) and the stateAt request for it.
import { hostStreamId, migrationStreamId, vmStreamId } from '../../machines/stream-ids.js';
import type { CliValues } from './spec.js';
import { CliRefusal, UsageError } from './io.js';
import { findHandler } from './registry.js';

const FIELD = { vm: 'vmId', host: 'hostId', migration: 'migrationId', stream: 'streamId' } as const;

export async function stateRequest(v: CliValues, db: string): Promise<Record<string, unknown>> {
  const { id, kind: given, position, version, time } = v as { id: string; kind?: keyof typeof FIELD; position?: number; version?: number; time?: string };
  if ([position, version, time].filter((x) => x !== undefined).length > 1)
    throw new UsageError('invalid_request', 'give at most one of --at-position, --at-version, --at-time');
  const kind = given ?? (await guessKind(id, db));
  if (!kind) throw new CliRefusal('not_found', `no VM, host or migration '${id}' in ${db}`, { id });
  return { [FIELD[kind]]: id, position, version, time };
}

/** Which kind of id this is, from the streams in the log: a VM, then a host, then a migration. */
async function guessKind(id: string, db: string): Promise<'vm' | 'host' | 'migration' | undefined> {
  const events = await findHandler('events');
  if (!events) return undefined;
  for (const [kind, streamId] of [
    ['vm', vmStreamId(id)],
    ['host', hostStreamId(id)],
    ['migration', migrationStreamId(id)],
  ] as const) {
    const r = (await events({ streamId, limit: 1 }, { db })) as { ok: boolean; events?: unknown[] };
    if (r.ok && r.events && r.events.length > 0) return kind;
  }
  return undefined;
}
