/**
 * The client's acceptance test: the REAL server (`node --import tsx src/server.ts`) on a free
 * port, driven only through @securecare/messaging-sdk. No app internals, no SQL: what this test
 * knows is the contract, the SDK, the JWT claims and the mail pickup folder.
 *
 * The story: an integration syncs a customer; staff upload a document to the record and open a
 * thread with it attached; the patron lists its threads and reads; staff see readAt; staff grant
 * an access link; the token comes from the mail; the external recipient opens a session with the
 * checks, reads and pages the messages, downloads the attachment, uploads a file and replies;
 * staff revoke the link and the session is over (401); the admin's NDJSON audit export holds
 * access_link.revoked.
 *
 * DATABASE_URL and REDIS_URL are passed through when set, so CI's PostgreSQL run exercises
 * PostgreSQL and Redis; without them the server runs on PGlite in a temporary DATA_DIR.
 */
import t from 'tap';
import type { Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSigner } from 'fast-jwt';
import postgres from 'postgres';
import { assertContractLog, contractFetch, contractFromSpec, type ContractLog } from '../fixtures/contract.js';
import {
  createClient,
  isApiError,
  openExternalSession,
  SecureCareApiError,
  type AuditEvent,
  type Message,
} from '../../openapi/sdk/src/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIL_WAIT_MS = 30_000; // the worker polls every second; on a shared PostgreSQL another
// test's worker (other keys) may claim our mail once and push it back 5 s: this covers two such.

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

interface RunningServer {
  baseUrl: string;
  jwtSecret: string;
  mailDir: string;
  output: () => string;
  /** SIGTERM, then SIGKILL after 12 s; resolves with the exit code (signal name if killed). */
  stop: () => Promise<number | string | null>;
}

/**
 * On PostgreSQL the server gets a database of its own (dropped afterwards): its outbox worker
 * runs for the whole test and would otherwise meet other tests' mail, sealed under their keys.
 */
