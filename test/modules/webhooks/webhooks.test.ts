/**
 * Webhooks end to end against a local HTTP receiver: Standard Webhooks signatures verified
 * with the `standardwebhooks` library, every event type, retries with backoff and a delivery
 * log, no PHI in any payload, the SSRF guard, and the admin-only, org-scoped routes.
 *
 * Each test uses its own database (on PostgreSQL too): the webhook worker claims due rows of
 * every organization, and another test's app, holding other keys, must never take ours.
 */
import t from 'tap';
import type { Test } from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { Webhook } from 'standardwebhooks';
import { build, fakeClock, newKey, openTestDatabase, type Harness } from '../../fixtures/build.js';
import { assertProblem } from '../../fixtures/problems.js';
import { rowsOf } from '../../../src/db/util.js';
import { webhookBackoffMs } from '../../../src/modules/webhooks/webhooks.service.js';
import { createWebhooksRepo } from '../../../src/modules/webhooks/webhooks.repo.js';

const ALL_EVENTS = [
  'thread.created',
  'message.sent',
  'message.read',
  'external.replied',
  'access_link.granted',
  'access_link.revoked',
  'verification.locked',
];

/** Every PHI value and secret the story uses: none may appear in any webhook payload. */
const PHI = {
  displayName: 'Wilhelmina Webhookova',
  email: 'wilhelmina.private@example.org',
  dateOfBirth: '1961-04-17',
  phone: '+1 (555) 909-1234',
  subject: 'Oncology referral for Wilhelmina',
  staffBody: 'Your biopsy results are ready, Wilhelmina.',
  reply: 'Thank you, I will call about the biopsy.',
};

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A local receiver that answers each request with the next scripted status (then 200). */
async function receiver(t: Test, script: number[] = []) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = script.shift() ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received };
}

