/**
 * External access (DESIGN section 6): links for people without an account, the identity
 * checks, sessions, lockouts.
 *
 * Invariants:
 * - a token is 256 random bits; only its SHA-256 is stored, in the link row; the emailed link
 *   carries it in the URL fragment of PORTAL_URL, so it never reaches a server log;
 * - unknown, expired, revoked and locked links and failed checks all answer the same 401
 *   (external_access_denied, byte-identical body); the difference lives only in the audit trail;
 * - failures count per link: CONSECUTIVE failures lock it for a while, TOTAL failures lock it
 *   until staff issue a new link; a locked link refuses even correct answers;
 * - a session lasts until the browser closes (no cookie expiry), 30 minutes idle, 12 hours in
 *   all, the link's expiry or its revocation, whichever comes first; only its hash is stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../../db/client.js';
import type { Config } from '../../config.js';
import type { Clock } from '../../lib/clock.js';
import { SERVICE_AUDIT_ORG, type Actor, type RequestContext } from '../../lib/context.js';
import { accessLinkEmailAad, type KeyRing } from '../../lib/crypto/index.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { normalizeDate, normalizePhone, sameValue } from '../../lib/identity-checks.js';
import { decodeCursor, parseInstant, toPage, type Page } from '../../lib/pagination.js';
import type { AuditService } from '../audit/audit.service.js';
import type { MailService } from '../mail/mail.service.js';
import type { RecordsRepo } from '../records/records.repo.js';
import type { RecordsService } from '../records/records.service.js';
import type { StorageService } from '../storage/storage.service.js';
import type { ThreadsRepo, ThreadWithRecord } from '../threads/threads.repo.js';
import type { ThreadsService, ThreadView } from '../threads/threads.service.js';
import type { AccessLinkRow, AccessRepo } from './access.repo.js';

const DAY_MS = 24 * 3600 * 1000;
const EXPIRES_IN = { '3d': 3 * DAY_MS, '7d': 7 * DAY_MS, '30d': 30 * DAY_MS } as const;
const MAX_LINK_MS = 90 * DAY_MS;
export const SESSION_IDLE_MS = 30 * 60 * 1000;
export const SESSION_ABSOLUTE_MS = 12 * 3600 * 1000;

export interface GrantInput {
  email: string;
  expiresIn?: keyof typeof EXPIRES_IN;
  expiresAt?: string;
  verify: { dateOfBirth: boolean; phone: boolean };
}

export interface AccessLinkView {
  id: string;
  threadId: string;
  email: string;
  state: 'active' | 'expired' | 'revoked' | 'locked';
  verify: { dateOfBirth: boolean; phone: boolean };
  expiresAt: string;
  createdBy: { id: string; name: string | null };
  createdAt: string;
  lastUsedAt: string | null;
  failureCount: number;
  lockedUntil: string | null;
  revokedAt: string | null;
}

export interface RequestInfo {
  ip: string | null;
  userAgent: string | null;
  requestId: string;
}

export const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');
const denied = () => new AppError('external_access_denied');

interface Deps {
  db: Db;
  repo: AccessRepo;
  threadsRepo: ThreadsRepo;
  threads: ThreadsService;
  recordsRepo: RecordsRepo;
  records: RecordsService;
  storage: StorageService;
  mail: MailService;
  keyRing: KeyRing;
  audit: AuditService;
  clock: Clock;
  config: Pick<Config, 'portalUrl' | 'externalAccess'>;
}

export function createAccessService(deps: Deps) {
  const { db, repo, threadsRepo, threads, recordsRepo, records, storage, mail, audit, clock, config } = deps;
  const limits = config.externalAccess;

  function stateOf(link: AccessLinkRow, now: Date): AccessLinkView['state'] {
    if (link.revokedAt) return 'revoked';
    if (link.expiresAt <= now) return 'expired';
    if (link.lockedPermanently || (link.lockedUntil && link.lockedUntil > now)) return 'locked';
    return 'active';
  }

  function toView(link: AccessLinkRow, thread: ThreadWithRecord): AccessLinkView {
    // A shredded thread's links keep their metadata but no longer have an address.
    const email =
      link.emailSealed.length === 0
        ? '(deleted)'
        : threads.threadKey(thread).openText(link.emailSealed, accessLinkEmailAad(link.orgId, link.threadId, link.id));
    return {
      id: link.id,
      threadId: link.threadId,
      email,
      state: stateOf(link, clock.now()),
      verify: { dateOfBirth: link.verifyDateOfBirth, phone: link.verifyPhone },
      expiresAt: link.expiresAt.toISOString(),
      createdBy: { id: link.createdById, name: link.createdByName },
      createdAt: link.createdAt.toISOString(),
      lastUsedAt: link.lastUsedAt ? link.lastUsedAt.toISOString() : null,
      failureCount: link.totalFailures,
      lockedUntil: link.lockedPermanently ? null : link.lockedUntil && link.lockedUntil > clock.now() ? link.lockedUntil.toISOString() : null,
      revokedAt: link.revokedAt ? link.revokedAt.toISOString() : null,
    };
  }

  const externalActor = (link: AccessLinkRow, email: string | null): Actor => ({
    role: 'external',
    id: link.id,
    orgId: link.orgId,
    name: email,
    rec: null,
    threadId: link.threadId,
  });

  function expiryOf(input: GrantInput, now: Date): Date {
    if (input.expiresIn && input.expiresAt) throw new AppError('validation_failed', 'Give expiresIn or expiresAt, not both');
    if (input.expiresIn) return new Date(now.getTime() + EXPIRES_IN[input.expiresIn]);
    if (!input.expiresAt) throw new AppError('validation_failed', 'Give expiresIn ("3d", "7d", "30d") or expiresAt');
    // The date-time format admits a leap second (23:59:60), which Date cannot represent.
    const at = parseInstant(input.expiresAt, 'body/expiresAt')!;
    if (at <= now || at.getTime() - now.getTime() > MAX_LINK_MS) {
      throw new AppError('validation_failed', 'body/expiresAt must be in the future and at most 90 days ahead');
    }
    return at;
  }

  function mailText(orgName: string, link: string, expiresAt: Date): string {
    return [
      `${orgName} has sent you a secure message.`,
      '',
      'Open it here:',
      link,
      '',
      `This link works until ${expiresAt.toUTCString()}. You may be asked to confirm your identity.`,
      'If you did not expect this message, you can ignore this email.',
    ].join('\n');
  }

  return {
    async grant(ctx: RequestContext, threadId: string, input: GrantInput): Promise<AccessLinkView> {
      const now = clock.now();
      const expiresAt = expiryOf(input, now);
      return db.transaction(async (tx) => {
        const thread = await threads.loadForActor(tx, ctx, threadId, 'access_link.granted');
        const record = await recordsRepo.findById(ctx.actor.orgId, thread.recordId, tx);
        const phi = record ? records.decrypt(record) : null;
        if (input.verify.dateOfBirth && !phi?.dateOfBirth) {
          throw new AppError('verification_data_missing', 'The record has no date of birth to check against');
        }
        if (input.verify.phone && !normalizePhone(phi?.phone)) {
          throw new AppError('verification_data_missing', 'The record has no phone number to check against');
        }
        const id = newId();
        const token = randomBytes(32).toString('base64url');
        const link: AccessLinkRow = {
          id,
          orgId: ctx.actor.orgId,
          threadId,
          emailSealed: threads.threadKey(thread).sealText(input.email, accessLinkEmailAad(ctx.actor.orgId, threadId, id)),
          tokenHash: sha256(token),
          verifyDateOfBirth: input.verify.dateOfBirth,
          verifyPhone: input.verify.phone,
          expiresAt,
          revokedAt: null,
          revokedById: null,
          consecutiveFailures: 0,
          totalFailures: 0,
          lockedUntil: null,
          lockedPermanently: false,
          createdById: ctx.actor.id,
          createdByName: ctx.actor.name,
          createdAt: now,
          lastUsedAt: null,
        };
        await repo.insertLink(link, tx);
        const orgName = (await storage.orgDisplayName(ctx.actor.orgId, tx)) ?? 'Your care team';
        await mail.enqueue(tx, {
          kind: 'access_link',
          orgId: ctx.actor.orgId,
          threadId,
          to: input.email,
          text: mailText(orgName, `${config.portalUrl}#token=${token}`, expiresAt),
        });
        await audit.record(tx, ctx, { action: 'access_link.granted', linkId: id, threadId, recordKind: thread.recordKind, recordId: thread.recordExternalId });
        return toView(link, thread);
      });
    },

    async list(ctx: RequestContext, threadId: string, page: { cursor?: string; limit: number }): Promise<Page<AccessLinkView>> {
      const before = decodeCursor(page.cursor, ['uuid'] as const);
      const thread = await threads.loadForActor(db, ctx, threadId, 'access_link.listed');
      const rows = await repo.listLinks(ctx.actor.orgId, threadId, { beforeId: before?.[0], limit: page.limit });
      return toPage(rows, page.limit, (r) => toView(r, thread), (r) => [r.id]);
    },

    /** Revokes at once: every session of the link ends on its next request. */
    async revoke(ctx: RequestContext, linkId: string): Promise<AccessLinkView> {
      return db.transaction(async (tx) => {
        const link = await repo.findLink(ctx.actor.orgId, linkId, tx, true);
        if (!link) throw new AppError('not_found', 'No access link with that id');
        const thread = (await threadsRepo.findWithRecord(ctx.actor.orgId, link.threadId, tx))!;
        if (link.revokedAt) return toView(link, thread);
        const now = clock.now();
        const revoked = { ...link, revokedAt: now, revokedById: ctx.actor.id };
        await repo.updateLink(ctx.actor.orgId, linkId, { revokedAt: now, revokedById: ctx.actor.id }, tx);
        await repo.endSessionsOfLink(linkId, now, tx);
        await audit.record(tx, ctx, { action: 'access_link.revoked', linkId, threadId: link.threadId, recordKind: thread.recordKind, recordId: thread.recordExternalId });
        return toView(revoked, thread);
      });
    },

    /** Exchanges a token (and the required checks) for a session, or answers the uniform 401. */
    async openSession(
      info: RequestInfo,
      input: { token: string; dateOfBirth?: string; phone?: string },
    ): Promise<{ sessionToken: string; expiresAt: string; thread: ThreadView }> {
      const now = clock.now();
      const outcome = await db.transaction(async (tx) => {
        const link = await repo.findLinkByTokenHash(sha256(input.token), tx, true);
        if (!link) {
          // No organization owns an unknown token: the attempt goes to the service chain.
          const anonymous: RequestContext = { actor: { role: 'anonymous', id: 'anonymous', orgId: SERVICE_AUDIT_ORG, name: null, rec: null }, ...info };
          await audit.record(tx, anonymous, { action: 'verification.failed', outcome: 'denied', reason: 'unknown_link' });
          return null;
        }
        const ctx: RequestContext = { actor: externalActor(link, null), ...info };
        const ids = { linkId: link.id, threadId: link.threadId };
        const state = stateOf(link, now);
        if (state !== 'active') {
          await audit.record(tx, ctx, { action: 'verification.failed', outcome: 'denied', reason: `link_${state}`, ...ids });
          return null;
        }
        const thread = (await threadsRepo.findWithRecord(link.orgId, link.threadId, tx))!;
        const record = await recordsRepo.findById(link.orgId, thread.recordId, tx);
        const phi = record ? records.decrypt(record) : null;
        const failed: string[] = [];
        if (link.verifyDateOfBirth && !sameValue(normalizeDate(input.dateOfBirth), normalizeDate(phi?.dateOfBirth))) failed.push('date_of_birth');
        if (link.verifyPhone && !sameValue(normalizePhone(input.phone), normalizePhone(phi?.phone))) failed.push('phone');
        if (failed.length > 0) {
          const consecutive = link.consecutiveFailures + 1;
          const total = link.totalFailures + 1;
          const lockForGood = total >= limits.totalFailuresToLock;
          const lockAWhile = !lockForGood && consecutive >= limits.consecutiveFailuresToLock;
          await repo.updateLink(
            link.orgId,
            link.id,
            {
              consecutiveFailures: lockAWhile ? 0 : consecutive,
              totalFailures: total,
              lockedPermanently: lockForGood,
              lockedUntil: lockAWhile ? new Date(now.getTime() + limits.lockMinutes * 60_000) : link.lockedUntil,
            },
            tx,
          );
          await audit.record(tx, ctx, { action: 'verification.failed', outcome: 'failure', reason: failed.join('+'), ...ids });
          if (lockForGood || lockAWhile) {
            await audit.record(tx, ctx, { action: 'verification.locked', outcome: 'denied', reason: lockForGood ? 'total_failures' : 'consecutive_failures', ...ids });
          }
          return null;
        }
        const sessionToken = randomBytes(32).toString('base64url');
        const expiresAt = new Date(Math.min(now.getTime() + SESSION_ABSOLUTE_MS, link.expiresAt.getTime()));
        await repo.updateLink(link.orgId, link.id, { consecutiveFailures: 0, lastUsedAt: now }, tx);
        await repo.insertSession({ id: newId(), orgId: link.orgId, linkId: link.id, threadId: link.threadId, tokenHash: sha256(sessionToken), createdAt: now, lastSeenAt: now, expiresAt }, tx);
        await audit.record(tx, ctx, { action: 'verification.succeeded', ...ids });
        await audit.record(tx, ctx, { action: 'access_link.opened', ...ids });
        const email = threads.threadKey(thread).openText(link.emailSealed, accessLinkEmailAad(link.orgId, link.threadId, link.id));
        const view = await threads.viewFor({ ...ctx, actor: externalActor(link, email) }, thread, tx);
        return { sessionToken, expiresAt: expiresAt.toISOString(), thread: view };
      });
      if (!outcome) throw denied();
      return outcome;
    },

    /** The actor behind a session token, or null when the session has ended for any reason. */
    async authenticate(sessionToken: string): Promise<Actor | null> {
      const found = await repo.findSession(sha256(sessionToken));
      if (!found) return null;
      const { session, link } = found;
      const now = clock.now();
      const ended =
        session.expiresAt <= now ||
        now.getTime() - session.lastSeenAt.getTime() > SESSION_IDLE_MS ||
        link.revokedAt !== null ||
        link.expiresAt <= now;
      if (ended) return null;
      await repo.touchSession(session.id, now);
      const thread = await threadsRepo.findWithRecord(link.orgId, link.threadId);
      if (!thread) return null;
      const email = threads.threadKey(thread).openText(link.emailSealed, accessLinkEmailAad(link.orgId, link.threadId, link.id));
      return externalActor(link, email);
    },

    /** Ends the caller's session (a "sign out" from the external page). */
    async endSession(sessionToken: string): Promise<void> {
      const found = await repo.findSession(sha256(sessionToken));
      if (found) await repo.expireSession(found.session.id, clock.now());
    },
  };
}

export type AccessService = ReturnType<typeof createAccessService>;
