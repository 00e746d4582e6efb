/**
 * External access, the hostile side (DESIGN section 6): every refusal answers alike, links
 * lock after repeated failures, sessions end on idle/absolute/link expiry and never reach
 * anything but their own thread, tokens have 256 bits of entropy and are stored only as
 * hashes, mails carry no PHI and notices are coalesced, and replies obey the thread's rules.
 *
 * Mail goes to a pickup folder (no SMTP_URL, MAIL_DIR = a fresh temp dir) and the outbox is
 * drained by hand, so the fake clock drives everything.
 */
import t from 'tap';
import type { Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { LightMyRequestResponse } from 'fastify';
import { build, fakeClock, type Harness } from '../../fixtures/build.js';
import { fileUpload } from '../../fixtures/multipart.js';
import { dumpAllTables, findMarkers } from '../../fixtures/raw-tables.js';
import * as f from '../../fixtures/files.js';
import { rowsOf } from '../../../src/db/util.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const RECORD = {
  displayName: 'Gina Guarantor',
  email: 'gina.holder@example.org',
  dateOfBirth: '1975-03-09',
  phone: '+1 (555) 201-7788',
};
const RIGHT = { dateOfBirth: '03/09/1975', phone: '555-201-7788' };
const WRONG = { dateOfBirth: '1975-03-10', phone: '555-201-7788' };
const NO_CHECKS = { dateOfBirth: false, phone: false };
const BOTH_CHECKS = { dateOfBirth: true, phone: true };

type FakeClock = ReturnType<typeof fakeClock>;

interface Env {
  h: Harness;
  clock: FakeClock;
  dir: string;
  staff: string;
}

interface PickedMail {
  file: string;
  to: string;
  subject: string;
  raw: string;
  /** Quoted-printable soft breaks and =3D undone. */
  text: string;
  token: string | null;
}

/** A fresh app on a fake clock, mail to a temp pickup folder, record c-1 with every PHI field. */
async function setup(t: Test, record: Record<string, string> = RECORD): Promise<Env> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sc-ext-mail-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clock = fakeClock();
  // The per-IP limit is real-time and not under test here (outbox-and-limits.test.ts covers it).
  const h = await build(t, { clock, env: { MAIL_DIR: dir, EXTERNAL_SESSION_RATE_LIMIT: '1000000' } });
  const put = await h.call('PUT', '/v1/customers/c-1', h.integration(), record);
  t.ok(put.statusCode === 200 || put.statusCode === 201, 'record c-1 upserted');
  return { h, clock, dir, staff: h.staff() };
}

async function openThread(
  env: Env,
  input: { subject?: string; body?: string; replyAllowed?: boolean; attachments?: { documentId: string }[] } = {},
): Promise<{ id: string; messageId: string }> {
  const res = await env.h.call('POST', '/v1/threads', env.staff, {
    record: { kind: 'customer', id: 'c-1' },
    subject: input.subject ?? 'Balance due',
    body: input.body ?? 'Please review the attached statement.',
    replyAllowed: input.replyAllowed ?? true,
    ...(input.attachments ? { attachments: input.attachments } : {}),
  });
  if (res.statusCode !== 201) throw new Error(`thread not created: ${res.statusCode} ${res.body}`);
  return { id: res.json().thread.id, messageId: res.json().message.id };
}

interface LinkView {
  id: string;
  state: string;
  failureCount: number;
  expiresAt: string;
  lockedUntil: string | null;
}

async function grant(
  env: Env,
  threadId: string,
  email: string,
  verify: { dateOfBirth: boolean; phone: boolean } = BOTH_CHECKS,
  expiresIn: '3d' | '7d' | '30d' = '30d',
): Promise<LinkView> {
  const res = await env.h.call('POST', `/v1/threads/${threadId}/access-links`, env.staff, { email, expiresIn, verify });
  if (res.statusCode !== 201) throw new Error(`grant failed: ${res.statusCode} ${res.body}`);
  return res.json() as LinkView;
}

