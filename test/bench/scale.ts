/**
 * `npm run bench:scale`: do list costs stay flat as one organization's data grows?
 *
 * In a database of its own (sc_bench_scale on the DATABASE_URL server, dropped afterwards) it
 * seeds one org straight through the Drizzle schema with real envelopes and sealed fields
 * (the server decrypts every listed row), measures, grows the org, and measures again:
 *
 *   small: 100 customers, 1,000 threads, ~2,000 messages (1,000 in thread T0), 1,000 audit events
 *   large: 10,000 customers, 100,000 threads, 1,000,000 messages (100,000 in T0), 1,000,000 audit events
 *
 * Measured through a real server (p50/p95 of 25 sequential requests after warm-up): the first
 * page of T0's messages, a deep cursor page of them (page 20 when small, the 500th when large:
 * keyset pagination should not care), the Secure Messages tab of T0's customer with unread
 * counts, and the audit trail's first and deep pages. Target: large p50 within 1.5x of small.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { sql as dsql } from 'drizzle-orm';
import { openDatabase, type Database } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { auditChainHeads, auditEvents, messages, records, threads } from '../../src/db/schema.js';
import { KeyRing, recordFieldAad, recordKeyContext, threadKeyContext, threadSubjectAad, type DataKey } from '../../src/lib/crypto/index.js';
import { newId } from '../../src/lib/ids.js';
import { buildMessageRow } from '../../src/modules/messages/message-codec.js';
import { chainHash } from '../../src/modules/audit/audit-chain.js';
import { startServer, type BenchServer } from './server.js';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const BASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DB_NAME = 'sc_bench_scale';
const BODY = 'Your lab results are ready to view in the portal. '.repeat(4);
const staff = { role: 'staff' as const, id: 'staff-scale', orgId: '', name: 'Scale Staff', rec: null };

interface ThreadSeed {
  id: string;
  key: DataKey;
}

class Seeder {
  readonly customers: string[] = [];
  readonly customerIds: string[] = [];
  readonly threadsByCustomer = new Map<number, ThreadSeed[]>();
  threadCount = 0;
  messageCount = 0;
  auditCount = 0;
  private head = { seq: 0, hash: '' };
  private clock = Date.parse('2025-01-01T00:00:00Z');

  constructor(
    private readonly database: Database,
    private readonly ring: KeyRing,
    private readonly orgId: string,
  ) {}

  private tick() {
    this.clock += 1000;
    return new Date(this.clock);
  }

  async customersUpTo(n: number) {
    const rows = [];
    for (let i = this.customers.length; i < n; i++) {
      const id = newId();
      const { envelope, dataKey } = this.ring.createEnvelope(recordKeyContext(this.orgId, id));
      const now = this.tick();
      rows.push({
        id,
        orgId: this.orgId,
        kind: 'customer' as const,
        externalId: `c-${i}`,
        ...envelope,
        displayName: dataKey.sealText(`Customer ${i}`, recordFieldAad(this.orgId, id, 'displayName')),
        email: null,
        dateOfBirth: null,
        phone: null,
        createdAt: now,
        updatedAt: now,
      });
      this.customers.push(`c-${i}`);
      this.customerIds.push(id);
    }
    await this.batched(rows, (b) => this.database.db.insert(records).values(b));
  }

  /** Threads up to `n`, spread round-robin over the customers, each with one message. */
  async threadsUpTo(n: number) {
    const rows = [];
    const firstMessages = [];
    for (let i = this.threadCount; i < n; i++) {
      const customer = i % this.customerIds.length;
      const id = newId();
      const { envelope, dataKey } = this.ring.createEnvelope(threadKeyContext(this.orgId, id));
      const now = this.tick();
      rows.push({
        id,
        orgId: this.orgId,
        recordId: this.customerIds[customer]!,
        ...envelope,
        subject: dataKey.sealText(`Thread ${i}`, threadSubjectAad(this.orgId, id)),
        replyAllowed: true,
        state: 'open' as const,
        createdById: staff.id,
        createdByName: staff.name,
        createdAt: now,
        updatedAt: now,
        lastActivityAt: now,
        deletedAt: null,
      });
      const list = this.threadsByCustomer.get(customer) ?? [];
      list.push({ id, key: dataKey });
      this.threadsByCustomer.set(customer, list);
      firstMessages.push(buildMessageRow(dataKey, { orgId: this.orgId, id }, { ...staff, orgId: this.orgId }, BODY, now));
      this.threadCount++;
    }
    await this.batched(rows, (b) => this.database.db.insert(threads).values(b));
    await this.batched(firstMessages, (b) => this.database.db.insert(messages).values(b));
    this.messageCount += firstMessages.length;
  }

  get t0(): ThreadSeed {
    return this.threadsByCustomer.get(0)![0]!;
  }

  /** Messages into one thread; all but the newest 10 of them read. */
  async messagesInto(thread: ThreadSeed, count: number, readAll: boolean) {
    const rows = [];
    for (let i = 0; i < count; i++) {
      const row = buildMessageRow(thread.key, { orgId: this.orgId, id: thread.id }, { ...staff, orgId: this.orgId }, BODY, this.tick());
      rows.push({ ...row, readAt: readAll || i < count - 10 ? new Date(this.clock) : null });
    }
    await this.batched(rows, (b) => this.database.db.insert(messages).values(b));
    this.messageCount += count;
  }

  /** Messages spread over every thread but T0 until the org holds `total`. */
  async messagesUpTo(total: number) {
    const all = [...this.threadsByCustomer.values()].flat().filter((t) => t.id !== this.t0.id);
    let i = 0;
    while (this.messageCount < total) {
      const n = Math.min(20_000, total - this.messageCount);
      const rows = [];
      for (let k = 0; k < n; k++) {
        const thread = all[i++ % all.length]!;
        rows.push(buildMessageRow(thread.key, { orgId: this.orgId, id: thread.id }, { ...staff, orgId: this.orgId }, BODY, this.tick()));
      }
      await this.batched(rows, (b) => this.database.db.insert(messages).values(b));
      this.messageCount += n;
    }
  }

  /** Chained audit events after the org's current head (the server may have added some). */
  async auditUpTo(total: number) {
    const [head] = await this.database.db.select().from(auditChainHeads).where(dsql`${auditChainHeads.orgId} = ${this.orgId}`);
    this.head = head ? { seq: head.seq, hash: head.hash } : { seq: 0, hash: '0'.repeat(64) };
    while (this.auditCount < total) {
      const n = Math.min(10_000, total - this.auditCount);
      const rows = [];
      for (let k = 0; k < n; k++) {
        const fields = {
          id: randomUUID(),
          orgId: this.orgId,
          seq: this.head.seq + 1,
          prevHash: this.head.hash,
          occurredAt: this.tick(),
          actorKind: 'staff',
          actorId: staff.id,
          actorName: staff.name,
          action: 'message.sent',
          outcome: 'success' as const,
          recordKind: 'customer',
          recordId: `c-${k % 100}`,
          threadId: this.t0.id,
          messageId: randomUUID(),
          documentId: null,
          linkId: null,
          ip: '127.0.0.1',
          userAgent: 'bench',
          requestId: randomUUID(),
          reason: null,
        };
        const hash = chainHash(fields);
        rows.push({ ...fields, hash });
        this.head = { seq: fields.seq, hash };
      }
      await this.batched(rows, (b) => this.database.db.insert(auditEvents).values(b));
      this.auditCount += n;
    }
    await this.database.db
      .insert(auditChainHeads)
      .values({ orgId: this.orgId, ...this.head })
      .onConflictDoUpdate({ target: auditChainHeads.orgId, set: { seq: this.head.seq, hash: this.head.hash } });
  }

  private async batched<T>(rows: T[], insert: (batch: T[]) => Promise<unknown>, size = 1000) {
    const batches: T[][] = [];
    for (let i = 0; i < rows.length; i += size) batches.push(rows.slice(i, i + size));
    // Four batches at a time over the pool.
    for (let i = 0; i < batches.length; i += 4) await Promise.all(batches.slice(i, i + 4).map(insert));
  }
}

