import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { rowsOf } from '../../db/util.js';

/** Every table whose rows carry an envelope (salt, wrapped_key, key_version). */
export const ENVELOPE_TABLES = ['records', 'threads', 'documents', 'email_outbox', 'webhook_endpoints'] as const;
export type EnvelopeTable = (typeof ENVELOPE_TABLES)[number];

export interface EnvelopeRow {
  id: string;
  org_id: string;
  salt: Buffer;
  wrapped_key: Buffer;
  key_version: number;
}

const orgFilter = (orgId: string | undefined) => (orgId ? sql` and org_id = ${orgId}` : sql``);
/** Shredded documents have no key left to re-wrap. */
const live = sql` and length(wrapped_key) > 0`;

const asBuffer = (v: unknown): Buffer =>
  Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v.replace(/^\\x/, ''), 'hex') : Buffer.from(v as Uint8Array);

export function createKeysRepo(db: DbOrTx) {
  return {
    /** Rows per key version in one table. */
    async versionCounts(table: EnvelopeTable, orgId?: string, tx: DbOrTx = db): Promise<Map<number, number>> {
      const rows = rowsOf<{ key_version: number; n: number }>(
        await tx.execute(sql`select key_version, count(*)::int as n from ${sql.identifier(table)} where true${live}${orgFilter(orgId)} group by key_version`),
      );
      return new Map(rows.map((r) => [Number(r.key_version), Number(r.n)]));
    },

    /** A batch of rows not on `newest`, locked for this transaction (others skip them). */
    async lockStale(table: EnvelopeTable, newest: number, limit: number, orgId: string | undefined, tx: DbOrTx): Promise<EnvelopeRow[]> {
      const rows = rowsOf<EnvelopeRow>(
        await tx.execute(
          sql`select id, org_id, salt, wrapped_key, key_version from ${sql.identifier(table)}
              where key_version <> ${newest}${live}${orgFilter(orgId)} order by id limit ${limit} for update skip locked`,
        ),
      );
      return rows.map((r) => ({ ...r, salt: asBuffer(r.salt), wrapped_key: asBuffer(r.wrapped_key), key_version: Number(r.key_version) }));
    },

    async setEnvelope(table: EnvelopeTable, id: string, wrappedKey: Buffer, keyVersion: number, tx: DbOrTx) {
      await tx.execute(sql`update ${sql.identifier(table)} set wrapped_key = ${wrappedKey}, key_version = ${keyVersion} where id = ${id}`);
    },
  };
}

export type KeysRepo = ReturnType<typeof createKeysRepo>;