async function privateDatabaseUrl(): Promise<string | undefined> {
  const base = process.env.DATABASE_URL;
  if (!base) return undefined;
  const name = `sc_sdk_${randomBytes(6).toString('hex')}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  t.teardown(async () => {
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end();
  });
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

async function startServer(): Promise<RunningServer> {
  const databaseUrl = await privateDatabaseUrl();
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sc-sdk-data-'));
  const mailDir = mkdtempSync(path.join(tmpdir(), 'sc-sdk-mail-'));
  const jwtSecret = randomBytes(32).toString('hex');
  // A clean environment: only what a process needs, the service's settings for this run, and
  // the database and Redis of the surrounding run (never other service settings of the shell).
  const inherited = Object.fromEntries(
    ['PATH', 'HOME', 'TMPDIR', 'LANG'].flatMap((name) => (process.env[name] !== undefined ? [[name, process.env[name]!]] : [])),
  );
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    MAIL_DIR: mailDir,
    JWT_SECRET: jwtSecret,
    ENCRYPTION_KEYS: `v1:${randomBytes(32).toString('base64')}`,
    AUDIT_CHECKPOINT_KEY: randomBytes(32).toString('base64'),
    EXTERNAL_SESSION_RATE_LIMIT: '1000',
    AUDIT_CHECKPOINT_MINUTES: '0',
    LOG_LEVEL: 'warn',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
  };
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exitCode: number | string | null | undefined;
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => {
      exitCode = code ?? signal;
      resolve(exitCode);
    }),
  );

  const baseUrl = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (exitCode === undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(mailDir, { recursive: true, force: true });
    return exitCode ?? null;
  };

  const deadline = Date.now() + 45_000;
  for (;;) {
    if (exitCode !== undefined) {
      await stop();
      throw new Error(`the server exited (${exitCode}) before answering /healthz:\n${output}`);
    }
    try {
      const res = await fetch(`${baseUrl}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the server did not answer /healthz within 45 s:\n${output}`);
    }
    await sleep(100);
  }
  return { baseUrl, jwtSecret, mailDir, output: () => output, stop };
}

/** Newest-first .eml files in the pickup folder until one holds an access-link token. */
async function tokenFromMail(mailDir: string): Promise<string> {
  const deadline = Date.now() + MAIL_WAIT_MS;
  for (;;) {
    const files = readdirSync(mailDir)
      .filter((name) => name.endsWith('.eml'))
      .map((name) => ({ file: path.join(mailDir, name), mtime: statSync(path.join(mailDir, name)).mtimeMs }))
      .sort((a, b) => b.mtime - a.mtime);
    for (const { file } of files) {
      // Undo quoted-printable soft line breaks and the encoded '=' before matching.
      const text = readFileSync(file, 'utf8').replace(/=\r?\n/g, '').replace(/=3D/gi, '=');
      const token = /#token=([A-Za-z0-9_-]{43})/.exec(text)?.[1];
      if (token) return token;
    }
    if (Date.now() > deadline) throw new Error(`no access-link mail in ${mailDir} after ${MAIL_WAIT_MS / 1000} s (files: ${files.length})`);
    await sleep(200);
  }
}

/** A PDF with a binary stream big enough to span several 64 KiB encrypted chunks. */
function samplePdf(): Uint8Array {
  const payload = randomBytes(150_000);
  return new Uint8Array(
    Buffer.concat([
      Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length 150000 >>\nstream\n', 'latin1'),
      payload,
      Buffer.from('\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n', 'latin1'),
    ]),
  );
}

async function rejectsWith(t: Test, pending: Promise<unknown>, status: number, code: string, message: string) {
  try {
    await pending;
    t.fail(`${message}: expected ${status} ${code}, got success`);
  } catch (error) {
    t.ok(error instanceof SecureCareApiError, `${message}: a SecureCareApiError`);
    t.match(isApiError(error) ? { status: error.status, code: error.code } : { error: String(error) }, { status, code }, message);
  }
}

const started = Date.now();
const server = await startServer();
t.teardown(() => server.stop());
t.comment(`server up in ${Date.now() - started} ms on ${server.baseUrl} (${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'})`);

const sign = createSigner({ key: server.jwtSecret, algorithm: 'HS256', expiresIn: 600_000 });
const org = `sdk-${randomUUID()}`;
const customerId = `c-${randomUUID().slice(0, 8)}`;
// Every answer the SDK receives is checked against the committed contract (the server runs in
// another process, so build(t)'s guard cannot see it); the story test asserts the log at its end.
const contractLog: ContractLog = { checked: 0, mismatches: [] };
const checkedFetch = contractFetch(contractFromSpec(JSON.parse(readFileSync(path.join(ROOT, 'openapi/openapi.json'), 'utf8'))), contractLog);
const endpoint = { baseUrl: server.baseUrl, fetch: checkedFetch };
const as = (claims: { sub: string; role: 'integration' | 'staff' | 'admin' | 'patron'; name: string; rec?: string }) =>
  createClient({ ...endpoint, token: sign({ ...claims, org }) });

const integration = as({ sub: 'ehr-sync', role: 'integration', name: 'EHR sync' });
const staff = as({ sub: 'staff-alice', role: 'staff', name: 'Alice Staff' });
const admin = as({ sub: 'admin-carol', role: 'admin', name: 'Carol Admin' });
const patron = as({ sub: 'patron-jane', role: 'patron', name: 'Jane Roe', rec: `customer:${customerId}` });

t.test('the product story, only through the SDK', async (t) => {
  t.teardown(() => {
    if (t.passing()) return;
    t.comment(`server output (tail):\n${server.output().slice(-4000)}`);
  });

  // ---------------------------------------------------------------- records
  const record = await integration.upsertRecord('customer', customerId, {
    displayName: 'Jane Roe',
    email: 'jane.roe@example.org',
    dateOfBirth: '1980-02-03',
    phone: '+1 555 010 0000',
  });
  t.match(record, { kind: 'customer', id: customerId, displayName: 'Jane Roe', dateOfBirth: '1980-02-03', phone: '+1 555 010 0000' }, 'the integration upserts the customer');
  t.equal((await staff.getRecord('customer', customerId)).email, 'jane.roe@example.org', 'staff read it back');

  // ---------------------------------------------------------------- upload, then attach
  const pdf = samplePdf();
  const doc = await staff.uploadDocument('customer', customerId, 'care-plan.pdf', pdf, { contentType: 'application/pdf' });
  t.match(doc, { name: 'care-plan.pdf', mediaType: 'application/pdf', size: pdf.byteLength, owner: { kind: 'record', record: { kind: 'customer', id: customerId } } }, 'the document lands on the record');

  const created = await staff.openThread({ kind: 'customer', id: customerId }, 'Your care plan', 'Here is your care plan; please read it before Tuesday.', {
    replyAllowed: true,
    attachments: [doc],
  });
  const threadId = created.thread.id;
  t.match(created.thread, { subject: 'Your care plan', replyAllowed: true, state: 'open', record: { kind: 'customer', id: customerId } }, 'staff open a thread');
  t.same(
    created.message.attachments.map((a) => [a.id, a.name, a.size]),
    [[doc.id, 'care-plan.pdf', pdf.byteLength]],
    'the first message carries the attachment by reference',
  );
  // A private library document: the `private` field goes before the file part, so it counts.
  const internal = await staff.uploadLibraryDocument('internal-policy.txt', new TextEncoder().encode('Staff only.\n'), { private: true });
  t.match(internal, { private: true, owner: { kind: 'library' } }, 'a private library upload is private');
  await rejectsWith(t, staff.sendMessage(threadId, 'See the policy.', { attachments: [internal] }), 422, 'attachment_private', 'and cannot be attached');

  const followUps: Message[] = [];
  for (const body of ['Tuesday at 10:00 works for us.', 'Bring your insurance card.', 'Reply here with any question.']) {
    followUps.push(await staff.sendMessage(threadId, body));
  }
  const lastStaffMessage = followUps.at(-1)!;

  // ---------------------------------------------------------------- the patron reads; staff see readAt
  const mine = [];
  for await (const page of patron.pageMyThreads()) mine.push(...page.items);
  const listed = mine.find((thread) => thread.id === threadId);
  t.ok(listed, 'the patron sees the thread in /v1/me/threads');
  t.equal(listed?.unreadCount, 4, 'with four unread messages');
  const receipt = await patron.markRead(threadId, lastStaffMessage.id);
  t.equal(receipt.messageIds.length, 4, 'marking up to the last one reads all four');
  t.ok(receipt.readAt, 'the receipt carries readAt');
  const afterRead = await patron.listMyThreads();
  t.equal(afterRead.items.find((thread) => thread.id === threadId)?.unreadCount, 0, 'nothing is unread for the patron');
  const staffView = await staff.listMessages(threadId);
  t.ok(staffView.items.length === 4 && staffView.items.every((m) => m.readAt !== null), 'staff see readAt on every message');
  t.equal(staffView.items[0]?.readAt, receipt.readAt, 'readAt is the patron read time');

  // ---------------------------------------------------------------- errors are typed
  await rejectsWith(t, staff.getThread(randomUUID()), 404, 'not_found', 'an unknown thread');
  await rejectsWith(t, patron.openThread({ kind: 'customer', id: customerId }, 'x', 'y', { replyAllowed: false }), 403, 'forbidden', 'a patron cannot open threads');

  // ---------------------------------------------------------------- grant an access link; the token comes by mail
  const link = await staff.grantLink(threadId, { email: 'guardian@example.net', expiresIn: '7d', verify: { dateOfBirth: true, phone: true } });
  t.match(link, { threadId, email: 'guardian@example.net', state: 'active', verify: { dateOfBirth: true, phone: true }, revokedAt: null }, 'staff grant a link');
  t.notOk('token' in link, 'the answer never holds the token');
  const mailStarted = Date.now();
  const token = await tokenFromMail(server.mailDir);
  t.comment(`access mail after ${Date.now() - mailStarted} ms`);

  await rejectsWith(
    t,
    openExternalSession(endpoint, token, { dateOfBirth: '1980-02-04', phone: '555 010 0000' }),
    401,
    'external_access_denied',
    'a wrong date of birth is refused',
  );
  const external = await openExternalSession(endpoint, token, { dateOfBirth: '02/03/1980', phone: '(555) 010-0000' });
  t.equal(external.session.thread.id, threadId, 'the checks open a session on the thread');
  t.match(external.sessionToken, /^[A-Za-z0-9_-]{43}$/, 'with a bearer session token');

  // ---------------------------------------------------------------- the external recipient reads, pages, downloads, replies
  t.equal((await external.getThread()).subject, 'Your care plan', 'the external recipient reads the thread');
  const pages: string[][] = [];
  for await (const page of external.pageMessages({ limit: 2 })) pages.push(page.items.map((m) => m.id));
  t.same(pages, [[created.message.id, followUps[0]!.id], [followUps[1]!.id, followUps[2]!.id]], 'pages of two, oldest first, until nextCursor is null');
  const staffPages: number[] = [];
  for await (const page of staff.pageMessages(threadId, { limit: 3 })) staffPages.push(page.items.length);
  t.same(staffPages, [3, 1], 'staff page through the same messages');

  const downloaded = await external.downloadDocument(doc.id);
  t.ok(Buffer.from(downloaded).equals(Buffer.from(pdf)), 'the external recipient downloads the attachment, byte for byte');
  t.ok(Buffer.from(await staff.downloadDocument(doc.id)).equals(Buffer.from(pdf)), 'so do staff');
  t.ok(Buffer.from(await patron.downloadDocument(doc.id)).equals(Buffer.from(pdf)), 'and the patron');

  const signed = new TextEncoder().encode('Signed consent, Jane Roe guardian.\n');
  const upload = await external.uploadDocument('consent.txt', signed);
  t.match(upload, { source: 'external_reply', owner: { kind: 'record', record: { kind: 'customer', id: customerId } } }, 'an external upload lands on the record');
  const reply = await external.replyAsExternal('Thank you, the signed consent is attached.', [upload]);
  t.match(reply, { author: { kind: 'external' }, body: 'Thank you, the signed consent is attached.' }, 'the external recipient replies');
  t.same(reply.attachments.map((a) => a.id), [upload.id], 'with the attachment');
  t.equal((await external.markRead(lastStaffMessage.id)).messageIds.length, 0, 'the patron already read them; readAt never moves');

  const seenByStaff: Message[] = [];
  for await (const page of staff.pageMessages(threadId)) seenByStaff.push(...page.items);
  const replyAsSeen = seenByStaff.at(-1);
  t.match(replyAsSeen, { id: reply.id, author: { kind: 'external', name: 'guardian@example.net' }, readAt: null }, 'staff see the reply, unread');
  t.ok(Buffer.from(await staff.downloadDocument(upload.id)).equals(Buffer.from(signed)), 'staff download the external upload');
  t.equal((await staff.markRead(threadId, reply.id)).messageIds[0], reply.id, 'staff mark the reply read');

  // ---------------------------------------------------------------- revoke: the session ends at once
  const revoked = await staff.revokeLink(link.id);
  t.equal(revoked.state, 'revoked', 'staff revoke the link');
  await rejectsWith(t, external.getThread(), 401, 'unauthorized', 'the session fails with 401 after revocation');
  await rejectsWith(t, external.replyAsExternal('Still here?'), 401, 'unauthorized', 'and cannot reply');
  await rejectsWith(
    t,
    openExternalSession(endpoint, token, { dateOfBirth: '1980-02-03', phone: '555 010 0000' }),
    401,
    'external_access_denied',
    'the link cannot be opened again',
  );
  const links = await staff.listLinks(threadId);
  t.same(links.items.map((l) => [l.id, l.state]), [[link.id, 'revoked']], 'the link shows as revoked');

  // ---------------------------------------------------------------- the audit export
  const events: AuditEvent[] = [];
  for await (const event of admin.exportAuditEvents({ threadId })) events.push(event);
  const actions = events.map((e) => e.action);
  t.ok(events.some((e) => e.action === 'access_link.revoked' && e.linkId === link.id && e.actor.id === 'staff-alice'), 'the NDJSON export holds access_link.revoked');
  for (const action of ['thread.created', 'message.read', 'access_link.granted', 'verification.failed', 'verification.succeeded', 'access_link.opened']) {
    t.ok(actions.includes(action), `and ${action}`);
  }
  t.ok(events.every((e, i) => i === 0 || e.seq > events[i - 1]!.seq), 'in chain order');
  await rejectsWith(t, (async () => {
    for await (const _ of staff.exportAuditEvents({ threadId })) break;
  })(), 403, 'forbidden', 'staff may not export the audit trail');
  assertContractLog(t, contractLog);
});

t.test('the server stops on SIGTERM', async (t) => {
  t.equal(await server.stop(), 0, 'a graceful exit, code 0');
  const error = await staff.getThread(randomUUID()).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(error, 'nothing answers afterwards');
  t.notOk(isApiError(error), 'a network error, not an API answer');
});