async function time(server: BenchServer, path: string, token: string) {
  const started = process.hrtime.bigint();
  const res = await fetch(`${server.base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { nextCursor?: string | null };
  if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, body };
}

async function cursorAt(server: BenchServer, path: string, token: string, page: number): Promise<string> {
  let cursor: string | null | undefined;
  for (let p = 1; p < page; p++) {
    cursor = (await time(server, `${path}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, token)).body.nextCursor;
    if (!cursor) throw new Error(`${path} has fewer than ${page} pages`);
  }
  return cursor!;
}

async function measure(server: BenchServer, label: string, path: string, token: string) {
  for (let i = 0; i < 5; i++) await time(server, path, token);
  const samples: number[] = [];
  for (let i = 0; i < 25; i++) samples.push((await time(server, path, token)).ms);
  samples.sort((a, b) => a - b);
  return { label, p50: Number(samples[12]!.toFixed(2)), p95: Number(samples[23]!.toFixed(2)) };
}

async function measureAll(server: BenchServer, seeder: Seeder, deepPage: number) {
  const staffToken = server.token('staff');
  const admin = server.token('admin');
  const t0 = seeder.t0.id;
  const messagesPath = `/v1/threads/${t0}/messages?limit=50`;
  const auditPath = '/v1/audit-events?limit=50';
  const messagesCursor = await cursorAt(server, messagesPath, staffToken, deepPage);
  const auditCursor = await cursorAt(server, auditPath, admin, deepPage);
  return [
    await measure(server, 'messages: first page', messagesPath, staffToken),
    await measure(server, 'messages: deep cursor page', `${messagesPath}&cursor=${encodeURIComponent(messagesCursor)}`, staffToken),
    await measure(server, 'Secure Messages tab + unread counts', `/v1/customers/${seeder.customers[0]}/threads?limit=50`, staffToken),
    await measure(server, 'audit: first page', auditPath, admin),
    await measure(server, 'audit: deep cursor page', `${auditPath}&cursor=${encodeURIComponent(auditCursor)}`, admin),
  ];
}