async function outboxCount(h: Harness, where: 'pending' | 'notices', threadId?: string): Promise<number> {
  const db = h.app.database.db;
  const rows = rowsOf<{ n: number | string }>(
    await db.execute(
      where === 'pending'
        ? sql`select count(*)::int as n from email_outbox where org_id = ${h.orgId} and status = 'pending'`
        : sql`select count(*)::int as n from email_outbox where org_id = ${h.orgId} and thread_id = ${threadId ?? null} and kind = 'message_notice'`,
    ),
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * drainNow() until it sends nothing and none of this org's rows are pending. On a shared
 * PostgreSQL another test's outbox worker (real clock, other key ring) may claim our rows,
 * fail to open them and push them past our fake "now"; those are made due again here.
 */
async function drainAll(env: Env): Promise<number> {
  let total = 0;
  for (let pass = 0; pass < 1000; pass++) {
    const sent = await env.h.app.mail.drainNow();
    total += sent;
    if (sent > 0) continue;
    if ((await outboxCount(env.h, 'pending')) === 0) return total;
    await env.h.app.database.db.execute(
      sql`update email_outbox set next_attempt_at = ${env.clock.now().toISOString()}::timestamptz where org_id = ${env.h.orgId} and status = 'pending'`,
    );
  }
  throw new Error('the outbox did not drain');
}

function readPickup(dir: string): PickedMail[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.eml'))
    .map((file) => {
      const raw = readFileSync(path.join(dir, file), 'utf8');
      const text = raw.replace(/=\r?\n/g, '').replace(/=3D/gi, '=');
      return {
        file,
        raw,
        text,
        to: /^To:\s*(.+)$/im.exec(raw)?.[1]?.trim() ?? '',
        subject: /^Subject:\s*(.+)$/im.exec(raw)?.[1]?.trim() ?? '',
        token: /#token=([A-Za-z0-9_-]{43})/.exec(text)?.[1] ?? null,
      };
    });
}

async function tokenFor(env: Env, email: string): Promise<string> {
  await drainAll(env);
  const mail = readPickup(env.dir).find((m) => m.to.includes(email) && m.token);
  if (!mail?.token) throw new Error(`no access mail with a token for ${email}`);
  return mail.token;
}

const openSession = (h: Harness, token: string, answers: { dateOfBirth?: string; phone?: string } = {}) =>
  h.call('POST', '/v1/external/sessions', undefined, { token, ...answers });

async function sessionFor(h: Harness, token: string, answers: { dateOfBirth?: string; phone?: string } = {}): Promise<string> {
  const res = await openSession(h, token, answers);
  if (res.statusCode !== 201) throw new Error(`session not opened: ${res.statusCode} ${res.body}`);
  return res.json().sessionToken as string;
}

async function linkState(env: Env, threadId: string, linkId: string): Promise<LinkView> {
  const res = await env.h.call('GET', `/v1/threads/${threadId}/access-links?limit=100`, env.staff);
  const link = (res.json().items as LinkView[]).find((l) => l.id === linkId);
  if (!link) throw new Error(`link ${linkId} not listed`);
  return link;
}

/**
 * The raw read for the storage test. On the embedded PGlite the database holds only this
 * app's data, so it is dumpAllTables itself. On a shared PostgreSQL (DATABASE_URL) the whole
 * dump also holds every other test's rows, among them hundreds of MB of document chunks, and
 * findMarkers with 1,000+ markers over that would take hours; there the same raw read
 * (`select t::text` of every public table) is limited to this org's rows wherever the table
 * has an org_id column, and takes every row of the tables that have none.
 */
async function rawTables(h: Harness): Promise<Map<string, string[]>> {
  if (!process.env.DATABASE_URL) return dumpAllTables(h.app.database);
  const db = h.app.database.db;
  const tables = rowsOf<{ table_name: string; has_org: boolean }>(
    await db.execute(sql`
      select t.table_name,
             exists (select 1 from information_schema.columns c
                     where c.table_schema = 'public' and c.table_name = t.table_name and c.column_name = 'org_id') as has_org
      from information_schema.tables t
      where t.table_schema = 'public' and t.table_type = 'BASE TABLE'`),
  );
  const dump = new Map<string, string[]>();
  for (const { table_name: table, has_org: hasOrg } of tables) {
    const query = hasOrg
      ? sql`select t::text as row from ${sql.identifier(table)} t where t.org_id = ${h.orgId}`
      : sql`select t::text as row from ${sql.identifier(table)} t`;
    dump.set(table, rowsOf<{ row: string }>(await db.execute(query)).map((r) => r.row));
  }
  return dump;
}

const externalThread = (h: Harness, sessionToken: string) => h.call('GET', '/v1/external/thread', sessionToken);

// ---------------------------------------------------------------------------------------------

t.test('1. unknown, expired, revoked, locked and wrong checks answer byte-identical 401s', async (t) => {
  const env = await setup(t);
  const { h, clock } = env;
  const thread = await openThread(env);
  const expLink = await grant(env, thread.id, 'exp@example.net', BOTH_CHECKS, '3d');
  const revLink = await grant(env, thread.id, 'rev@example.net');
  const lockLink = await grant(env, thread.id, 'lock@example.net');
  const wrongLink = await grant(env, thread.id, 'wrong@example.net');
  const expToken = await tokenFor(env, 'exp@example.net');
  const revToken = await tokenFor(env, 'rev@example.net');
  const lockToken = await tokenFor(env, 'lock@example.net');
  const wrongToken = await tokenFor(env, 'wrong@example.net');

  const answers: Record<string, LightMyRequestResponse> = {};
  answers.unknown = await openSession(h, randomBytes(32).toString('base64url'), RIGHT);

  t.equal((await h.call('DELETE', `/v1/access-links/${revLink.id}`, env.staff)).statusCode, 200, 'revoked');
  answers.revoked = await openSession(h, revToken, RIGHT);

  for (let i = 0; i < 5; i++) t.equal((await openSession(h, lockToken, WRONG)).statusCode, 401, `wrong check ${i + 1} on the lock link`);
  answers.locked = await openSession(h, lockToken, RIGHT);
  t.equal((await linkState(env, thread.id, lockLink.id)).state, 'locked', 'listed as locked (before the clock moves on)');

  answers.wrongCheck = await openSession(h, wrongToken, WRONG);

  clock.advance(3 * DAY + 1000);
  answers.expired = await openSession(h, expToken, RIGHT);

  const reference = answers.unknown.body;
  for (const [what, res] of Object.entries(answers)) {
    t.equal(res.statusCode, 401, `${what}: 401`);
    t.equal(res.json().code, 'external_access_denied', `${what}: external_access_denied`);
    t.equal(res.body, reference, `${what}: body byte-identical to the unknown-token answer`);
    t.equal(res.headers['content-type'], answers.unknown.headers['content-type'], `${what}: same content type`);
  }
  t.notMatch(reference, /instance/, 'no per-request instance in the denial');

  // The states behind the identical answers are visible to staff only.
  t.equal((await linkState(env, thread.id, expLink.id)).state, 'expired');
  t.equal((await linkState(env, thread.id, revLink.id)).state, 'revoked');
  t.equal((await linkState(env, thread.id, wrongLink.id)).state, 'active');
  // Control: the active link still opens with the right answers.
  t.equal((await openSession(h, wrongToken, RIGHT)).statusCode, 201, 'control: correct answers open the active link');
});

t.test('2. lockout: 5 consecutive failures lock a while, 10 in total lock for good', async (t) => {
  const env = await setup(t);
  const { h, clock } = env;
  const thread = await openThread(env);

  await t.test('temporary lock after 5 consecutive failures', async (t) => {
    const link = await grant(env, thread.id, 'temp-lock@example.net');
    const token = await tokenFor(env, 'temp-lock@example.net');
    for (let i = 0; i < 5; i++) t.equal((await openSession(h, token, WRONG)).statusCode, 401, `wrong check ${i + 1}`);
    const sixth = await openSession(h, token, RIGHT);
    t.equal(sixth.statusCode, 401, 'the 6th attempt with correct answers is refused');
    t.equal(sixth.json().code, 'external_access_denied');

    const view = await linkState(env, thread.id, link.id);
    t.equal(view.state, 'locked', 'listed as locked');
    t.equal(view.failureCount, 5, 'failureCount 5');
    t.ok(view.lockedUntil, 'lockedUntil is set');

    const audit = await h.call('GET', `/v1/audit-events?action=verification.locked&threadId=${thread.id}&limit=100`, h.admin());
    t.equal(audit.statusCode, 200);
    const locks = (audit.json().items as { linkId: string; action: string; outcome: string; reason: string; ip: string | null }[]).filter(
      (e) => e.linkId === link.id,
    );
    t.equal(locks.length, 1, 'one verification.locked event for the link');
    t.match(locks[0], { action: 'verification.locked', outcome: 'denied', reason: 'consecutive_failures' });
    t.ok(locks[0]?.ip, 'the lock event carries the IP');
    const failures = await h.call('GET', `/v1/audit-events?action=verification.failed&threadId=${thread.id}&limit=100`, h.admin());
    t.equal(
      (failures.json().items as { linkId: string; outcome: string }[]).filter((e) => e.linkId === link.id && e.outcome === 'failure').length,
      5,
      'each failed check is audited',
    );

    clock.advance(14 * MINUTE);
    t.equal((await openSession(h, token, RIGHT)).statusCode, 401, 'still locked after 14 minutes');
    clock.advance(MINUTE + 1000);
    t.equal((await openSession(h, token, RIGHT)).statusCode, 201, 'after 15 min + 1 s the correct answers open a session');
    t.equal((await linkState(env, thread.id, link.id)).state, 'active', 'active again');
  });

  await t.test('permanent lock after 10 failures in total', async (t) => {
    const link = await grant(env, thread.id, 'perm-lock@example.net');
    const token = await tokenFor(env, 'perm-lock@example.net');
    for (let i = 0; i < 5; i++) t.equal((await openSession(h, token, WRONG)).statusCode, 401, `wrong check ${i + 1}`);
    t.equal((await linkState(env, thread.id, link.id)).state, 'locked', 'locked for a while');
    clock.advance(15 * MINUTE + 1000);
    for (let i = 5; i < 10; i++) t.equal((await openSession(h, token, WRONG)).statusCode, 401, `wrong check ${i + 1}`);

    let view = await linkState(env, thread.id, link.id);
    t.equal(view.state, 'locked', 'locked after 10 failures');
    t.equal(view.failureCount, 10, 'failureCount 10');

    clock.advance(HOUR);
    const late = await openSession(h, token, RIGHT);
    t.equal(late.statusCode, 401, 'correct answers are refused an hour later');
    t.equal(late.json().code, 'external_access_denied');
    view = await linkState(env, thread.id, link.id);
    t.equal(view.state, 'locked', 'the state stays locked');
    t.equal(view.failureCount, 10);

    const audit = await h.call('GET', `/v1/audit-events?action=verification.locked&threadId=${thread.id}&limit=100`, h.admin());
    const reasons = (audit.json().items as { linkId: string; reason: string }[]).filter((e) => e.linkId === link.id).map((e) => e.reason);
    t.same(reasons, ['consecutive_failures', 'total_failures'], 'both lockouts are audited');
  });
});

t.test('3. sessions: idle, absolute and link expiry; one thread only; never a staff or patron route', async (t) => {
  const env = await setup(t);
  const { h, clock } = env;
  const thread = await openThread(env);
  let n = 0;
  const newSession = async (expiresIn: '3d' | '30d' = '30d') => {
    const email = `session-${++n}@example.net`;
    const link = await grant(env, thread.id, email, NO_CHECKS, expiresIn);
    return { link, token: await tokenFor(env, email) };
  };

  await t.test('idle expiry after 30 minutes without requests', async (t) => {
    const { token } = await newSession();
    const session = await sessionFor(h, token);
    t.equal((await externalThread(h, session)).statusCode, 200, 'fresh session works');
    clock.advance(31 * MINUTE);
    const res = await externalThread(h, session);
    t.equal(res.statusCode, 401, 'idle for 31 minutes: 401');
  });

  await t.test('a request every 20 minutes keeps it alive past 31 minutes', async (t) => {
    const { token } = await newSession();
    const session = await sessionFor(h, token);
    for (const elapsed of [20, 40, 60]) {
      clock.advance(20 * MINUTE);
      t.equal((await externalThread(h, session)).statusCode, 200, `alive at ${elapsed} minutes`);
    }
  });

  await t.test('absolute expiry after 12 hours even when busy', async (t) => {
    const { token } = await newSession();
    const session = await sessionFor(h, token);
    const statuses: number[] = [];
    const expected: number[] = [];
    for (let elapsed = 20 * MINUTE; elapsed <= 12 * HOUR; elapsed += 20 * MINUTE) {
      clock.advance(20 * MINUTE);
      statuses.push((await externalThread(h, session)).statusCode);
      expected.push(elapsed < 12 * HOUR ? 200 : 401);
    }
    t.same(statuses, expected, '200 every 20 minutes until 12 h, then 401');
    clock.advance(20 * MINUTE);
    t.equal((await externalThread(h, session)).statusCode, 401, 'and it stays ended');
  });

  await t.test("a session ends with its link's expiry even when busy", async (t) => {
    const { link, token } = await newSession('3d');
    clock.advance(3 * DAY - HOUR);
    const opened = await openSession(h, token);
    t.equal(opened.statusCode, 201, 'opened 1 hour before the link expires');
    t.equal(opened.json().expiresAt, link.expiresAt, "the session's expiresAt is the link's");
    const session = opened.json().sessionToken as string;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      clock.advance(20 * MINUTE);
      statuses.push((await externalThread(h, session)).statusCode);
    }
    t.same(statuses, [200, 200, 401], 'busy every 20 minutes, ends when the link expires');
  });

  await t.test("link A's session cannot reach link B's thread", async (t) => {
    const uploadDoc = async (name: string) => {
      const up = fileUpload(name, f.pdf());
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/customers/c-1/documents',
        headers: { ...up.headers, authorization: `Bearer ${env.staff}` },
        payload: up.payload,
      });
      if (res.statusCode !== 201) throw new Error(`upload failed: ${res.statusCode} ${res.body}`);
      return res.json().id as string;
    };
    const docA = await uploadDoc('a.pdf');
    const docB = await uploadDoc('b.pdf');
    // Both threads live on the same record: only the attachment decides.
    const threadA = await openThread(env, { subject: 'Thread A', body: 'For A', attachments: [{ documentId: docA }] });
    const threadB = await openThread(env, { subject: 'Thread B', body: 'For B', attachments: [{ documentId: docB }] });
    await grant(env, threadA.id, 'link-a@example.net', NO_CHECKS);
    await grant(env, threadB.id, 'link-b@example.net', NO_CHECKS);
    const sessionA = await sessionFor(h, await tokenFor(env, 'link-a@example.net'));
    const sessionB = await sessionFor(h, await tokenFor(env, 'link-b@example.net'));

    const seen = await externalThread(h, sessionA);
    t.equal(seen.statusCode, 200);
    t.equal(seen.json().id, threadA.id, "A's session sees A's thread");
    t.equal((await externalThread(h, sessionB)).json().id, threadB.id, "B's session sees B's thread");
    t.equal((await h.call('GET', `/v1/external/documents/${docA}/content`, sessionA)).statusCode, 200, "control: A's own attachment downloads");
    const cross = await h.call('GET', `/v1/external/documents/${docB}/content`, sessionA);
    t.equal(cross.statusCode, 404, "B's attachment is 404 for A's session");
    t.equal(cross.json().code, 'not_found');
    const messagesA = (await h.call('GET', '/v1/external/messages', sessionA)).json().items as { body: string }[];
    t.same(
      messagesA.map((m) => m.body),
      ['For A'],
      "A's session lists only A's messages",
    );
  });

  await t.test('a session token never opens a staff or patron route', async (t) => {
    const { token } = await newSession();
    const session = await sessionFor(h, token);
    for (const url of [`/v1/threads/${thread.id}`, '/v1/customers/c-1', '/v1/me/threads']) {
      const res = await h.call('GET', url, session);
      t.equal(res.statusCode, 401, `GET ${url} with the session as bearer: 401`);
    }
    const viaCookie = await h.app.inject({ method: 'GET', url: `/v1/threads/${thread.id}`, headers: { cookie: `__Host-sc_ext=${session}` } });
    t.equal(viaCookie.statusCode, 401, 'nor with the session cookie');
    t.equal((await externalThread(h, session)).statusCode, 200, 'control: the session itself is alive');
  });
});

