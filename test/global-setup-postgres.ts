// A throwaway PostgreSQL server for the whole suite (test/helpers/postgres.ts), its URL handed to
// the tests as CLOCKLEDGER_TEST_PG_URL (forked workers and their child processes inherit it).
// Given CLOCKLEDGER_TEST_PG_URL already, the suite uses that server and starts none.
import { startPostgres } from './helpers/postgres.js';

export default async function setup(): Promise<(() => Promise<void>) | void> {
  if (process.env.CLOCKLEDGER_TEST_PG_URL) return;
  const server = await startPostgres();
  process.env.CLOCKLEDGER_TEST_PG_URL = server.url;
  return async () => {
    await server.stop();
    delete process.env.CLOCKLEDGER_TEST_PG_URL;
  };
}