const started = Date.now();
const admin = postgres(BASE_URL, { max: 1, onnotice: () => {} });
await admin.unsafe(`drop database if exists ${DB_NAME} with (force)`);
await admin.unsafe(`create database ${DB_NAME}`);
const url = new URL(BASE_URL);
url.pathname = `/${DB_NAME}`;
const database = await openDatabase({ databaseUrl: url.toString(), pgliteDir: null, poolSize: 4 });
await migrate(database.db);
const keys = `v1:${randomBytes(32).toString('base64')}`;
process.env.DATABASE_URL = url.toString();
const server = await startServer({ ENCRYPTION_KEYS: keys });
try {
  const ring = KeyRing.parse(keys);
  const seeder = new Seeder(database, ring, server.orgId);
  const log = (m: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${m}\n`);

  await seeder.customersUpTo(100);
  await seeder.threadsUpTo(1_000);
  await seeder.messagesInto(seeder.t0, 1_000, false);
  await seeder.auditUpTo(1_000);
  log(`small: ${seeder.threadCount} threads, ${seeder.messageCount} messages, ${seeder.auditCount} audit events`);
  await database.db.execute(dsql`analyze`);
  const small = await measureAll(server, seeder, 20);

  await seeder.customersUpTo(10_000);
  log('customers: 10,000');
  await seeder.threadsUpTo(100_000);
  log(`threads: ${seeder.threadCount}`);
  await seeder.messagesInto(seeder.t0, 99_000, false);
  await seeder.messagesUpTo(1_000_000);
  log(`messages: ${seeder.messageCount}`);
  await seeder.auditUpTo(1_000_000);
  log(`audit events: ${seeder.auditCount}`);
  await database.db.execute(dsql`analyze`);
  const large = await measureAll(server, seeder, 500);

  const rows = small.map((s, i) => {
    const l = large[i]!;
    const ratio = l.p50 / s.p50;
    return { measurement: s.label, smallP50Ms: s.p50, smallP95Ms: s.p95, largeP50Ms: l.p50, largeP95Ms: l.p95, ratio: Number(ratio.toFixed(2)), target: '<= 1.5', met: ratio <= 1.5 };
  });
  console.table(rows);
  writeFileSync('bench-scale-results.json', `${JSON.stringify({ at: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000), rows }, null, 2)}\n`);
  log('wrote bench-scale-results.json');
} finally {
  await server.stop();
  await database.close();
  await admin.unsafe(`drop database if exists ${DB_NAME} with (force)`);
  await admin.end();
}
