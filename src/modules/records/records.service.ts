/**
 * Customer and volunteer records: the PHI the checks and notices rely on. Every PHI field is
 * sealed with the record's own data key, its AAD naming org, record and field.
 */
import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { isStaffSide, type RecordKind, type RequestContext } from '../../lib/context.js';
import { recordFieldAad, recordKeyContext, withIntegrityTarget, type KeyRing } from '../../lib/crypto/index.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import type { AuditService } from '../audit/audit.service.js';
import type { RecordRow, RecordsRepo } from './records.repo.js';

export interface RecordInput {
  displayName: string;
  email?: string | null;
  dateOfBirth?: string | null;
  phone?: string | null;
}

export interface RecordView {
  kind: RecordKind;
  id: string;
  displayName: string;
  email: string | null;
  dateOfBirth: string | null;
  phone: string | null;
  createdAt: string;
  updatedAt: string;
}

type PhiField = 'displayName' | 'email' | 'dateOfBirth' | 'phone';

export function createRecordsService(deps: { db: Db; repo: RecordsRepo; keyRing: KeyRing; audit: AuditService; clock: Clock }) {
  const { db, repo, keyRing, audit, clock } = deps;

  function sealFields(row: Pick<RecordRow, 'orgId' | 'id' | 'salt' | 'wrappedKey' | 'keyVersion'>, input: RecordInput) {
    const key = keyRing.openEnvelope(row, recordKeyContext(row.orgId, row.id));
    const aad = (field: PhiField) => recordFieldAad(row.orgId, row.id, field);
    return {
      displayName: key.sealText(input.displayName, aad('displayName')),
      email: key.sealOptional(input.email, aad('email')),
      dateOfBirth: key.sealOptional(input.dateOfBirth, aad('dateOfBirth')),
      phone: key.sealOptional(input.phone, aad('phone')),
    };
  }

  /** Decrypts a record's PHI; an integrity failure is tagged with the record's ids. */
  function toView(row: RecordRow): RecordView {
    return withIntegrityTarget({ recordKind: row.kind, recordId: row.externalId }, () => {
      const key = keyRing.openEnvelope(row, recordKeyContext(row.orgId, row.id));
      const aad = (field: PhiField) => recordFieldAad(row.orgId, row.id, field);
      return {
        kind: row.kind,
        id: row.externalId,
        displayName: key.openText(row.displayName, aad('displayName')),
        email: key.openOptional(row.email, aad('email')),
        dateOfBirth: key.openOptional(row.dateOfBirth, aad('dateOfBirth')),
        phone: key.openOptional(row.phone, aad('phone')),
        createdAt: row.createdAt.toISOString(),
        updatedAt: row.updatedAt.toISOString(),
      };
    });
  }

  function assertPlausibleBirthDate(dateOfBirth: string | null | undefined) {
    if (!dateOfBirth) return;
    const date = new Date(`${dateOfBirth}T00:00:00Z`);
    if (Number.isNaN(date.getTime()) || date > clock.now() || date.getUTCFullYear() < 1850) {
      throw new AppError('validation_failed', 'body/dateOfBirth must be a real date, not in the future');
    }
  }

  return {
    /** Decrypts a record row the caller already reached (for checks and notices). */
    decrypt: toView,

    /** PUT semantics: the body replaces every field. Returns whether the record was created. */
    async upsert(ctx: RequestContext, kind: RecordKind, externalId: string, input: RecordInput) {
      assertPlausibleBirthDate(input.dateOfBirth);
      const orgId = ctx.actor.orgId;
      // Two attempts: if a concurrent upsert creates the record between our read and insert,
      // the second pass updates it.
      for (let attempt = 0; attempt < 2; attempt++) {
        const result = await db.transaction(async (tx) => {
          const now = clock.now();
          const existing = await repo.findByExternalId(orgId, kind, externalId, tx, true);
          let row: RecordRow;
          if (existing) {
            const fields = { ...sealFields(existing, input), updatedAt: now };
            await repo.updateFields(orgId, existing.id, fields, tx);
            row = { ...existing, ...fields };
          } else {
            const id = newId();
            const { envelope } = keyRing.createEnvelope(recordKeyContext(orgId, id));
            const base = { id, orgId, kind, externalId, ...envelope };
            row = { ...base, ...sealFields(base, input), createdAt: now, updatedAt: now };
            if (!(await repo.insertIfAbsent(row, tx))) return null;
          }
          await audit.record(tx, ctx, { action: 'record.upserted', recordKind: kind, recordId: externalId });
          return { created: !existing, record: toView(row) };
        });
        if (result) return result;
      }
      throw new AppError('service_unavailable', 'The record is being changed concurrently; retry');
    },

    async get(ctx: RequestContext, kind: RecordKind, externalId: string): Promise<RecordView> {
      return db.transaction(async (tx) => {
        const row = await repo.findByExternalId(ctx.actor.orgId, kind, externalId, tx);
        if (!row) throw new AppError('not_found', `No ${kind} with that id`);
        const view = toView(row);
        await audit.record(tx, ctx, { action: 'record.viewed', recordKind: kind, recordId: externalId });
        return view;
      });
    },

    /** The internal row for a record the caller may see; used by the thread lists. */
    async resolve(ctx: RequestContext, kind: RecordKind, externalId: string, deniedAction: string) {
      const { actor } = ctx;
      if (!isStaffSide(actor) && !(actor.rec?.kind === kind && actor.rec.id === externalId)) {
        // A patron asking for another record learns nothing about whether it exists.
        throw new AppError('not_found', `No ${kind} with that id`, { action: deniedAction, recordKind: kind, recordId: externalId });
      }
      const row = await repo.findByExternalId(actor.orgId, kind, externalId);
      if (!row) throw new AppError('not_found', `No ${kind} with that id`);
      return row;
    },
  };
}

export type RecordsService = ReturnType<typeof createRecordsService>;
