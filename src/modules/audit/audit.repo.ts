import { and, asc, desc, eq, gt, gte, lt, lte, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { auditChainHeads, auditEvents } from '../../db/schema.js';
import { canonicalTail, GENESIS_HASH } from './audit-chain.js';
import { rowsOf } from '../../db/util.js';

export type AuditEventRow = typeof auditEvents.$inferSelect;

export interface AuditFilters {
  recordId?: string;
  threadId?: string;
  actorId?: string;
  action?: string;
  outcome?: AuditEventRow['outcome'];
  from?: Date;
  to?: Date;
}

export function createAuditRepo(db: DbOrTx) {
  return {
    /**
     * Links one event to its org's chain and writes it, in one statement: the head row is
     * locked (FOR UPDATE; concurrent writers of the org queue here, and a writer that waited
     * reads the head its predecessor committed); under that lock the event is stamped
     * (`notBefore`, or the previous event's time if that is later, so times never step back
     * along a chain, whatever the writers' clocks or lock waits), takes seq + 1 and the head's
     * hash as prev_hash, gets SHA-256 of the canonical form as its hash (`linkCanonical` in
     * audit-chain.ts builds the same text), and the head moves to it. One round trip, so the
     * lock is held for this statement and the COMMIT only.
     * Returns false, writing nothing, when the org has no head row yet (see ensureHead).
     */
    async appendLinked(tx: DbOrTx, e: Omit<AuditEventRow, 'seq' | 'prevHash' | 'hash' | 'occurredAt'>, notBefore: Date): Promise<boolean> {
      const moved = rowsOf<{ seq: number }>(
        await tx.execute(sql`
          with head as (
            select seq, hash from audit_chain_heads where org_id = ${e.orgId} for update
          ), stamped as (
            select seq, hash, greatest(${notBefore.toISOString()}::timestamptz,
              (select occurred_at from audit_events where org_id = ${e.orgId} and seq = head.seq)) as occurred_at
            from head
          ), linked as (
            select seq + 1 as seq, hash as prev_hash, occurred_at,
              encode(sha256(convert_to(
                '["' || hash || '",' || ${JSON.stringify(e.orgId)}::text || ',' || (seq + 1)::text || ',' || ${JSON.stringify(e.id)}::text
                  || ',"' || to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '",' || ${canonicalTail(e)}::text,
                'UTF8')), 'hex') as hash
            from stamped
          ), inserted as (
            insert into audit_events (id, org_id, seq, prev_hash, hash, occurred_at, actor_kind, actor_id, actor_name, action, outcome,
              record_kind, record_id, thread_id, message_id, document_id, link_id, ip, user_agent, request_id, reason)
            select ${e.id}::uuid, ${e.orgId}::text, linked.seq, linked.prev_hash, linked.hash, linked.occurred_at,
              ${e.actorKind}::text, ${e.actorId}::text, ${e.actorName}::text, ${e.action}::text, ${e.outcome}::text,
              ${e.recordKind}::text, ${e.recordId}::text, ${e.threadId}::uuid, ${e.messageId}::uuid, ${e.documentId}::uuid, ${e.linkId}::uuid,
              ${e.ip}::text, ${e.userAgent}::text, ${e.requestId}::text, ${e.reason}::text
            from linked
            returning seq, hash
          )
          update audit_chain_heads set seq = inserted.seq, hash = inserted.hash
          from inserted where audit_chain_heads.org_id = ${e.orgId}
          returning audit_chain_heads.seq`),
      );
      return moved.length === 1;
    },

    /** Creates the org's head row at the genesis if it has none (its first event ever). */
    async ensureHead(tx: DbOrTx, orgId: string): Promise<void> {
      await tx.insert(auditChainHeads).values({ orgId, seq: 0, hash: GENESIS_HASH }).onConflictDoNothing();
    },

    /** Rows written as they are, outside the chain (BENCH_AUDIT_CHAIN=off only). */
    async appendUnchained(tx: DbOrTx, rows: AuditEventRow[]): Promise<void> {
      if (rows.length > 0) await tx.insert(auditEvents).values(rows);
    },

    async list(orgId: string, filters: AuditFilters, page: { afterSeq?: number; limit: number; order: 'asc' | 'desc' }) {
      const conditions: (SQL | undefined)[] = [eq(auditEvents.orgId, orgId), ...filterConditions(filters)];
      if (page.afterSeq !== undefined) {
        conditions.push(page.order === 'asc' ? gt(auditEvents.seq, page.afterSeq) : lt(auditEvents.seq, page.afterSeq));
      }
      return db
        .select()
        .from(auditEvents)
        .where(and(...conditions))
        .orderBy(page.order === 'asc' ? asc(auditEvents.seq) : desc(auditEvents.seq))
        .limit(page.limit + 1);
    },

    /** Events matching the filters after `afterSeq`, in chain order (for streaming exports). */
    async exportBatch(orgId: string, filters: AuditFilters, afterSeq: number, limit: number) {
      return db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.orgId, orgId), gt(auditEvents.seq, afterSeq), ...filterConditions(filters)))
        .orderBy(asc(auditEvents.seq))
        .limit(limit);
    },

    /** The event at a position of the chain. */
    async atSeq(orgId: string, seq: number) {
      const [row] = await db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.orgId, orgId), eq(auditEvents.seq, seq)));
      return row;
    },

    /** The first event at or after `from` (where a ranged verification starts). */
    async firstFrom(orgId: string, from: Date) {
      const [row] = await db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.orgId, orgId), gte(auditEvents.occurredAt, from)))
        .orderBy(asc(auditEvents.seq))
        .limit(1);
      return row;
    },

    /** Organizations with a chain (for the checkpoint schedule and the CLI). */
    async orgs() {
      return db.select({ orgId: auditChainHeads.orgId, seq: auditChainHeads.seq, hash: auditChainHeads.hash }).from(auditChainHeads);
    },

    /** A batch of the chain in seq order, for verification. */
    async chainBatch(orgId: string, afterSeq: number, limit: number) {
      return db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.orgId, orgId), gt(auditEvents.seq, afterSeq)))
        .orderBy(asc(auditEvents.seq))
        .limit(limit);
    },

    async head(orgId: string) {
      const [row] = await db.select().from(auditChainHeads).where(eq(auditChainHeads.orgId, orgId));
      return row ?? { orgId, seq: 0, hash: GENESIS_HASH };
    },
  };
}

function filterConditions(f: AuditFilters): (SQL | undefined)[] {
  return [
    f.recordId !== undefined ? eq(auditEvents.recordId, f.recordId) : undefined,
    f.threadId !== undefined ? eq(auditEvents.threadId, f.threadId) : undefined,
    f.actorId !== undefined ? eq(auditEvents.actorId, f.actorId) : undefined,
    f.action !== undefined ? eq(auditEvents.action, f.action) : undefined,
    f.outcome !== undefined ? eq(auditEvents.outcome, f.outcome) : undefined,
    f.from !== undefined ? gte(auditEvents.occurredAt, f.from) : undefined,
    f.to !== undefined ? lte(auditEvents.occurredAt, f.to) : undefined,
  ];
}

export type AuditRepo = ReturnType<typeof createAuditRepo>;
