import { eq, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { orgSettings } from '../../db/schema.js';

export type OrgSettingsRow = typeof orgSettings.$inferSelect;

export function createStorageRepo(db: DbOrTx) {
  return {
    async get(orgId: string, tx: DbOrTx = db): Promise<OrgSettingsRow> {
      const [row] = await tx.select().from(orgSettings).where(eq(orgSettings.orgId, orgId));
      return row ?? { orgId, displayName: null, storageAllocationBytes: null, retentionYears: null, usedBytes: 0, documentCount: 0 };
    },

    /** Creates the row if needed and locks it for the rest of the transaction. */
    async lock(orgId: string, tx: DbOrTx): Promise<OrgSettingsRow> {
      const [row] = await tx
        .insert(orgSettings)
        .values({ orgId, usedBytes: 0, documentCount: 0 })
        .onConflictDoUpdate({ target: orgSettings.orgId, set: { usedBytes: sql`${orgSettings.usedBytes}` } })
        .returning();
      return row!;
    },

    async addUsage(orgId: string, bytes: number, documents: number, tx: DbOrTx) {
      await tx
        .update(orgSettings)
        .set({ usedBytes: sql`${orgSettings.usedBytes} + ${bytes}`, documentCount: sql`${orgSettings.documentCount} + ${documents}` })
        .where(eq(orgSettings.orgId, orgId));
    },

    async updateSettings(orgId: string, fields: Partial<Pick<OrgSettingsRow, 'storageAllocationBytes' | 'retentionYears' | 'displayName'>>, tx: DbOrTx) {
      await tx.update(orgSettings).set(fields).where(eq(orgSettings.orgId, orgId));
    },
  };
}

export type StorageRepo = ReturnType<typeof createStorageRepo>;
