import { mkdirSync } from 'node:fs';
import pg from 'pg';
import { fromPglite, type Db } from 'pg-boss';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import * as sql from '../sql/state.ts';

/**
 * The state database: the queue (pg-boss), the episodes, the remediation log and circuits.
 * A shared Postgres (`state.url`) lets several replicas of housekeeper cooperate. Without
 * one, an embedded PGlite database on local disk (`state.path`) keeps state across restarts
 * for a single replica; it never lives inside a database being repaired.
 */
export interface StateDb {
  readonly kind: 'postgres' | 'embedded';
  query<R extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
  /** Runs fn in one transaction: statements see each other and commit together. */
  transaction<T>(fn: (query: Query) => Promise<T>): Promise<T>;
  /** What pg-boss is given: a connection string (its own pool) or an adapter. */
  readonly boss: { connectionString: string } | { db: Db };
  close(): Promise<void>;
}

export type Query = <R extends Record<string, unknown>>(text: string, values?: unknown[]) => Promise<R[]>;

export async function openState(config: Config, log: Logger): Promise<StateDb> {
  const db = config.state.url !== undefined ? openPostgres(config.state.url, log) : await openEmbedded(config.state.path);
  await migrate(db);
  return db;
}

function openPostgres(url: string, log: Logger): StateDb {
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5_000, application_name: 'housekeeper-state' });
  pool.on('error', (err) => log.warn({ err }, 'state database connection error'));
  return {
    kind: 'postgres',
    async query(text, values) {
      return (await pool.query(text, values)).rows;
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(async (text, values) => (await client.query(text, values)).rows);
        await client.query('COMMIT');
        client.release();
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        client.release(err as Error);
        throw err;
      }
    },
    boss: { connectionString: url },
    close: () => pool.end(),
  };
}

async function openEmbedded(path: string): Promise<StateDb> {
  mkdirSync(path, { recursive: true });
  const { PGlite } = await import('@electric-sql/pglite');
  const pgl = await PGlite.create(path);
  // PGlite runs one statement at a time; our callers are few and short, and pg-boss shares it.
  return {
    kind: 'embedded',
    async query<R extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]> {
      if (values === undefined || values.length === 0) {
        const results = await pgl.exec(text);
        return (results[results.length - 1]?.rows ?? []) as R[];
      }
      return (await pgl.query<R>(text, values)).rows;
    },
    async transaction(fn) {
      return pgl.transaction(async (tx) => fn(async <R extends Record<string, unknown>>(text: string, values?: unknown[]) => (await tx.query<R>(text, values)).rows));
    },
    boss: { db: fromPglite(pgl) },
    close: () => pgl.close(),
  };
}

async function migrate(db: StateDb): Promise<void> {
  if (db.kind === 'embedded') {
    await db.query(sql.SETUP);
    return;
  }
  await db.query(`BEGIN; ${sql.SETUP_LOCK}; ${sql.SETUP}; COMMIT;`);
}
