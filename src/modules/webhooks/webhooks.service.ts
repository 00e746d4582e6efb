/**
 * Webhooks: organizations register endpoints; changes are announced through a transactional
 * outbox (the same pattern as mail) and delivered signed, at least once.
 *
 * Invariants:
 * - a delivery row is written by the audit listener inside the transaction that recorded the
 *   event, so an event is announced exactly when its change commits;
 * - payloads carry ids and metadata only (event type, org, thread, message, link, record
 *   reference, actor kind and id); never a subject, a body, a name, an address or a token.
 *   Receivers fetch content with their own credentials;
 * - the payload bytes are fixed at enqueue: every attempt sends and signs the same body under
 *   the same `webhook-id`, so receivers can de-duplicate. The id names the audit event and the
 *   webhook event type: one audit event can announce two types (an external reply is both
 *   `message.sent` and `external.replied`), and those must not look like duplicates;
 * - the endpoint's secret is sealed at rest and returned once, at registration;
 * - targets pass the SSRF guard at registration and again before every attempt.
 */
import type { Logger } from 'pino';
import type { Db, DbOrTx } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import type { RequestContext } from '../../lib/context.js';
import { generateWebhookSecret, signWebhook, webhookKeyContext, webhookSecretAad, type KeyRing } from '../../lib/crypto/index.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { decodeCursor, toPage, type Page } from '../../lib/pagination.js';
import type { AuditService, RecordedAuditEvent } from '../audit/audit.service.js';
import { parseWebhookUrl, resolveTarget, type Resolver, type UrlPolicy } from './webhook-url.js';
import type { WebhookSender } from './webhook-sender.js';
import type { WebhookAttemptRow, WebhookDeliveryRow, WebhookEndpointRow, WebhooksRepo } from './webhooks.repo.js';
import { createPoller } from '../../lib/poller.js';

