/**
 * The audit trail: one append-only, per-org hash-chained table (DESIGN section 7).
 *
 * Invariants:
 * - `record()` is called with the transaction of the change it describes, so the event and
 *   the change commit or roll back together;
 * - events carry ids, actions and outcomes only: never PHI, never tokens. A patron's name is
 *   PHI, so only staff-side actors get a name snapshot.
 */
import type { Db, DbOrTx } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import type { RequestContext } from '../../lib/context.js';
import { newId } from '../../lib/ids.js';
import { decodeCursor, toPage, type Page } from '../../lib/pagination.js';
import { chainHash, findChainBreak, GENESIS_HASH, type ChainBreak } from './audit-chain.js';
import type { AuditEventRow, AuditFilters, AuditRepo } from './audit.repo.js';

export type AuditOutcome = AuditEventRow['outcome'];

export interface AuditInput {
  action: string;
  outcome?: AuditOutcome;
  recordKind?: 'customer' | 'volunteer' | null;
  recordId?: string | null;
  threadId?: string | null;
  messageId?: string | null;
  documentId?: string | null;
  linkId?: string | null;
  /** A short machine reason (an error code), never free text from a request. */
  reason?: string | null;
}

export interface AuditEventView {
  id: string;
  seq: number;
  occurredAt: string;
  actor: { kind: string; id: string | null; name: string | null };
  action: string;
  outcome: AuditOutcome;
  record: { kind: string; id: string } | null;
  threadId: string | null;
  messageId: string | null;
  documentId: string | null;
  linkId: string | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  reason: string | null;
  hash: string;
}

const VERIFY_BATCH = 1000;

export function createAuditService(deps: { db: Db; repo: AuditRepo; clock: Clock }) {
  const { db, repo, clock } = deps;

  async function record(tx: DbOrTx, ctx: RequestContext, input: AuditInput): Promise<void> {
    const orgId = ctx.actor.orgId;
    const head = await repo.lockHead(tx, orgId);
    // Patron names and external recipients' addresses are PHI: only staff-side names are kept.
    const staffSide = ctx.actor.role !== 'patron' && ctx.actor.role !== 'external';
    const fields = {
      id: newId(),
      orgId,
      seq: head.seq + 1,
      prevHash: head.hash,
      occurredAt: clock.now(),
      actorKind: ctx.actor.role,
      actorId: ctx.actor.id,
      actorName: staffSide ? ctx.actor.name : null,
      action: input.action,
      outcome: input.outcome ?? 'success',
      recordKind: input.recordKind ?? null,
      recordId: input.recordId ?? null,
      threadId: input.threadId ?? null,
      messageId: input.messageId ?? null,
      documentId: input.documentId ?? null,
      linkId: input.linkId ?? null,
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      requestId: ctx.requestId,
      reason: input.reason ?? null,
    };
    await repo.append(tx, { ...fields, hash: chainHash(fields) });
  }

  return {
    record,

    /** For events with no change to share a transaction with (denials, integrity failures). */
    async recordStandalone(ctx: RequestContext, input: AuditInput): Promise<void> {
      await db.transaction((tx) => record(tx, ctx, input));
    },

    async list(
      ctx: RequestContext,
      filters: AuditFilters,
      page: { cursor?: string; limit: number; order: 'asc' | 'desc' },
    ): Promise<Page<AuditEventView>> {
      const after = decodeCursor(page.cursor, ['seq'] as const);
      const rows = await repo.list(ctx.actor.orgId, filters, { afterSeq: after?.[0], limit: page.limit, order: page.order });
      return toPage(rows, page.limit, toView, (r) => [r.seq]);
    },

    /** Recomputes the org's whole chain in batches; reports the first break and the head. */
    async verify(orgId: string): Promise<{ valid: boolean; checked: number; firstBreak: ChainBreak | null; head: { seq: number; hash: string } }> {
      let cursor = { seq: 0, hash: GENESIS_HASH };
      let checked = 0;
      for (;;) {
        const batch = await repo.chainBatch(orgId, cursor.seq, VERIFY_BATCH);
        const result = findChainBreak(batch, cursor);
        if (result.break) return { valid: false, checked: checked + (result.head.seq - cursor.seq), firstBreak: result.break, head: result.head };
        checked += batch.length;
        cursor = result.head;
        if (batch.length < VERIFY_BATCH) break;
      }
      const stored = await repo.head(orgId);
      if (stored.seq !== cursor.seq || stored.hash !== cursor.hash) {
        // The head row says more events existed than the table holds: the tail was removed.
        return { valid: false, checked, firstBreak: { seq: cursor.seq + 1, eventId: null, problem: 'sequence_gap' }, head: cursor };
      }
      return { valid: true, checked, firstBreak: null, head: cursor };
    },
  };
}

function toView(r: AuditEventRow): AuditEventView {
  return {
    id: r.id,
    seq: r.seq,
    occurredAt: r.occurredAt.toISOString(),
    actor: { kind: r.actorKind, id: r.actorId, name: r.actorName },
    action: r.action,
    outcome: r.outcome,
    record: r.recordKind && r.recordId ? { kind: r.recordKind, id: r.recordId } : null,
    threadId: r.threadId,
    messageId: r.messageId,
    documentId: r.documentId,
    linkId: r.linkId,
    ip: r.ip,
    userAgent: r.userAgent,
    requestId: r.requestId,
    reason: r.reason,
    hash: r.hash,
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