t.test('4. entropy and storage: 1,000 grants, distinct 256-bit tokens, only hashes at rest', async (t) => {
  const env = await setup(t);
  const { h } = env;
  const thread = await openThread(env);
  const started = Date.now();
  const linkIdByEmail = new Map<string, string>();
  for (let i = 0; i < 1000; i++) {
    const email = `bulk-${i}@example.net`;
    const link = await grant(env, thread.id, email, NO_CHECKS);
    linkIdByEmail.set(email, link.id);
    if ((i + 1) % 250 === 0) t.comment(`${i + 1} grants after ${Date.now() - started} ms`);
  }
  const granted = Date.now();
  let sent = 0;
  for (;;) {
    const n = await h.app.mail.drainNow();
    sent += n;
    if (n === 0) break;
  }
  sent += await drainAll(env); // a no-op unless a foreign worker disturbed our rows
  const drained = Date.now();
  t.ok(sent >= 1000, `the outbox sent the 1,000 access mails (and the thread notice): ${sent}`);

  const tokenByEmail = new Map<string, string>();
  for (const mail of readPickup(env.dir)) {
    if (mail.token && linkIdByEmail.has(mail.to)) tokenByEmail.set(mail.to, mail.token);
  }
  const tokens = [...tokenByEmail.values()];
  t.equal(tokens.length, 1000, '1,000 access mails with a token');
  t.equal(new Set(tokens).size, 1000, '1,000 distinct tokens');
  t.ok(
    tokens.every((tok) => /^[A-Za-z0-9_-]{43}$/.test(tok) && Buffer.from(tok, 'base64url').length === 32),
    'each token is 43 base64url characters (256 bits)',
  );

  const sessionTokens: string[] = [];
  for (const email of ['bulk-0@example.net', 'bulk-500@example.net', 'bulk-999@example.net']) {
    sessionTokens.push(await sessionFor(h, tokenByEmail.get(email)!));
  }
  t.equal(new Set(sessionTokens).size, 3, 'three distinct session tokens');

  const dump = await rawTables(h);
  const dumped = Date.now();
  t.ok((dump.get('access_links')?.length ?? 0) >= 1000, `the raw read holds the link rows (${[...dump.values()].reduce((n, rows) => n + rows.length, 0)} rows in ${dump.size} tables)`);
  const hits = findMarkers(dump, [...tokens, ...sessionTokens]);
  const searched = Date.now();
  t.same(hits, [], 'no link token or session token anywhere in the raw tables');

  const db = h.app.database.db;
  const sample = ['bulk-0@example.net', 'bulk-1@example.net', 'bulk-250@example.net', 'bulk-998@example.net', 'bulk-999@example.net'];
  for (const email of sample) {
    const rows = rowsOf<{ token_hash: string }>(await db.execute(sql`select token_hash from access_links where id = ${linkIdByEmail.get(email)!}`));
    const expected = createHash('sha256').update(tokenByEmail.get(email)!, 'utf8').digest('hex');
    t.equal(rows[0]?.token_hash, expected, `access_links.token_hash = sha256(token) for ${email}`);
  }
  for (const sessionToken of sessionTokens) {
    const hash = createHash('sha256').update(sessionToken, 'utf8').digest('hex');
    const rows = rowsOf<{ n: number }>(await db.execute(sql`select count(*)::int as n from external_sessions where token_hash = ${hash} and org_id = ${h.orgId}`));
    t.equal(Number(rows[0]?.n), 1, 'external_sessions holds the session token hash');
  }
  const wiped = rowsOf<{ n: number }>(
    await db.execute(sql`select count(*)::int as n from email_outbox where org_id = ${h.orgId} and (status <> 'sent' or body_sealed is not null)`),
  );
  t.equal(Number(wiped[0]?.n), 0, 'every outbox row is sent and its body wiped');

  t.comment(
    `timings: 1,000 grants ${granted - started} ms, drain ${drained - granted} ms, dump ${dumped - drained} ms (incl. 3 sessions), ` +
      `findMarkers ${searched - dumped} ms, total ${searched - started} ms`,
  );
});

