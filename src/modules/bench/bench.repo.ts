/**
 * The baseline for `npm run bench`: the cheapest write the service could do per message, two
 * INSERTs of the sizes a message and its audit event have, through the same pool, driver and
 * Drizzle query builder. The table exists only where BENCH_MODE created it: it is declared
 * here, not in src/db/schema.ts, so no migration ships it.
 */
import { sql } from 'drizzle-orm';
import { pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { Db, DbOrTx } from '../../db/client.js';
import { bytea } from '../../db/schema.js';

const benchBaseline = pgTable('bench_baseline', {
  id: uuid('id').primaryKey(),
  orgId: text('org_id').notNull(),
  kind: text('kind').notNull(),
  payload: bytea('payload').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
});

export function createBenchRepo(db: Db) {
  return {
    async ensureTable() {
      await db.execute(sql`create table if not exists bench_baseline (id uuid primary key, org_id text not null, kind text not null, payload bytea not null, created_at timestamptz not null)`);
    },
    async insert(tx: DbOrTx, row: typeof benchBaseline.$inferInsert) {
      await tx.insert(benchBaseline).values(row);
    },
  };
}
