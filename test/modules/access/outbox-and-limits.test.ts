/**
 * The mail outbox under an SMTP outage (nothing fails for staff, nothing is lost or sent
 * twice) and the per-IP rate limit on POST /v1/external/sessions (DESIGN sections 6 and 8):
 * shared through Redis by every instance, keyed by the socket address (IPv6 by /64) unless
 * TRUST_PROXY is on, in process without Redis, and failing closed when Redis is down.
 */
import t from 'tap';
import type { Test } from 'tap';
import { randomBytes, randomInt } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { LightMyRequestResponse } from 'fastify';
import { build, type Harness } from '../../fixtures/build.js';
import { startSmtp, waitFor } from '../../fixtures/smtp.js';
import { rowsOf } from '../../../src/db/util.js';

interface OutboxRow {
  id: string;
  status: string;
  attempts: number;
  last_error: string | null;
  body_is_null: boolean;
  sent_at: string | null;
}

async function outboxRows(h: Harness): Promise<OutboxRow[]> {
  return rowsOf<OutboxRow>(
    await h.app.database.db.execute(
      sql`select id::text as id, status, attempts, last_error, body_sealed is null as body_is_null, sent_at::text as sent_at
          from email_outbox where org_id = ${h.orgId} order by id`,
    ),
  );
}

t.test('1. an SMTP outage delays access mails, never fails a grant, loses or doubles a mail', async (t) => {
  const smtp = await startSmtp();
  t.teardown(() => smtp.stop());
  await smtp.stop(); // the outage starts before the app does
  const h = await build(t, { env: { SMTP_URL: smtp.url }, mailPollMs: 100 });
  const staff = h.staff();
  // No email on the record, so the only mails are the 20 access links.
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Olive Outage', dateOfBirth: '1980-01-02', phone: '555-010-0101' });
  const opened = await h.call('POST', '/v1/threads', staff, {
    record: { kind: 'customer', id: 'c-1' },
    subject: 'Outage test',
    body: 'Body',
    replyAllowed: true,
  });
  t.equal(opened.statusCode, 201);
  const threadId = opened.json().thread.id as string;

  const emails = Array.from({ length: 20 }, (_, i) => `outage-${i}@example.net`);
  const statuses: number[] = [];
  for (const email of emails) {
    const res = await h.call('POST', `/v1/threads/${threadId}/access-links`, staff, { email, expiresIn: '7d', verify: { dateOfBirth: true, phone: false } });
    statuses.push(res.statusCode);
  }
  t.same(statuses, Array(20).fill(201), 'all 20 grants answer 201 while SMTP is down');

  await waitFor(
    async () => {
      const rows = await outboxRows(h);
      return rows.length === 20 && rows.every((r) => r.attempts >= 1 && r.last_error);
    },
    20_000,
    'every outbox row to have failed at least once',
  );
  const failing = await outboxRows(h);
  t.equal(failing.length, 20, '20 outbox rows for the org');
  t.ok(
    failing.every((r) => r.status === 'pending' && r.attempts >= 1 && typeof r.last_error === 'string' && r.last_error.length > 0),
    'each row is pending with attempts and a last_error',
  );
  t.equal(smtp.received.length, 0, 'nothing was delivered during the outage');

  await smtp.start(); // same port
  // Skip the 5 s/10 s/20 s backoff: make the pending rows due now (again, if a pass that was
  // already running pushed some back).
  let lastBump = 0;
  const bump = async () => {
    if (Date.now() - lastBump < 1000) return;
    lastBump = Date.now();
    await h.app.database.db.execute(sql`update email_outbox set next_attempt_at = now() where org_id = ${h.orgId} and status = 'pending'`);
  };
  await waitFor(
    async () => {
      if (smtp.received.length >= 20) return true;
      await bump();
      return false;
    },
    60_000,
    '20 mails after SMTP is back',
  );
  // Give a duplicate the chance to show up.
  await new Promise((r) => setTimeout(r, 1500));

  const ids = smtp.received.map((m) => m.messageId);
  t.equal(smtp.received.length, 20, 'exactly 20 mails arrived');
  t.equal(new Set(ids).size, 20, '20 distinct Message-IDs, no duplicates');
  t.ok(
    ids.every((id) => id !== null),
    'every mail has a Message-ID',
  );
  t.same(
    smtp.received.flatMap((m) => m.to).sort(),
    [...emails].sort(),
    'one mail to each recipient',
  );
  t.equal(new Set(smtp.received.map((m) => m.token)).size, 20, 'each with its own token');

  const rows = await outboxRows(h);
  t.ok(
    rows.every((r) => r.status === 'sent' && r.body_is_null && r.sent_at !== null),
    "each row is 'sent' with body_sealed null",
  );
  t.same(
    [...ids].sort(),
    rows.map((r) => `<${r.id}@securecare.invalid>`).sort(),
    'Message-IDs are derived from the outbox rows',
  );
});

