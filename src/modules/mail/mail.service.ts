/**
 * Mail through a transactional outbox (DESIGN sections 6 and 8).
 *
 * Invariants:
 * - `enqueue` runs in the caller's transaction: a grant and its mail commit together, and a
 *   mail outage never fails or loses a grant;
 * - delivery is at least once: a row is claimed with a lease, sent, then marked; a crash
 *   between send and mark resends after the lease with the same Message-ID
 *   (`<outbox id@domain>`), which receivers can de-duplicate on;
 * - mails carry no PHI: the organization's name, a generic subject, a link and an expiry;
 * - recipient and body are sealed at rest; the body (which may hold a token) is wiped on send.
 */
import type { Db, DbOrTx } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { outboxFieldAad, outboxKeyContext, type KeyRing } from '../../lib/crypto/index.js';
import { newId } from '../../lib/ids.js';
import type { Logger } from 'pino';
import type { MailTransport } from './mail-transport.js';
import type { OutboxRepo, OutboxRow } from './outbox.repo.js';
import { createPoller } from '../../lib/poller.js';

export const SECURE_MESSAGE_SUBJECT = 'You have a secure message';
const BATCH = 10;
const LEASE_MS = 60_000;
const MAX_ATTEMPTS = 12;
/** Backoff after a failed attempt: 5 s, 10 s, 20 s … capped at one hour. */
export const backoffMs = (attempts: number) => Math.min(5_000 * 2 ** Math.max(0, attempts - 1), 3_600_000);

export interface MailContent {
  kind: OutboxRow['kind'];
  orgId: string;
  threadId: string | null;
  to: string;
  text: string;
}

export function createMailService(deps: { db: Db; repo: OutboxRepo; keyRing: KeyRing; transport: MailTransport; clock: Clock; from: string; log: Logger }) {
  const { db, repo, keyRing, transport, clock, from, log } = deps;
  const poller = createPoller(drain, log, 'mail outbox worker');
  const domain = /@([^>\s]+)/.exec(from)?.[1] ?? 'securecare.invalid';

  async function deliver(row: OutboxRow): Promise<void> {
    const key = keyRing.openEnvelope(row, outboxKeyContext(row.orgId, row.id));
    const to = key.openText(row.recipientSealed, outboxFieldAad(row.orgId, row.id, 'recipient'));
    // The body is wiped once sent; a row without one was sent already and must not go out empty.
    if (!row.bodySealed) throw new Error('outbox row has no body (already sent)');
    const text = key.openText(row.bodySealed, outboxFieldAad(row.orgId, row.id, 'body'));
    await transport.send({ messageId: `<${row.id}@${domain}>`, from, to, subject: row.subject, text });
  }

  /** One pass: claim due rows, send them, record the outcome. Returns how many were sent. */
  async function drain(): Promise<number> {
    const now = clock.now();
    const claimed = await db.transaction((tx) => repo.claimDue(now, new Date(now.getTime() + LEASE_MS), BATCH, tx));
    let sent = 0;
    for (const row of claimed) {
      try {
        await deliver(row);
        await repo.markSent(row.id, row.attempts, clock.now());
        sent++;
      } catch (error) {
        const message = error instanceof Error ? error.message.slice(0, 500) : 'send failed';
        const failed = row.attempts >= MAX_ATTEMPTS;
        await repo.markRetry(row.id, row.attempts, new Date(clock.now().getTime() + backoffMs(row.attempts)), message, failed);
        log.warn({ outboxId: row.id, attempts: row.attempts, failed }, 'mail not sent; will retry');
      }
    }
    return sent;
  }

  return {
    async enqueue(tx: DbOrTx, mail: MailContent): Promise<string> {
      const id = newId();
      const { envelope, dataKey } = keyRing.createEnvelope(outboxKeyContext(mail.orgId, id));
      const now = clock.now();
      await repo.insert(
        {
          id,
          orgId: mail.orgId,
          kind: mail.kind,
          threadId: mail.threadId,
          ...envelope,
          recipientSealed: dataKey.sealText(mail.to, outboxFieldAad(mail.orgId, id, 'recipient')),
          subject: SECURE_MESSAGE_SUBJECT,
          bodySealed: dataKey.sealText(mail.text, outboxFieldAad(mail.orgId, id, 'body')),
          status: 'pending',
          attempts: 0,
          nextAttemptAt: now,
          lastError: null,
          createdAt: now,
          sentAt: null,
        },
        tx,
      );
      return id;
    },

    recentNotice: repo.recentNotice,

    /** Sends everything due now (tests and the worker); serialized within this process. */
    drainNow: poller.runNow,
    /** Polls every `intervalMs` until stop(). */
    start: poller.start,
    async stop() {
      await poller.stop();
      transport.close();
    },
  };
}

export type MailService = ReturnType<typeof createMailService>;