export const WEBHOOK_EVENTS = [
  'thread.created',
  'message.sent',
  'message.read',
  'external.replied',
  'access_link.granted',
  'access_link.revoked',
  'verification.locked',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

/** Which audit events announce which webhook events. */
function eventTypesFor(event: RecordedAuditEvent): WebhookEventType[] {
  switch (event.action) {
    case 'thread.created':
    case 'message.read':
    case 'access_link.granted':
    case 'access_link.revoked':
      return event.outcome === 'success' ? [event.action] : [];
    case 'message.sent':
      if (event.outcome !== 'success') return [];
      return event.actorKind === 'external' ? ['message.sent', 'external.replied'] : ['message.sent'];
    case 'verification.locked':
      return ['verification.locked'];
    default:
      return [];
  }
}

/** Standard Webhooks message id: `msg_<audit event id>_<type with underscores>`. */
export const webhookEventId = (auditEventId: string, type: WebhookEventType) => `msg_${auditEventId}_${type.replace('.', '_')}`;

const BATCH = 20;
const LEASE_MS = 60_000;
const ATTEMPT_TIMEOUT_MS = 10_000;
/** Retries stop once the next attempt would fall later than this after the event. */
export const RETRY_WINDOW_MS = 24 * 3_600_000;
/** Backoff after failed attempt n: 30 s, 1 min, 2 min … capped at 4 hours. */
export const webhookBackoffMs = (attempts: number) => Math.min(30_000 * 2 ** Math.max(0, attempts - 1), 4 * 3_600_000);

export interface WebhookEndpointView {
  id: string;
  url: string;
  description: string | null;
  events: WebhookEventType[];
  createdBy: string;
  createdAt: string;
}

export interface WebhookDeliveryView {
  id: string;
  eventId: string;
  eventType: WebhookEventType;
  status: WebhookDeliveryRow['status'];
  createdAt: string;
  deliveredAt: string | null;
  nextAttemptAt: string | null;
  attempts: { attempt: number; attemptedAt: string; responseStatus: number | null; error: string | null; durationMs: number }[];
}

const toView = (row: WebhookEndpointRow): WebhookEndpointView => ({
  id: row.id,
  url: row.url,
  description: row.description,
  events: row.events as WebhookEventType[],
  createdBy: row.createdById,
  createdAt: row.createdAt.toISOString(),
});

export function createWebhooksService(deps: {
  db: Db;
  repo: WebhooksRepo;
  keyRing: KeyRing;
  audit: AuditService;
  clock: Clock;
  log: Logger;
  policy: UrlPolicy;
  resolver: Resolver;
  sender: WebhookSender;
}) {
  const { db, repo, keyRing, audit, clock, log, policy, resolver, sender } = deps;

  /** The outbox side: called by the audit listener, inside the event's transaction. */
  async function enqueue(tx: DbOrTx, event: RecordedAuditEvent): Promise<void> {
    for (const type of eventTypesFor(event)) {
      const endpoints = await repo.subscribers(event.orgId, type, tx);
      if (endpoints.length === 0) continue;
      const payload = JSON.stringify({
        type,
        timestamp: event.occurredAt.toISOString(),
        data: {
          organizationId: event.orgId,
          threadId: event.threadId,
          messageId: event.messageId,
          accessLinkId: event.linkId,
          record: event.recordKind && event.recordId ? { kind: event.recordKind, id: event.recordId } : null,
          actor: { kind: event.actorKind, id: event.actorId },
          ...(event.reason && type === 'verification.locked' ? { reason: event.reason } : {}),
        },
      });
      await repo.insertDeliveries(
        endpoints.map((e) => ({
          id: newId(),
          orgId: event.orgId,
          endpointId: e.id,
          eventId: webhookEventId(event.id, type),
          eventType: type,
          payload,
          status: 'pending' as const,
          attempts: 0,
          nextAttemptAt: event.occurredAt,
          createdAt: event.occurredAt,
          deliveredAt: null,
        })),
        tx,
      );
    }
  }

  async function attempt(row: WebhookDeliveryRow & { endpoint: WebhookEndpointRow }): Promise<{ status: number | null; error: string | null }> {
    try {
      const url = parseWebhookUrl(row.endpoint.url, policy);
      const target = await resolveTarget(url, policy, resolver);
      const secret = keyRing
        .openEnvelope(row.endpoint, webhookKeyContext(row.orgId, row.endpointId))
        .openText(row.endpoint.secretSealed, webhookSecretAad(row.orgId, row.endpointId));
      const timestamp = Math.floor(clock.now().getTime() / 1000);
      const headers = {
        'webhook-id': row.eventId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(secret, row.eventId, timestamp, row.payload),
        'user-agent': 'SecureCare-Webhooks/1',
      };
      const { status } = await sender({ url, ...target, headers, body: row.payload, timeoutMs: ATTEMPT_TIMEOUT_MS });
      return { status, error: status >= 200 && status < 300 ? null : `receiver answered ${status}` };
    } catch (error) {
      // Our own refusals carry a safe detail; network errors are reduced to their code.
      const message = error instanceof AppError ? (error.detail ?? error.code) : ((error as NodeJS.ErrnoException).code ?? (error as Error).message ?? 'failed');
      return { status: null, error: String(message).slice(0, 200) };
    }
  }

  const poller = createPoller(drain, log, 'webhook worker');

  async function drain(): Promise<number> {
    const now = clock.now();
    const claimed = await db.transaction((tx) => repo.claimDue(now, new Date(now.getTime() + LEASE_MS), BATCH, tx));
    let delivered = 0;
    await Promise.all(
      claimed.map(async (row) => {
        const started = Date.now();
        const result = await attempt(row);
        const at = clock.now();
        const ok = result.error === null;
        const next = new Date(at.getTime() + webhookBackoffMs(row.attempts));
        const giveUp = !ok && next.getTime() - row.createdAt.getTime() > RETRY_WINDOW_MS;
        const record: WebhookAttemptRow = {
          deliveryId: row.id,
          attempt: row.attempts,
          attemptedAt: at,
          responseStatus: result.status,
          error: result.error,
          durationMs: Date.now() - started,
        };
        const applied = await db.transaction((tx) =>
          repo.recordAttempt(record, { status: ok ? 'delivered' : giveUp ? 'failed' : 'pending', nextAttemptAt: ok || giveUp ? at : next, deliveredAt: ok ? at : null }, tx),
        );
        if (ok && applied) delivered++;
        if (!ok) log.warn({ deliveryId: row.id, endpointId: row.endpointId, attempts: row.attempts, failed: giveUp }, 'webhook not delivered; will retry');
      }),
    );
    return delivered;
  }

  return {
    onAuditEvent: enqueue,

    async register(ctx: RequestContext, input: { url: string; events: WebhookEventType[]; description?: string }): Promise<WebhookEndpointView & { secret: string }> {
      const url = parseWebhookUrl(input.url, policy);
      await resolveTarget(url, policy, resolver);
      const id = newId();
      const orgId = ctx.actor.orgId;
      const secret = generateWebhookSecret();
      const { envelope, dataKey } = keyRing.createEnvelope(webhookKeyContext(orgId, id));
      const row: WebhookEndpointRow = {
        id,
        orgId,
        url: url.toString(),
        description: input.description ?? null,
        events: [...new Set(input.events)],
        ...envelope,
        secretSealed: dataKey.sealText(secret, webhookSecretAad(orgId, id)),
        createdById: ctx.actor.id,
        createdAt: clock.now(),
        deletedAt: null,
      };
      await db.transaction(async (tx) => {
        await repo.insertEndpoint(row, tx);
        await audit.record(tx, ctx, { action: 'webhook.created', reason: null });
      });
      return { ...toView(row), secret };
    },

    async list(ctx: RequestContext, page: { cursor?: string; limit: number }): Promise<Page<WebhookEndpointView>> {
      const before = decodeCursor(page.cursor, ['uuid'] as const);
      const rows = await repo.listEndpoints(ctx.actor.orgId, { beforeId: before?.[0], limit: page.limit });
      return toPage(rows, page.limit, toView, (r) => [r.id]);
    },

    async get(ctx: RequestContext, id: string): Promise<WebhookEndpointView> {
      const row = await repo.findEndpoint(ctx.actor.orgId, id);
      if (!row) throw new AppError('not_found', 'No webhook endpoint with that id');
      return toView(row);
    },

    async remove(ctx: RequestContext, id: string): Promise<void> {
      await db.transaction(async (tx) => {
        const row = await repo.findEndpoint(ctx.actor.orgId, id, tx, true);
        if (!row) throw new AppError('not_found', 'No webhook endpoint with that id');
        await repo.deleteEndpoint(ctx.actor.orgId, id, clock.now(), tx);
        await audit.record(tx, ctx, { action: 'webhook.deleted' });
      });
    },

    async deliveries(ctx: RequestContext, endpointId: string, page: { cursor?: string; limit: number }): Promise<Page<WebhookDeliveryView>> {
      const before = decodeCursor(page.cursor, ['uuid'] as const);
      if (!(await repo.findEndpoint(ctx.actor.orgId, endpointId))) throw new AppError('not_found', 'No webhook endpoint with that id');
      const rows = await repo.listDeliveries(ctx.actor.orgId, endpointId, { beforeId: before?.[0], limit: page.limit });
      const shown = rows.slice(0, page.limit);
      const attempts = await repo.attemptsOf(shown.map((r) => r.id));
      return toPage(
        rows,
        page.limit,
        (r) => ({
          id: r.id,
          eventId: r.eventId,
          eventType: r.eventType as WebhookEventType,
          status: r.status,
          createdAt: r.createdAt.toISOString(),
          deliveredAt: r.deliveredAt?.toISOString() ?? null,
          nextAttemptAt: r.status === 'pending' ? r.nextAttemptAt.toISOString() : null,
          attempts: attempts
            .filter((a) => a.deliveryId === r.id)
            .map((a) => ({ attempt: a.attempt, attemptedAt: a.attemptedAt.toISOString(), responseStatus: a.responseStatus, error: a.error, durationMs: a.durationMs })),
        }),
        (r) => [r.id],
      );
    },

    /** Delivers everything due now (tests and the worker); serialized within this process. */
    drainNow: poller.runNow,
    /** Polls every `intervalMs` until stop(). */
    start: poller.start,
    async stop() {
      await poller.stop();
    },
  };
}

export type WebhooksService = ReturnType<typeof createWebhooksService>;
