/**
 * Key rotation (DESIGN section 5). To rotate, put the new version first in ENCRYPTION_KEYS
 * (`v2:…,v1:…`): new rows use it at once. `rewrap` then re-wraps every older data key under
 * the newest version, in batches that each commit on their own, so it can run beside the
 * service, be killed at any point and be started again (rows already on the newest version
 * are skipped). Data is never re-encrypted: only the small wrapped keys change.
 */
import type { Db } from '../../db/client.js';
import { documentKeyContext, outboxKeyContext, recordKeyContext, threadKeyContext, webhookKeyContext, type KeyRing } from '../../lib/crypto/index.js';
import { ENVELOPE_TABLES, type EnvelopeTable, type KeysRepo } from './keys.repo.js';

const CONTEXT: Record<EnvelopeTable, (orgId: string, id: string) => string> = {
  records: recordKeyContext,
  threads: threadKeyContext,
  documents: documentKeyContext,
  email_outbox: outboxKeyContext,
  webhook_endpoints: webhookKeyContext,
};

export type KeyStatus = Record<EnvelopeTable, Record<string, number>>;

export function createKeysService(deps: { db: Db; repo: KeysRepo; keyRing: KeyRing }) {
  const { db, repo, keyRing } = deps;

  async function status(orgId?: string): Promise<KeyStatus> {
    const out = {} as KeyStatus;
    for (const table of ENVELOPE_TABLES) {
      out[table] = Object.fromEntries([...(await repo.versionCounts(table, orgId))].map(([v, n]) => [`v${v}`, n]));
    }
    return out;
  }

  return {
    status,

    /** Versions still used by stored rows that the configured ring does not hold. */
    async missingVersions(): Promise<number[]> {
      const used = new Set<number>();
      for (const table of ENVELOPE_TABLES) for (const v of (await repo.versionCounts(table)).keys()) used.add(v);
      return [...used].filter((v) => !keyRing.versions.includes(v)).sort((a, b) => a - b);
    },

    /** Re-wraps one batch of one table; returns how many rows moved to the newest version. */
    async rewrapBatch(table: EnvelopeTable, batchSize: number, orgId?: string): Promise<number> {
      return db.transaction(async (tx) => {
        const rows = await repo.lockStale(table, keyRing.newestVersion, batchSize, orgId, tx);
        for (const row of rows) {
          const next = keyRing.rewrap({ salt: row.salt, wrappedKey: row.wrapped_key, keyVersion: row.key_version }, CONTEXT[table](row.org_id, row.id));
          await repo.setEnvelope(table, row.id, next.wrappedKey, next.keyVersion, tx);
        }
        return rows.length;
      });
    },

    /** Rows not yet on the newest version. */
    async remaining(orgId?: string): Promise<number> {
      let n = 0;
      for (const table of ENVELOPE_TABLES) {
        for (const [v, count] of await repo.versionCounts(table, orgId)) if (v !== keyRing.newestVersion) n += count;
      }
      return n;
    },
  };
}

export type KeysService = ReturnType<typeof createKeysService>;