t.test('5. mails hold no PHI; notices are coalesced per 15 minutes and never sent for replies', async (t) => {
  const env = await setup(t);
  const { h, clock } = env;
  const subject = 'Overdue balance for the March statement';
  const bodies = ['Please review the attached March statement.'];
  const thread = await openThread(env, { subject, body: bodies[0], replyAllowed: true });
  const notices = () => outboxCount(h, 'notices', thread.id);
  t.equal(await notices(), 1, 'the first staff message (thread creation) queues one notice');

  for (let i = 1; i <= 3; i++) {
    clock.advance(MINUTE);
    const body = `Staff follow-up number ${i} about the statement.`;
    bodies.push(body);
    t.equal((await h.call('POST', `/v1/threads/${thread.id}/messages`, env.staff, { body })).statusCode, 201);
  }
  t.equal(await notices(), 1, 'three more staff messages within 15 minutes add no notice');

  clock.advance(12 * MINUTE + 1000); // 15 min + 1 s after the first notice
  bodies.push('Staff message after the quiet period.');
  t.equal((await h.call('POST', `/v1/threads/${thread.id}/messages`, env.staff, { body: bodies.at(-1) })).statusCode, 201);
  t.equal(await notices(), 2, 'after 15 minutes the next staff message adds one');

  // Outside any coalescing window, so a notice for a reply could not hide behind an earlier one.
  clock.advance(16 * MINUTE);
  bodies.push('Patron reply with details.');
  const patronReply = await h.call('POST', `/v1/threads/${thread.id}/messages`, h.patron('customer:c-1'), { body: bodies.at(-1) });
  t.equal(patronReply.statusCode, 201, 'patron replied');
  t.equal(await notices(), 2, "a patron's reply sends no notice");

  await grant(env, thread.id, 'outside@example.net', BOTH_CHECKS);
  const session = await sessionFor(h, await tokenFor(env, 'outside@example.net'), RIGHT);
  bodies.push('External reply from the guarantor.');
  const externalReply = await h.call('POST', '/v1/external/messages', session, { body: bodies.at(-1) });
  t.equal(externalReply.statusCode, 201, 'external recipient replied');
  t.equal(await notices(), 2, 'an external reply sends no notice');

  await drainAll(env);
  const mails = readPickup(env.dir);
  const noticeMails = mails.filter((m) => m.to.includes(RECORD.email));
  t.equal(noticeMails.length, 2, "two notices reached the record's email");
  t.ok(
    noticeMails.every((m) => m.token === null),
    'notices carry no token',
  );
  const linkMails = mails.filter((m) => m.to.includes('outside@example.net'));
  t.equal(linkMails.length, 1, 'one access-link mail');
  t.equal(mails.length, 3, 'no other mail');

  const forbidden = [
    subject,
    'March statement',
    ...bodies,
    RECORD.displayName,
    'Gina',
    'Guarantor',
    '1975-03-09',
    '03/09/1975',
    '3/9/1975',
    '5552017788',
    '555-201-7788',
    '(555) 201-7788',
    '201-7788',
    '2017788',
  ];
  for (const mail of mails) {
    const kind = mail.token ? 'access-link mail' : 'notice';
    t.equal(mail.subject, 'You have a secure message', `${kind}: generic subject`);
    const leaks = forbidden.filter((phi) => mail.raw.includes(phi) || mail.text.includes(phi));
    t.same(leaks, [], `${kind} to ${mail.to}: no subject, body, name, date of birth or phone`);
  }
});

