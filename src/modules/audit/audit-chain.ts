/**
 * The per-organization hash chain. Each event's hash covers the previous event's hash and
 * every stored field of the event, so editing, deleting or reordering a row breaks the chain
 * at that row. Pure functions: used when writing and when verifying.
 */
import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

export interface ChainedFields {
  id: string;
  orgId: string;
  seq: number;
  prevHash: string;
  occurredAt: Date;
  actorKind: string;
  actorId: string | null;
  actorName: string | null;
  action: string;
  outcome: string;
  recordKind: string | null;
  recordId: string | null;
  threadId: string | null;
  messageId: string | null;
  documentId: string | null;
  linkId: string | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  reason: string | null;
}

/**
 * The canonical form is the JSON array [prevHash, orgId, seq, id, occurredAt, actorKind, …]
 * (fixed order: unambiguous, and independent of key order). It is assembled from pieces so
 * that the database can do the linking and the time stamp under the head lock:
 * `linkCanonical(prevHash, orgId, seq, id, occurredAtIso, tail)`, where `canonicalTail` is
 * the array's JSON from `actorKind` on, without its opening bracket. JSON.stringify of an
 * array is its elements' JSON joined by commas, so this is byte for byte
 * JSON.stringify([prevHash, orgId, seq, id, occurredAt, …]) (test/modules/audit proves it).
 * `prevHash` is 64 hex digits and `occurredAtIso` an ISO-8601 UTC time: neither needs escaping.
 */
export function canonicalTail(e: Omit<ChainedFields, 'prevHash' | 'seq' | 'orgId' | 'id' | 'occurredAt'>): string {
  return JSON.stringify([
    e.actorKind,
    e.actorId,
    e.actorName,
    e.action,
    e.outcome,
    e.recordKind,
    e.recordId,
    e.threadId,
    e.messageId,
    e.documentId,
    e.linkId,
    e.ip,
    e.userAgent,
    e.requestId,
    e.reason,
  ]).slice(1);
}

/** The canonical text of an event. The SQL of `appendLinked` (audit.repo.ts) builds the same string. */
export function linkCanonical(prevHash: string, orgId: string, seq: number, id: string, occurredAtIso: string, tail: string): string {
  return `["${prevHash}",${JSON.stringify(orgId)},${seq},${JSON.stringify(id)},"${occurredAtIso}",${tail}`;
}

/** SHA-256 of the canonical form, hex. */
export function chainHash(e: ChainedFields): string {
  return createHash('sha256').update(linkCanonical(e.prevHash, e.orgId, e.seq, e.id, e.occurredAt.toISOString(), canonicalTail(e))).digest('hex');
}

export type ChainBreak = { seq: number; eventId: string | null; problem: 'hash_mismatch' | 'prev_hash_mismatch' | 'sequence_gap' };

/**
 * Walks events in seq order and returns the first break, if any. `start` is the expected
 * (seq - 1, hash) before the first event: the genesis for a full verification.
 */
export function findChainBreak(
  events: Iterable<ChainedFields & { hash: string }>,
  start: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH },
): { break: ChainBreak | null; head: { seq: number; hash: string } } {
  let prev = start;
  for (const e of events) {
    if (e.seq !== prev.seq + 1) return { break: { seq: prev.seq + 1, eventId: null, problem: 'sequence_gap' }, head: prev };
    if (e.prevHash !== prev.hash) return { break: { seq: e.seq, eventId: e.id, problem: 'prev_hash_mismatch' }, head: prev };
    if (chainHash(e) !== e.hash) return { break: { seq: e.seq, eventId: e.id, problem: 'hash_mismatch' }, head: prev };
    prev = { seq: e.seq, hash: e.hash };
  }
  return { break: null, head: prev };
}
