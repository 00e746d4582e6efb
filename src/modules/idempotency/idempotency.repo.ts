import { and, eq } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { idempotencyKeys } from '../../db/schema.js';

export type IdempotencyRow = typeof idempotencyKeys.$inferSelect;

export function createIdempotencyRepo(db: DbOrTx) {
  return {
    async find(orgId: string, actorId: string, scope: string, key: string, tx: DbOrTx = db) {
      const [row] = await tx
        .select()
        .from(idempotencyKeys)
        .where(
          and(
            eq(idempotencyKeys.orgId, orgId),
            eq(idempotencyKeys.actorId, actorId),
            eq(idempotencyKeys.scope, scope),
            eq(idempotencyKeys.key, key),
          ),
        );
      return row;
    },

    /** Fails with a unique violation when a concurrent request claimed the key first. */
    async insert(row: IdempotencyRow, tx: DbOrTx = db) {
      await tx.insert(idempotencyKeys).values(row);
    },
  };
}

export type IdempotencyRepo = ReturnType<typeof createIdempotencyRepo>;