t.test('6. external replies obey replyAllowed and the thread state', async (t) => {
  const env = await setup(t);
  const { h } = env;

  const noReply = await openThread(env, { subject: 'No replies here', replyAllowed: false });
  await grant(env, noReply.id, 'no-reply@example.net', NO_CHECKS);
  const s1 = await sessionFor(h, await tokenFor(env, 'no-reply@example.net'));
  const refused = await h.call('POST', '/v1/external/messages', s1, { body: 'May I answer?' });
  t.equal(refused.statusCode, 403, 'replyAllowed false: 403');
  t.equal(refused.json().code, 'reply_not_allowed');

  const closing = await openThread(env, { subject: 'Will close', replyAllowed: true });
  await grant(env, closing.id, 'closing@example.net', NO_CHECKS);
  const s2 = await sessionFor(h, await tokenFor(env, 'closing@example.net'));
  t.equal((await h.call('POST', '/v1/external/messages', s2, { body: 'Before closing' })).statusCode, 201, 'control: open thread accepts a reply');
  const patch = await h.call('PATCH', `/v1/threads/${closing.id}`, env.staff, { state: 'closed' });
  t.equal(patch.statusCode, 200, 'staff closed the thread');
  const closed = await h.call('POST', '/v1/external/messages', s2, { body: 'After closing' });
  t.equal(closed.statusCode, 403, 'closed thread: 403');
  t.equal(closed.json().code, 'thread_closed');

  const staffView = (await h.call('GET', `/v1/threads/${closing.id}/messages`, env.staff)).json().items as { body: string }[];
  t.same(
    staffView.map((m) => m.body),
    ['Please review the attached statement.', 'Before closing'],
    'nothing refused was stored',
  );
});
