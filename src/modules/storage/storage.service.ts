/**
 * Storage allocation and per-org settings. Usage counts every stored byte (sealed chunks,
 * tags included) and changes only inside the transaction that stores or shreds a document,
 * under the org's settings-row lock, so concurrent uploads cannot overshoot the allocation.
 */
import type { Db, DbOrTx } from '../../db/client.js';
import type { RequestContext } from '../../lib/context.js';
import { AppError } from '../../lib/errors.js';
import { isStorableText } from '../../lib/text.js';
import type { AuditService } from '../audit/audit.service.js';
import type { OrgSettingsRow, StorageRepo } from './storage.repo.js';

export interface StorageDefaults {
  storageAllocationBytes: number;
  retentionYears: number;
}

export interface SettingsView {
  displayName: string | null;
  storageAllocationBytes: number;
  retentionYears: number;
}

export function createStorageService(deps: { db: Db; repo: StorageRepo; audit: AuditService; defaults: StorageDefaults }) {
  const { db, repo, audit, defaults } = deps;
  const allocationOf = (row: OrgSettingsRow) => row.storageAllocationBytes ?? defaults.storageAllocationBytes;
  const retentionOf = (row: OrgSettingsRow) => row.retentionYears ?? defaults.retentionYears;
  const quotaError = () =>
    new AppError('storage_quota_exceeded', "This upload would exceed the organization's storage allocation; delete documents or ask an admin to raise it");

  return {
    async usage(ctx: RequestContext) {
      const row = await repo.get(ctx.actor.orgId);
      const allocation = allocationOf(row);
      return {
        allocationBytes: allocation,
        usedBytes: row.usedBytes,
        availableBytes: Math.max(0, allocation - row.usedBytes),
        documentCount: row.documentCount,
      };
    },

    async settings(ctx: RequestContext): Promise<SettingsView> {
      const row = await repo.get(ctx.actor.orgId);
      return { displayName: row.displayName, storageAllocationBytes: allocationOf(row), retentionYears: retentionOf(row) };
    },

    async updateSettings(ctx: RequestContext, patch: Partial<SettingsView>): Promise<SettingsView> {
      // The name is stored as text and quoted in the audit event's reason (whose hash must
      // survive the round trip): NUL would fail the write, an unpaired surrogate the chain.
      if (typeof patch.displayName === 'string' && !isStorableText(patch.displayName)) {
        throw new AppError('validation_failed', 'body/displayName must not contain control characters or unpaired surrogates');
      }
      return db.transaction(async (tx) => {
        const row = await repo.lock(ctx.actor.orgId, tx);
        await repo.updateSettings(ctx.actor.orgId, patch, tx);
        const reason = Object.entries(patch)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(',');
        await audit.record(tx, ctx, { action: 'settings.updated', reason });
        const next = { ...row, ...patch };
        return { displayName: next.displayName, storageAllocationBytes: allocationOf(next), retentionYears: retentionOf(next) };
      });
    },

    /** Refuses early, before reading an upload, when the allocation is already used up. */
    async assertRoom(orgId: string): Promise<void> {
      const row = await repo.get(orgId);
      if (row.usedBytes >= allocationOf(row)) throw quotaError();
    },

    /** In the storing transaction: counts `bytes` against the allocation, or throws. */
    async reserve(tx: DbOrTx, orgId: string, bytes: number): Promise<void> {
      const row = await repo.lock(orgId, tx);
      if (row.usedBytes + bytes > allocationOf(row)) throw quotaError();
      await repo.addUsage(orgId, bytes, 1, tx);
    },

    async release(tx: DbOrTx, orgId: string, bytes: number): Promise<void> {
      await repo.lock(orgId, tx);
      await repo.addUsage(orgId, -bytes, -1, tx);
    },

    /** The name mails use for the organization (not PHI). */
    async orgDisplayName(orgId: string, tx?: DbOrTx): Promise<string | null> {
      return (await repo.get(orgId, tx)).displayName;
    },

    /** When a document created now may first be deleted, under the org's retention period. */
    async retentionUntil(orgId: string, createdAt: Date, tx?: DbOrTx): Promise<Date> {
      const years = retentionOf(await repo.get(orgId, tx));
      const until = new Date(createdAt);
      until.setUTCFullYear(until.getUTCFullYear() + years);
      return until;
    },
  };
}

export type StorageService = ReturnType<typeof createStorageService>;
