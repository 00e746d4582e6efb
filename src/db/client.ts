/**
 * One database handle for the whole app: embedded PGlite when no DATABASE_URL is set,
 * PostgreSQL through postgres.js otherwise. Both are Drizzle PgDatabase instances, so repos
 * never know which one they run on.
 */
import { mkdirSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import type { ExtractTablesWithRelations } from 'drizzle-orm';
import * as schema from './schema.js';

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/** Repos accept either, so a service can run several repo calls in one transaction. */
export type DbOrTx = Db | Tx;

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string;
  /** Folder for PGlite; null means an in-memory database (tests). */
  pgliteDir: string | null;
  poolSize?: number;
  /** false: no named prepared statements (a pooler in transaction mode). Default true. */
  prepare?: boolean;
  /** Sees every statement Drizzle sends, with its parameters (the query-plan test uses it; never log it: parameters hold sealed PHI). */
  onQuery?: (query: string, params: unknown[]) => void;
}

/**
 * Work that code inside a transaction asks to run as the transaction's last statements, after
 * its callback returned and right before COMMIT, so it commits or rolls back with everything
 * else. The audit trail uses it: the per-org chain head is locked only for the final
 * statements, not for the whole transaction, so an org's concurrent writers queue for as
 * short a time as the chain allows.
 */
const beforeCommit = new WeakMap<object, (() => Promise<void>)[]>();
/** Transactions whose callback has returned or thrown: nothing more may be queued on them. */
const ended = new WeakSet<object>();

/**
 * Queues `fn` for the end of `tx`. False when `tx` is not a top-level transaction opened by
 * `db.transaction` here (the database itself, or a savepoint): the caller then runs it now.
 * Throws when `tx` has ended (a statement issued after its callback finished).
 */
export function runBeforeCommit(tx: object, fn: () => Promise<void>): boolean {
  // Running fn "now" on an ended transaction would write outside any transaction.
  assertTransactionOpen(tx);
  const queue = beforeCommit.get(tx);
  if (!queue) return false;
  queue.push(fn);
  return true;
}

/** Throws when `tx` is a transaction whose callback has already ended: a late statement on it would run outside any transaction. */
export function assertTransactionOpen(tx: object): void {
  if (ended.has(tx)) throw new Error('the transaction has already ended');
}

/** `db.transaction` that runs the before-commit queue (in order) once its callback succeeded. */
function withBeforeCommit(db: Db): Db {
  const open = db.transaction.bind(db);
  const transaction: Db['transaction'] = (callback, config) =>
    open(async (tx) => {
      const queue: (() => Promise<void>)[] = [];
      beforeCommit.set(tx, queue);
      let result: Awaited<ReturnType<typeof callback>>;
      try {
        result = await callback(tx);
      } finally {
        // From here on the transaction takes no more work: a straggler (a statement of the
        // callback's still running after it returned or threw) is refused, not queued.
        beforeCommit.delete(tx);
        ended.add(tx);
      }
      for (const fn of queue) await fn();
      return result;
    }, config);
  return Object.assign(db, { transaction });
}

/** The database a loaded configuration names (the app and the CLIs open it alike). */
export function databaseOptionsOf(config: { databaseUrl?: string; pgliteDir: string | null; databasePoolSize: number; databasePreparedStatements: boolean }): DatabaseOptions {
  return config.databaseUrl
    ? { databaseUrl: config.databaseUrl, pgliteDir: null, poolSize: config.databasePoolSize, prepare: config.databasePreparedStatements }
    : { pgliteDir: config.pgliteDir };
}

/** close() may be called by the app and by its owner; the second call is a no-op. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}

const queryLogger = (options: DatabaseOptions) => (options.onQuery ? { logQuery: options.onQuery } : false);

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) {
    const { default: postgres } = await import('postgres');
    const { drizzle } = await import('drizzle-orm/postgres-js');
    const client = postgres(options.databaseUrl, {
      max: options.poolSize ?? 10,
      prepare: options.prepare ?? true,
      onnotice: () => {},
      connect_timeout: 10,
      // Let a dead connection fail fast rather than hang a request forever.
      idle_timeout: 60,
    });
    const db = withBeforeCommit(drizzle(client, { schema, logger: queryLogger(options) }) as unknown as Db);
    return {
      db,
      kind: 'postgres',
      ping: async () => {
        await db.execute(sql`select 1`);
      },
      close: once(() => client.end({ timeout: 5 })),
    };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  if (options.pgliteDir) mkdirSync(options.pgliteDir, { recursive: true });
  const client = options.pgliteDir ? new PGlite(options.pgliteDir) : new PGlite();
  await client.waitReady;
  const db = withBeforeCommit(drizzle(client, { schema, logger: queryLogger(options) }) as unknown as Db);
  return {
    db,
    kind: 'pglite',
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: once(() => client.close()),
  };
}
