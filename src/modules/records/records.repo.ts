import { and, eq } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { records } from '../../db/schema.js';
import type { RecordKind } from '../../lib/context.js';

export type RecordRow = typeof records.$inferSelect;

export function createRecordsRepo(db: DbOrTx) {
  return {
    async findByExternalId(orgId: string, kind: RecordKind, externalId: string, tx: DbOrTx = db, forUpdate = false) {
      const query = tx
        .select()
        .from(records)
        .where(and(eq(records.orgId, orgId), eq(records.kind, kind), eq(records.externalId, externalId)));
      const [row] = forUpdate ? await query.for('update') : await query;
      return row;
    },

    async findById(orgId: string, id: string, tx: DbOrTx = db) {
      const [row] = await tx
        .select()
        .from(records)
        .where(and(eq(records.orgId, orgId), eq(records.id, id)));
      return row;
    },

    /** Inserts unless a concurrent upsert won the race; returns false then. */
    async insertIfAbsent(row: RecordRow, tx: DbOrTx = db): Promise<boolean> {
      const inserted = await tx.insert(records).values(row).onConflictDoNothing().returning({ id: records.id });
      return inserted.length === 1;
    },

    async updateFields(
      orgId: string,
      id: string,
      fields: Pick<RecordRow, 'displayName' | 'email' | 'dateOfBirth' | 'phone' | 'updatedAt'>,
      tx: DbOrTx = db,
    ) {
      await tx
        .update(records)
        .set(fields)
        .where(and(eq(records.orgId, orgId), eq(records.id, id)));
    },
  };
}

export type RecordsRepo = ReturnType<typeof createRecordsRepo>;