// ---------------------------------------------------------------------------------------------

const bogusToken = () => randomBytes(32).toString('base64url');
const octet = () => randomInt(1, 255);
const hextet = () => randomInt(0x1000, 0xffff).toString(16);

function attempt(app: Harness['app'], remoteAddress: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: '/v1/external/sessions',
    remoteAddress,
    headers: { 'content-type': 'application/json', ...headers },
    payload: JSON.stringify({ token: bogusToken() }),
  });
}

/**
 * 10 attempts are let through (401 for a bogus token), the 11th is 429 with Retry-After.
 * `pick(i)` chooses the instance, address and headers of attempt i.
 */
async function assertTenThenLimited(
  t: Test,
  label: string,
  pick: (i: number) => { app: Harness['app']; ip: string; headers?: Record<string, string> },
): Promise<void> {
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) {
    const { app, ip, headers } = pick(i);
    statuses.push((await attempt(app, ip, headers)).statusCode);
  }
  t.same(statuses, Array(10).fill(401), `${label}: 10 attempts are not limited (401 each)`);
  const { app, ip, headers } = pick(10);
  const limited = await attempt(app, ip, headers);
  t.equal(limited.statusCode, 429, `${label}: the 11th is 429`);
  t.equal(limited.json().code, 'rate_limited', `${label}: code rate_limited`);
  const retryAfter = limited.headers['retry-after'];
  t.ok(retryAfter !== undefined && Number(retryAfter) > 0 && Number(retryAfter) <= 60, `${label}: Retry-After header (${String(retryAfter)})`);
}

async function rateLimitSuite(t: Test, apps: [Harness['app'], Harness['app']]) {
  const [a, b] = apps;
  const alternate = (i: number) => (i % 2 === 0 ? a : b);

  await t.test('10 attempts per IP, then 429', async (t) => {
    const ip = `10.9.${octet()}.${octet()}`;
    await assertTenThenLimited(t, 'IPv4', (i) => ({ app: alternate(i), ip }));
    const other = await attempt(a, `10.8.${octet()}.${octet()}`);
    t.equal(other.statusCode, 401, 'control: another IP has its own bucket');
  });

  await t.test('a forged X-Forwarded-For does not make new buckets while TRUST_PROXY is off', async (t) => {
    const ip = `10.9.${octet()}.${octet()}`;
    await assertTenThenLimited(t, 'X-Forwarded-For', (i) => ({
      app: alternate(i),
      ip,
      headers: { 'x-forwarded-for': `198.51.100.${i + 1}` },
    }));
  });

  await t.test('two IPv6 addresses in the same /64 share one bucket', async (t) => {
    const prefix = `2001:db8:${hextet()}:${hextet()}`;
    await assertTenThenLimited(t, 'IPv6 /64', (i) => ({ app: alternate(i), ip: i % 2 === 0 ? `${prefix}::1` : `${prefix}::ffff` }));
    const elsewhere = await attempt(a, `2001:db8:${hextet()}:${hextet()}::1`);
    t.equal(elsewhere.statusCode, 401, 'control: another /64 has its own bucket');
  });
}

t.test('2. rate limit shared by two instances through Redis', { skip: !process.env.REDIS_URL && 'needs REDIS_URL' }, async (t) => {
  const env = { REDIS_URL: process.env.REDIS_URL! };
  const one = await build(t, { env });
  const two = await build(t, { env });
  t.ok(one.app.redis && two.app.redis, 'both instances use Redis');
  await rateLimitSuite(t, [one.app, two.app]);
});

t.test('3. rate limit in process (no REDIS_URL), one instance', async (t) => {
  const h = await build(t, { env: { REDIS_URL: '' } });
  t.equal(h.app.redis, null, 'no Redis');
  await rateLimitSuite(t, [h.app, h.app]);
});

t.test('4. Redis unreachable: the session endpoint fails closed, the rest works', async (t) => {
  const h = await build(t, { env: { REDIS_URL: 'redis://127.0.0.1:1' } });
  const res = await attempt(h.app, `10.7.${octet()}.${octet()}`);
  t.equal(res.statusCode, 503, 'POST /v1/external/sessions: 503');
  t.equal(res.json().code, 'service_unavailable');
  t.equal((await h.call('GET', '/healthz')).statusCode, 200, 'GET /healthz still 200');
  const put = await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Rita Redisless' });
  t.ok(put.statusCode === 200 || put.statusCode === 201, 'an integration route still works');
  const usage = await h.call('GET', '/v1/storage/usage', h.staff());
  t.equal(usage.statusCode, 200, 'a staff route still works');
  const threads = await h.call('GET', '/v1/customers/c-1/threads', h.staff());
  t.equal(threads.statusCode, 200, 'a staff list still works');
});
