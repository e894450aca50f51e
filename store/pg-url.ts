// PostgreSQL ledger URLs: postgres:// and postgresql:// URLs name a database; ?schema= names the
// schema the ledger's tables live in (default clockledger). Nothing here loads the driver, so code
// that only needs to tell a URL from a file path stays light.
import { StoreError } from './errors.js';

export interface PgTarget {
  /** the URL without ?schema=, as the driver takes it */
  connectionString: string;
  schema: string;
  /** the URL without its password, for messages and EventStore.path */
  display: string;
}

const DEFAULT_SCHEMA = 'clockledger';

export function isPostgresUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

/** URLs already parsed (a writer names its ledger at every request: parsing it each time cost ~65 µs) */
const parsed = new Map<string, PgTarget>();

export function parsePgUrl(url: string): PgTarget {
  const known = parsed.get(url);
  if (known) return { ...known };
  const t = parse(url);
  if (parsed.size >= 64) parsed.delete(parsed.keys().next().value!);
  parsed.set(url, t);
  return { ...t };
}

function parse(url: string): PgTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StoreError('invalid_request', 'not a valid postgres:// URL');
  }
  if (!isPostgresUrl(url)) throw new StoreError('invalid_request', `not a postgres:// or postgresql:// URL: ${u.protocol}`);
  const schema = u.searchParams.get('schema') ?? DEFAULT_SCHEMA;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new StoreError(
      'invalid_request',
      `schema name ${JSON.stringify(schema)} must be lower-case letters, digits and _ (at most 63), not starting with a digit`,
    );
  }
  u.searchParams.delete('schema');
  const connectionString = u.toString();
  const shown = new URL(connectionString);
  if (shown.password) shown.password = '';
  shown.searchParams.set('schema', schema);
  return { connectionString, schema, display: shown.toString() };
}
