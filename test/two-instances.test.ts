/**
 * Two API instances on one database (and one Redis when REDIS_URL is set), each listening on
 * its own port with its own outbox worker: the external-access story runs alternating between
 * them, and 10 grants made during the run produce exactly 10 mails (the workers claim rows
 * with FOR UPDATE SKIP LOCKED, so no mail goes out twice). Sessions, lockouts and link state
 * live in the database, so either instance serves any step.
 *
 * On PostgreSQL each instance opens its own pool on a private database; on the embedded
 * defaults the two share one in-process PGlite.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { build, newKey, newOrgId, openTestDatabase } from './fixtures/build.js';
import { startSmtp, waitFor } from './fixtures/smtp.js';

t.test('the external-access story alternates between two instances; 10 grants, 10 mails', async (t) => {
  const smtp = await startSmtp();
  t.teardown(() => smtp.stop());
  const database = await openTestDatabase(t);
  const shared = {
    encryptionKeys: `v1:${newKey()}`,
    jwtSecret: randomBytes(32).toString('hex'),
    orgId: newOrgId(),
    mailPollMs: 50,
    env: {
      SMTP_URL: smtp.url,
      EXTERNAL_SESSION_RATE_LIMIT: '1000',
      ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    },
  };
  const url = (database as { url?: string }).url;
  // PostgreSQL: two pools, as two processes would have. PGlite: one in-process database.
  const instance = () => (url ? build(t, { ...shared, env: { ...shared.env, DATABASE_URL: url } }) : build(t, { ...shared, database }));
  const a = await instance();
  const b = await instance();
  const bases: string[] = [];
  for (const h of [a, b]) {
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    bases.push(`http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`);
  }
  t.not(bases[0], bases[1], 'two ports');
  let turn = 0;
  /** Each call goes to the next instance in turn. */
  const call = async (token: string | undefined, method: string, path: string, body?: unknown) => {
    const base = bases[turn++ % 2]!;
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null, base };
  };
  const staff = a.staff();
  const emails = Array.from({ length: 10 }, (_, i) => `guest${i}@example.net`);
  const grant = async (threadId: string, i: number) => {
    const res = await call(staff, 'POST', `/v1/threads/${threadId}/access-links`, { email: emails[i], expiresIn: '7d', verify: { dateOfBirth: true, phone: false } });
    t.equal(res.status, 201, `grant ${i + 1} on ${res.base}`);
    return res.json.id as string;
  };

  t.equal((await call(a.integration(), 'PUT', '/v1/customers/c-2i', { displayName: 'Two Instances', dateOfBirth: '1970-01-02' })).status, 201, 'record stored');
  const thread = await call(staff, 'POST', '/v1/threads', { record: { kind: 'customer', id: 'c-2i' }, subject: 'Across instances', body: 'Hello', replyAllowed: true });
  t.equal(thread.status, 201, 'thread opened');
  const threadId = thread.json.thread.id as string;

  const linkIds: string[] = [];
  for (let i = 0; i < 4; i++) linkIds.push(await grant(threadId, i));
  await waitFor(() => smtp.received.some((m) => m.to.includes(emails[0]!) && m.token), 15_000, 'the first access mail');
  const token = smtp.received.find((m) => m.to.includes(emails[0]!))!.token!;

  const session = await call(undefined, 'POST', '/v1/external/sessions', { token, dateOfBirth: '1970-01-02' });
  t.equal(session.status, 201, `session opened on ${session.base}`);
  const sessionToken = session.json.sessionToken as string;
  for (let i = 0; i < 2; i++) {
    const view = await call(sessionToken, 'GET', '/v1/external/thread');
    t.equal(view.status, 200, `the session is honoured on ${view.base}`);
  }
  for (let i = 4; i < 7; i++) linkIds.push(await grant(threadId, i));
  const reply = await call(sessionToken, 'POST', '/v1/external/messages', { body: 'Answered from either side' });
  t.equal(reply.status, 201, `external reply on ${reply.base}`);
  const listed = await call(staff, 'GET', `/v1/threads/${threadId}/messages`);
  t.ok(listed.json.items.some((m: { id: string }) => m.id === reply.json.id), `staff see the reply on ${listed.base}`);

  // Lockouts are shared: five wrong answers spread over both instances lock the link.
  await waitFor(() => smtp.received.some((m) => m.to.includes(emails[1]!) && m.token), 15_000, 'the second access mail');
  const lockToken = smtp.received.find((m) => m.to.includes(emails[1]!))!.token!;
  for (let i = 0; i < 5; i++) t.equal((await call(undefined, 'POST', '/v1/external/sessions', { token: lockToken, dateOfBirth: '1999-09-09' })).status, 401);
  const locked = await call(undefined, 'POST', '/v1/external/sessions', { token: lockToken, dateOfBirth: '1970-01-02' });
  t.equal(locked.status, 401, `the right answer is refused on ${locked.base} once the other instance counted the failures`);

  for (let i = 7; i < 10; i++) linkIds.push(await grant(threadId, i));
  const revoked = await call(staff, 'DELETE', `/v1/access-links/${linkIds[0]}`);
  t.equal(revoked.status, 200, `revoked on ${revoked.base}`);
  const after = await call(sessionToken, 'GET', '/v1/external/thread');
  t.equal(after.status, 401, `the revoked session fails on ${after.base}`);

  await waitFor(() => smtp.received.filter((m) => m.token).length >= 10, 20_000, 'ten access mails');
  await new Promise((r) => setTimeout(r, 1500)); // both workers keep polling: a duplicate would arrive now
  const access = smtp.received.filter((m) => m.token);
  t.equal(access.length, 10, 'exactly 10 access mails for 10 grants');
  t.equal(new Set(access.map((m) => m.messageId)).size, 10, '10 distinct Message-IDs');
  t.same(access.map((m) => m.to[0]).sort(), [...emails].sort(), 'one mail per grantee');
  t.equal(new Set(access.map((m) => m.token)).size, 10, 'each with its own token');
});