async function setup(t: Test, options: { allowPrivate?: boolean; clock?: ReturnType<typeof fakeClock> } = {}) {
  const database = await openTestDatabase(t);
  const dir = mkdtempSync(path.join(tmpdir(), 'sc-webhook-mail-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clock = options.clock ?? fakeClock(new Date());
  const h = await build(t, {
    database,
    clock,
    encryptionKeys: `v1:${newKey()}`,
    env: { MAIL_DIR: dir, EXTERNAL_SESSION_RATE_LIMIT: '1000000', ...(options.allowPrivate === false ? {} : { WEBHOOK_ALLOW_PRIVATE: 'true' }) },
  });
  return { h, clock, dir, database };
}

async function register(h: Harness, url: string, events: string[] = ALL_EVENTS) {
  const res = await h.call('POST', '/v1/webhooks', h.admin(), { url, events, description: 'CRM sync' });
  if (res.statusCode !== 201) throw new Error(`webhook not registered: ${res.statusCode} ${res.body}`);
  return res.json() as { id: string; secret: string; url: string; events: string[] };
}

/** Opens a thread on record c-77 (created on first use, with every PHI field). */
async function openThread(h: Harness) {
  const record = await h.call('PUT', '/v1/customers/c-77', h.integration(), { displayName: PHI.displayName, email: PHI.email, dateOfBirth: PHI.dateOfBirth, phone: PHI.phone });
  if (record.statusCode !== 200 && record.statusCode !== 201) throw new Error(`record not stored: ${record.statusCode}`);
  const res = await h.call('POST', '/v1/threads', h.staff(), threadBody());
  if (res.statusCode !== 201) throw new Error(`thread not created: ${res.statusCode} ${res.body}`);
  return { threadId: res.json().thread.id as string, messageId: res.json().message.id as string };
}

const threadBody = (extra: Record<string, unknown> = {}) => ({
  record: { kind: 'customer', id: 'c-77' },
  subject: PHI.subject,
  body: PHI.staffBody,
  replyAllowed: true,
  ...extra,
});

async function drainWebhooks(h: Harness) {
  let total = 0;
  for (let i = 0; i < 20; i++) {
    const n = await h.app.webhooks.drainNow();
    total += n;
    if (n === 0) break;
  }
  return total;
}

async function accessToken(h: Harness, dir: string, email: string): Promise<string> {
  while ((await h.app.mail.drainNow()) > 0);
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.eml'))) {
    const raw = readFileSync(path.join(dir, file), 'utf8');
    const text = raw.replace(/=\r?\n/g, '').replace(/=3D/gi, '=');
    if (!raw.includes(email)) continue;
    const token = /#token=([A-Za-z0-9_-]{43})/.exec(text)?.[1];
    if (token) return token;
  }
  throw new Error(`no access mail for ${email}`);
}

t.test('every event type is delivered, signed in the Standard Webhooks format, without PHI', async (t) => {
  const { h, dir } = await setup(t);
  const hook = await receiver(t);
  const readOnly = await receiver(t);
  const created = await register(h, hook.url);
  t.match(created.secret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'a 256-bit secret in the whsec_ format');
  await register(h, readOnly.url, ['message.read']);

  const listed = await h.call('GET', '/v1/webhooks', h.admin());
  t.equal(listed.statusCode, 200);
  t.equal(listed.json().items.length, 2, 'both endpoints listed');
  t.notOk(listed.body.includes(created.secret.slice(6, 30)), 'the list never shows a secret');
  t.notOk((await h.call('GET', `/v1/webhooks/${created.id}`, h.admin())).body.includes('whsec_'), 'nor does the endpoint view');
  const stored = rowsOf<{ row: string }>(await h.app.database.db.execute(sql`select t::text as row from webhook_endpoints t`));
  t.notOk(stored.some((r) => r.row.includes(created.secret.slice(6, 30)) || r.row.includes(Buffer.from(created.secret.slice(6), 'base64').toString('hex').slice(0, 24))), 'the secret is sealed at rest');

  // The story: a thread, an access link, a session, a read, a reply, a lockout, a revocation.
  const { threadId, messageId } = await openThread(h);
  const link = (await h.call('POST', `/v1/threads/${threadId}/access-links`, h.staff(), { email: PHI.email, expiresIn: '7d', verify: { dateOfBirth: true, phone: false } })).json();
  const token = await accessToken(h, dir, PHI.email);
  const session = await h.call('POST', '/v1/external/sessions', undefined, { token, dateOfBirth: PHI.dateOfBirth });
  t.equal(session.statusCode, 201, 'external session opened');
  const sessionToken = session.json().sessionToken as string;
  t.equal((await h.call('POST', '/v1/external/read', sessionToken, { upTo: messageId })).statusCode, 200, 'external read receipt');
  const reply = await h.call('POST', '/v1/external/messages', sessionToken, { body: PHI.reply });
  t.equal(reply.statusCode, 201, 'external reply');
  t.equal((await h.call('POST', `/v1/threads/${threadId}/read`, h.staff(), { upTo: reply.json().id })).statusCode, 200, 'staff read receipt');
  const lockEmail = 'lock.target@example.org';
  await h.call('POST', `/v1/threads/${threadId}/access-links`, h.staff(), { email: lockEmail, expiresIn: '7d', verify: { dateOfBirth: true, phone: false } });
  const lockToken = await accessToken(h, dir, lockEmail);
  for (let i = 0; i < 5; i++) await h.call('POST', '/v1/external/sessions', undefined, { token: lockToken, dateOfBirth: '1999-01-01' });
  t.equal((await h.call('DELETE', `/v1/access-links/${link.id}`, h.staff())).statusCode, 200, 'link revoked');

  await drainWebhooks(h);
  const types = hook.received.map((r) => JSON.parse(r.body).type as string);
  t.same([...new Set(types)].sort(), [...ALL_EVENTS].sort(), 'every event type reached the all-events endpoint');
  t.same(
    [...types].sort(),
    [
      'thread.created',
      'message.sent',
      'access_link.granted',
      'message.read',
      'message.sent',
      'external.replied',
      'message.read',
      'access_link.granted',
      'verification.locked',
      'access_link.revoked',
    ].sort(),
    'exactly the story events were announced, once each',
  );
  t.equal(types.length, 10, 'ten announcements: one per event, external.replied alongside its message.sent');
  const ids = hook.received.map((r) => String(r.headers['webhook-id']));
  t.equal(new Set(ids).size, 10, 'every announcement has its own webhook-id, so a receiver de-duplicating on it keeps all ten');
  const replyIds = hook.received
    .filter((r) => JSON.parse(r.body).data.messageId === reply.json().id && JSON.parse(r.body).type !== 'message.read')
   .map((r) => String(r.headers['webhook-id']));
  t.equal(replyIds.length, 2, 'the reply announced message.sent and external.replied');
  t.not(replyIds[0], replyIds[1], 'under two different webhook-ids');
  t.same(readOnly.received.map((r) => JSON.parse(r.body).type), ['message.read', 'message.read'], 'the filtered endpoint got only its event type');

  const verifier = new Webhook(created.secret);
  for (const r of hook.received) {
    const headers = { 'webhook-id': String(r.headers['webhook-id']), 'webhook-timestamp': String(r.headers['webhook-timestamp']), 'webhook-signature': String(r.headers['webhook-signature']) };
    t.doesNotThrow(() => verifier.verify(r.body, headers), `${JSON.parse(r.body).type}: the signature verifies`);
    t.throws(() => verifier.verify(r.body.replace('"type"', '"type" '), headers), 'a changed body fails verification');
    t.throws(() => new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(r.body, headers), 'another secret fails verification');
  }

  const replied = hook.received.map((r) => JSON.parse(r.body)).find((p) => p.type === 'external.replied');
  t.same(
    replied.data,
    {
      organizationId: h.orgId,
      threadId,
      messageId: reply.json().id,
      accessLinkId: link.id,
      record: { kind: 'customer', id: 'c-77' },
      actor: { kind: 'external', id: link.id },
    },
    'an external reply names ids only',
  );
  const everything = [...hook.received, ...readOnly.received].map((r) => r.body + JSON.stringify(r.headers)).join('\n');
  for (const [field, value] of Object.entries({ ...PHI, token, sessionToken, dobDigits: '19610417', phoneDigits: '5559091234' })) {
    t.notOk(everything.includes(value), `no payload or header carries ${field}`);
  }
  for (const word of ['Wilhelmina', 'biopsy', 'Oncology']) t.notOk(everything.includes(word), `no payload mentions "${word}"`);
});

t.test('a receiver that fails 3 times then recovers gets the event; the log shows 4 attempts', async (t) => {
  const { h, clock } = await setup(t);
  const hook = await receiver(t, [500, 503, 500]);
  const endpoint = await register(h, hook.url, ['thread.created']);
  await openThread(h);

  t.equal(await h.app.webhooks.drainNow(), 0, 'attempt 1 fails');
  for (let attempt = 1; attempt <= 3; attempt++) {
    clock.advance(webhookBackoffMs(attempt) - 1000);
    await h.app.webhooks.drainNow();
    t.equal(hook.received.length, attempt, `no retry before the backoff after attempt ${attempt} ends`);
    clock.advance(1000);
    const delivered = await h.app.webhooks.drainNow();
    t.equal(delivered, attempt === 3 ? 1 : 0, `attempt ${attempt + 1} ${attempt === 3 ? 'succeeds' : 'fails'}`);
  }
  t.equal(hook.received.length, 4, 'the receiver saw four requests');
  t.equal(new Set(hook.received.map((r) => r.headers['webhook-id'])).size, 1, 'one webhook-id on every attempt');
  t.equal(new Set(hook.received.map((r) => r.body)).size, 1, 'the same body on every attempt');
  clock.advance(24 * 3_600_000);
  t.equal(await h.app.webhooks.drainNow(), 0, 'nothing is sent again once delivered');
  t.equal(hook.received.length, 4);

  const log = await h.call('GET', `/v1/webhooks/${endpoint.id}/deliveries`, h.admin());
  t.equal(log.statusCode, 200);
  const [delivery] = log.json().items;
  t.equal(log.json().items.length, 1, 'one delivery');
  t.equal(delivery.status, 'delivered');
  t.equal(delivery.eventType, 'thread.created');
  t.equal(delivery.eventId, hook.received[0]!.headers['webhook-id']);
  t.same(
    delivery.attempts.map((a: { attempt: number; responseStatus: number }) => [a.attempt, a.responseStatus]),
    [
      [1, 500],
      [2, 503],
      [3, 500],
      [4, 200],
    ],
    'four attempts, each with what the receiver answered',
  );
  t.equal(delivery.nextAttemptAt, null);
  t.type(delivery.deliveredAt, 'string');
});

t.test('a receiver that never recovers is retried with backoff for 24 hours, then marked failed', async (t) => {
  const { h, clock } = await setup(t);
  const hook = await receiver(t, Array(100).fill(500));
  const endpoint = await register(h, hook.url, ['thread.created']);
  await openThread(h);
  const start = clock.now().getTime();
  for (let i = 0; i < 100; i++) {
    await h.app.webhooks.drainNow();
    clock.advance(15 * 60_000);
  }
  const [delivery] = (await h.call('GET', `/v1/webhooks/${endpoint.id}/deliveries`, h.admin())).json().items;
  t.equal(delivery.status, 'failed', 'given up');
  t.equal(delivery.nextAttemptAt, null);
  const times = delivery.attempts.map((a: { attemptedAt: string }) => Date.parse(a.attemptedAt) - start);
  t.ok(times.at(-1) <= 24 * 3_600_000 && times.at(-1) >= 12 * 3_600_000, `the last attempt falls within 24 h, late in that window (${(times.at(-1) / 3_600_000).toFixed(1)} h)`);
  const gaps = times.slice(1).map((v: number, i: number) => v - times[i]);
  t.ok(gaps.every((g: number, i: number) => i === 0 || g >= gaps[i - 1]), 'the gaps between attempts never shrink (exponential, then capped)');
  t.ok(delivery.attempts.length >= 8 && delivery.attempts.length <= 20, `a bounded number of attempts (${delivery.attempts.length})`);
  t.equal(hook.received.length, delivery.attempts.length, 'every logged attempt reached the receiver');
});

t.test('nothing is announced for a change that rolls back, or to a deleted endpoint', async (t) => {
  const { h } = await setup(t);
  const hook = await receiver(t);
  const endpoint = await register(h, hook.url);
  await openThread(h);
  const count = async () =>
    Number(rowsOf<{ n: number }>(await h.app.database.db.execute(sql`select count(*)::int as n from webhook_deliveries where org_id = ${h.orgId}`))[0]!.n);
  t.equal(await count(), 2, 'thread.created and message.sent queued with the thread');
  const refused = await h.call('POST', '/v1/threads', h.staff(), threadBody({ attachments: [{ documentId: '01890000-0000-7000-8000-000000000000' }] }));
  t.equal(refused.statusCode, 422, 'a thread with a missing attachment is refused');
  t.equal(await count(), 2, 'the rolled-back thread announced nothing');
  t.equal((await h.call('DELETE', `/v1/webhooks/${endpoint.id}`, h.admin())).statusCode, 204, 'deleted');
  t.equal(await h.app.webhooks.drainNow(), 0, 'queued deliveries of a deleted endpoint are not sent');
  t.equal(hook.received.length, 0);
  await openThread(h);
  t.equal(await count(), 2, 'a deleted endpoint gets no new deliveries');
  t.equal((await h.call('GET', `/v1/webhooks/${endpoint.id}`, h.admin())).statusCode, 404, 'it answers 404 from then on');
  t.equal((await h.call('GET', `/v1/webhooks/${endpoint.id}/deliveries`, h.admin())).statusCode, 404);
  t.equal((await h.call('DELETE', `/v1/webhooks/${endpoint.id}`, h.admin())).statusCode, 404, 'deleting twice is a 404');

  const audit = (await h.call('GET', '/v1/audit-events?limit=200', h.admin())).json().items.map((e: { action: string }) => e.action);
  t.ok(audit.includes('webhook.created') && audit.includes('webhook.deleted'), 'registration and removal are audited');
});

t.test('a delivery queued by a send racing the deletion of its endpoint is never sent', async (t) => {
  const { h } = await setup(t);
  const hook = await receiver(t);
  const endpoint = await register(h, hook.url, ['thread.created']);
  await openThread(h);
  const [queued] = rowsOf<{ id: string }>(await h.app.database.db.execute(sql`select id from webhook_deliveries where endpoint_id = ${endpoint.id}`));
  t.equal((await h.call('DELETE', `/v1/webhooks/${endpoint.id}`, h.admin())).statusCode, 204);
  // The race: the send read the subscriber list before the deletion and committed after the
  // deletion's sweep of pending rows, so its delivery is still pending.
  await h.app.database.db.execute(sql`update webhook_deliveries set status = 'pending' where id = ${queued!.id}`);
  t.equal(await h.app.webhooks.drainNow(), 0, 'nothing delivered');
  t.equal(hook.received.length, 0, 'the receiver of a deleted endpoint got nothing');
  const [row] = rowsOf<{ status: string; attempts: number }>(await h.app.database.db.execute(sql`select status, attempts from webhook_deliveries where id = ${queued!.id}`));
  t.same(row, { status: 'failed', attempts: 0 }, 'the delivery is failed at claim time, with no attempt made');
});

t.test('an attempt by a worker whose lease ran out is logged but does not overwrite the outcome', async (t) => {
  const { h, clock } = await setup(t);
  const hook = await receiver(t);
  const endpoint = await register(h, hook.url, ['thread.created']);
  await openThread(h);
  const repo = createWebhooksRepo(h.app.database.db);
  // A slow worker claims attempt 1, then stalls past its lease.
  const [stale] = await h.app.database.db.transaction((tx) => repo.claimDue(clock.now(), new Date(clock.now().getTime() + 60_000), 20, tx));
  t.equal(stale?.attempts, 1, 'the slow worker holds attempt 1');
  clock.advance(61_000);
  t.equal(await h.app.webhooks.drainNow(), 1, 'another worker takes the expired claim as attempt 2 and delivers');
  const applied = await h.app.database.db.transaction((tx) =>
    repo.recordAttempt(
      { deliveryId: stale!.id, attempt: 1, attemptedAt: clock.now(), responseStatus: null, error: 'ETIMEDOUT', durationMs: 61_000 },
      { status: 'pending', nextAttemptAt: new Date(clock.now().getTime() + 30_000), deliveredAt: null },
      tx,
    ),
  );
  t.equal(applied, false, "the stale worker's outcome is not applied");
  const [delivery] = (await h.call('GET', `/v1/webhooks/${endpoint.id}/deliveries`, h.admin())).json().items;
  t.equal(delivery.status, 'delivered', 'the delivery stays delivered');
  t.same(
    delivery.attempts.map((a: { attempt: number; error: string | null }) => [a.attempt, a.error]),
    [
      [1, 'ETIMEDOUT'],
      [2, null],
    ],
    'both attempts are in the log',
  );
});

t.test('SSRF: private, loopback and link-local targets are refused without WEBHOOK_ALLOW_PRIVATE', async (t) => {
  const { h } = await setup(t, { allowPrivate: false });
  for (const url of [
    'http://169.254.169.254/latest/meta-data/',
    'http://10.0.0.1/hook',
    'http://127.0.0.1:8080/hook',
    'http://localhost:8080/hook',
    'http://[::1]/hook',
    'http://[::ffff:10.0.0.1]/hook',
    'http://[fe80::1]/hook',
    'http://192.168.1.10/hook',
    'http://100.64.0.1/hook',
    'http://0.0.0.0/hook',
  ]) {
    const res = await h.call('POST', '/v1/webhooks', h.admin(), { url, events: ['thread.created'] });
    assertProblem(t, res, 422, 'webhook_url_refused');
    t.notOk(res.body.includes('169.254') || res.body.includes('10.0.0.1'), `the answer does not echo the target (${url})`);
  }
  for (const url of ['ftp://example.org/hook', 'https://user:pw@example.org/hook', 'https://example.org/hook#x', 'not a url']) {
    assertProblem(t, await h.call('POST', '/v1/webhooks', h.admin(), { url, events: ['thread.created'] }), 422, 'webhook_url_refused');
  }
  const rows = rowsOf<{ n: number }>(await h.app.database.db.execute(sql`select count(*)::int as n from webhook_endpoints where org_id = ${h.orgId}`));
  t.equal(Number(rows[0]!.n), 0, 'no refused endpoint was stored');
});

t.test('SSRF at delivery: an endpoint registered under the flag is not reached by an instance without it', async (t) => {
  const database = await openTestDatabase(t);
  const keys = `v1:${newKey()}`;
  const permissive = await build(t, { database, encryptionKeys: keys, env: { WEBHOOK_ALLOW_PRIVATE: 'true' } });
  const strict = await build(t, { database, encryptionKeys: keys, orgId: permissive.orgId });
  const hook = await receiver(t);
  const endpoint = await register(permissive, hook.url, ['thread.created']);
  await openThread(permissive);
  t.equal(await strict.app.webhooks.drainNow(), 0, 'the strict instance does not deliver');
  t.equal(hook.received.length, 0, 'the private address was never contacted');
  const [delivery] = (await strict.call('GET', `/v1/webhooks/${endpoint.id}/deliveries`, strict.admin())).json().items;
  t.equal(delivery.attempts[0].responseStatus, null);
  t.match(delivery.attempts[0].error, /private/, 'the log says why');
});

t.test('routes: 401, 403 for every non-admin role, cross-org 404, bad input 400', async (t) => {
  const { h } = await setup(t);
  const other = await build(t, { database: h.app.database, encryptionKeys: undefined });
  const hook = await receiver(t);
  const endpoint = await register(h, hook.url);
  const routes: [string, string, unknown?][] = [
    ['POST', '/v1/webhooks', { url: hook.url, events: ['thread.created'] }],
    ['GET', '/v1/webhooks'],
    ['GET', `/v1/webhooks/${endpoint.id}`],
    ['DELETE', `/v1/webhooks/${endpoint.id}`],
    ['GET', `/v1/webhooks/${endpoint.id}/deliveries`],
  ];
  for (const [method, url, body] of routes) {
    assertProblem(t, await h.call(method as 'GET', url, undefined, body), 401, 'unauthorized');
    for (const token of [h.staff(), h.integration(), h.patron('customer:c-77')]) {
      assertProblem(t, await h.call(method as 'GET', url, token, body), 403, 'forbidden');
    }
  }
  for (const [method, url] of routes.slice(2)) {
    assertProblem(t, await other.call(method as 'GET', url, other.admin()), 404, 'not_found');
  }
  t.equal((await other.call('GET', '/v1/webhooks', other.admin())).json().items.length, 0, "another org's list is empty");
  t.equal((await h.call('GET', `/v1/webhooks/${endpoint.id}`, h.admin())).statusCode, 200, 'control: still there for its org');

  for (const body of [
    {},
    { url: hook.url },
    { url: hook.url, events: [] },
    { url: hook.url, events: ['thread.deleted'] },
    { url: hook.url, events: ['thread.created', 'thread.created'] },
    { url: hook.url, events: ['thread.created'], secret: 'mine' },
    { url: 42, events: ['thread.created'] },
    { url: hook.url, events: ['thread.created'], description: 'line\nbreak' },
    { url: `${hook.url}/${'a'.repeat(2100)}`, events: ['thread.created'] },
  ]) {
    assertProblem(t, await h.call('POST', '/v1/webhooks', h.admin(), body), 400, 'validation_failed');
  }
  assertProblem(t, await h.call('GET', '/v1/webhooks/not-a-uuid', h.admin()), 400, 'validation_failed');
  assertProblem(t, await h.call('GET', `/v1/webhooks/${endpoint.id}/deliveries?cursor=forged`, h.admin()), 400, 'invalid_cursor');
  assertProblem(t, await h.call('GET', '/v1/webhooks?limit=0', h.admin()), 400, 'validation_failed');
});
