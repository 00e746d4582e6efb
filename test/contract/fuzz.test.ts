/**
 * Contract fuzzing: for EVERY operation of the live contract (app.swagger().paths), fast-check
 * generates path parameters, query strings, headers and bodies — values derived from the
 * schemas, ids that exist, boundary values (empty, ~100 KB, NUL, emoji, right-to-left, lone
 * surrogates, wrong types, extra and missing fields, negative and huge numbers, null, leap
 * seconds), malformed JSON, wrong content types, oversized bodies and malformed multipart —
 * and sends them with the caller the operation is meant for (found by probing every role), now
 * and then with none, a wrong one, a foreign organization's or a broken token.
 *
 * Every answer must:
 * - not be a 5xx;
 * - conform to the contract: a declared status and content type, a body valid against the
 *   schema (the response-contract guard of test/fixtures/contract.ts, collected per request);
 * - when it is a 4xx, leave the row counts of every non-audit table of the organization
 *   unchanged (a refused request writes nothing but its audit event);
 * and after every request the organization's data must hold together:
 * - every thread has at least one message;
 * - no document stays 'pending';
 * - every attachment points to an existing document and to a message of its thread;
 * - every ready, undeleted document has exactly its chunk_count chunks, and no chunk belongs to
 *   a missing or shredded document;
 * - storage usage (org_settings.used_bytes, document_count) equals the sum of the ready,
 *   undeleted documents' stored bytes and their number;
 * - every idempotency key points to a thread or message that exists;
 * and at the end the audit chain still verifies.
 *
 * Deterministic: FUZZ_SEED (default below) seeds every operation (seed + a hash of its
 * operationId, so FUZZ_ONLY=<operationId,…> reproduces one), FUZZ_RUNS sets the runs per
 * operation. The seed is printed as a comment; a failure prints fast-check's report (seed, path,
 * shrunk counterexample, truncated) for the operation.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import t from 'tap';
import type { Test } from 'tap';
import fc, { type Arbitrary } from 'fast-check';
import { sql } from 'drizzle-orm';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { build, type Harness } from '../fixtures/build.js';
import type { Mismatch, Operation } from '../fixtures/contract.js';
import { multipart, fileUpload } from '../fixtures/multipart.js';
import * as f from '../fixtures/files.js';
import { BOUNDARY_STRINGS, boundary, fuzzed, MALFORMED_JSON, resolve, valid, type Schema, type SchemaContext } from '../fixtures/schema-arbitraries.js';
import { rowsOf } from '../../src/db/util.js';

const DEFAULT_SEED = 20260601;
const SEED = Number(process.env.FUZZ_SEED ?? DEFAULT_SEED);
const RUNS = Number(process.env.FUZZ_RUNS ?? 15);
/** FUZZ_DEBUG=1: one comment line per request (status, problem code and detail, the request abbreviated). */
const DEBUG = Boolean(process.env.FUZZ_DEBUG);
const ONLY = process.env.FUZZ_ONLY ? new Set(process.env.FUZZ_ONLY.split(',')) : null;
const REPORT_MAX = 6000;

type Role = 'staff' | 'admin' | 'integration' | 'patron';
const ROLES: Role[] = ['staff', 'admin', 'integration', 'patron'];
type Caller = Role | 'external' | 'public';

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema?: Schema;
}

interface OperationSpec {
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  security?: Record<string, string[]>[];
}

type Auth = { kind: 'right'; role: Caller } | { kind: 'none' } | { kind: 'garbage' } | { kind: 'expired' } | { kind: 'wrong-role'; role: Role } | { kind: 'other-org' } | { kind: 'cookie' };

type Body =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown }
  | { kind: 'raw'; contentType: string; payload: string };

interface FuzzRequest {
  auth: Auth;
  params: Record<string, string>;
  query: [string, string][];
  headers: Record<string, string>;
  body: Body | { kind: 'multipart'; variant: string; payload: Buffer; contentType: string };
}

/** A seed per operation that does not depend on which operations run. */
const seedOf = (operationId: string) => (SEED + createHash('sha256').update(operationId).digest().readUInt32BE(0)) | 0;

/** A counterexample as JSON, long strings and buffers shortened (they can be 300 KB). */
const abbreviate = (value: unknown) =>
  JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'string' && v.length > 120) return `${v.slice(0, 60)}…[${v.length} chars]`;
    if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return `<${(v as { data: unknown[] }).data.length} bytes>`;
    }
    return v;
  });

const truncate = (s: string, max = REPORT_MAX) => (s.length > max ? `${s.slice(0, max)}… (${s.length - max} more characters)` : s);

/** Strings as a query string or header may carry them (the transport allows only some). */
const asText = (v: unknown): string => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));
const headerSafe = (s: string) => /^[\x20-\x7e]*$/.test(s);

t.test('contract fuzz: every operation, every answer', async (t) => {
  const started = Date.now();
  const fuzzIp = `198.18.${randomBytes(1)[0]}.${randomBytes(1)[0]! | 1}`;
  const setupIp = `198.19.${randomBytes(1)[0]}.${randomBytes(1)[0]! | 1}`;
  const h = await build(t, { env: { EXTERNAL_SESSION_RATE_LIMIT: '30' } });
  const world = await seedWorld(t, h, setupIp);
  const seeded = Date.now();
  const spec = h.contract.contract.spec as { components?: { schemas?: Record<string, Schema> } };
  const ctx: SchemaContext = { components: spec.components?.schemas ?? {}, hints: world.hints };
  const operations = h.contract.contract.operations.filter((o) => !ONLY || ONLY.has(o.operationId));
  const tables = await orgTables(h);
  t.comment(`FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}: ${operations.length} operations × ${RUNS} runs; row counts over ${tables.length} tables`);

  const callers = new Map<string, Caller[]>();
  for (const op of operations) callers.set(op.operationId, await callersOf(h, op, world));
  const probed = Date.now();
  let resetMs = 0;

  let requests = 0;
  let last: Snapshot | undefined;
  const timing = { send: 0, snapshot: 0, verify: 0 };
  const timed = async <T>(what: keyof typeof timing, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timing[what] += performance.now() - t0;
    }
  };
  const statuses = new Map<string, Map<number, number>>();
  for (const op of operations) {
    const r0 = Date.now();
    last = undefined;
    await world.reset();
    resetMs += Date.now() - r0;
    const allowed = callers.get(op.operationId)!;
    const arb = requestArb(ctx, op, allowed, world);
    const seed = seedOf(op.operationId);
    const seen = new Map<number, number>();
    statuses.set(op.operationId, seen);
    const property = fc.asyncProperty(arb, async (req) => {
      requests++;
      const since = new Date(Date.now() - 1).toISOString();
      // The state after the previous request, unless something else ran since (a reset).
      const before = last ?? (await timed('snapshot', () => snapshot(h, tables)));
      last = undefined;
      const { value: res, mismatches } = await timed('send', () => h.contract.collect(() => send(h, op, req, world, fuzzIp)));
      seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1);
      const code = problemCode(res);
      if (DEBUG) t.comment(`${op.operationId} ${res.statusCode} ${code ?? ''} ${problemDetail(res) ?? ''} ← ${truncate(abbreviate(req), 300)}`);
      if (res.statusCode >= 500) throw new Error(`a ${res.statusCode} answer${code ? ` (${code})` : ''}`);
      if (mismatches.length > 0) throw new Error(`the answer departs from the contract: ${describe(mismatches)}`);
      const after = await timed('snapshot', () => snapshot(h, tables));
      last = after;
      if (res.statusCode >= 400) {
        const changed = tables.filter((name) => before.counts[name] !== after.counts[name]).map((name) => `${name} ${before.counts[name]} → ${after.counts[name]}`);
        if (changed.length > 0) throw new Error(`a ${res.statusCode}${code ? ` (${code})` : ''} changed row counts: ${changed.join(', ')}`);
      }
      if (after.broken.length > 0) throw new Error(`the data no longer holds together: ${after.broken.join('; ')}`);
      // The audit events this request wrote still hash and link correctly.
      const window = await timed('verify', () => h.call('GET', `/v1/audit-events/verify?from=${since}`, world.tokens.admin));
      const verdict = window.json() as { valid: boolean; firstBreak: unknown };
      if (window.statusCode !== 200 || !verdict.valid) throw new Error(`the audit chain broke: ${window.statusCode} ${JSON.stringify(verdict.firstBreak)}`);
    });
    // Bounded by RUNS alone: a time limit would let a slow operation pass with fewer runs.
    const out = await fc.check(property, { seed, numRuns: RUNS });
    const summary = [...seen.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ');
    if (out.failed) {
      const error = out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance);
      t.fail(`${op.label}: ${truncate(error, 2000)}`, {
        diagnostic: true,
        counterexample: truncate(abbreviate(out.counterexample?.[0])),
        runs: out.numRuns,
        shrinks: out.numShrinks,
        seed: SEED,
        operationSeed: out.seed,
        path: out.counterexamplePath,
        replay: `FUZZ_SEED=${SEED} FUZZ_ONLY=${op.operationId} npx tap test/contract/fuzz.test.ts`,
      });
    } else {
      t.equal(out.numRuns, RUNS, `${op.label}: ${out.numRuns} runs (${summary})`);
    }
  }

  const verify = await h.call('GET', '/v1/audit-events/verify', h.admin());
  t.equal(verify.statusCode, 200, 'the audit chain can be verified');
  const verdict = verify.json() as { valid: boolean; checked: number; firstBreak: unknown };
  t.equal(verdict.valid, true, 'the audit chain still verifies after the fuzzing', { checked: verdict.checked, firstBreak: verdict.firstBreak });
  const final = await snapshot(h, tables);
  t.same(final.broken, [], 'the data holds together at the end');
  t.comment(`FUZZ_SEED=${SEED}: ${requests} fuzzed requests over ${operations.length} operations in ${((Date.now() - started) / 1000).toFixed(1)} s: setup ${((seeded - started) / 1000).toFixed(1)} s, role probes ${((probed - seeded) / 1000).toFixed(1)} s, resets ${(resetMs / 1000).toFixed(1)} s, fuzzed requests ${(timing.send / 1000).toFixed(1)} s, row checks ${(timing.snapshot / 1000).toFixed(1)} s, audit checks ${(timing.verify / 1000).toFixed(1)} s`);
});

// ---------------------------------------------------------------------------------------------
// The organization the fuzzing works on.

interface World {
  ids: {
    customer: string;
    volunteer: string;
    thread: string;
    closedThread: string;
    messages: string[];
    documents: string[];
    links: string[];
  };
  tokens: Record<Role | 'patronOther', string>;
  /** Signed for 1 ms at setup: long expired when the fuzzing uses it. */
  expiredToken: string;
  linkToken: string;
  checkedLinkToken: string;
  session: string;
  hints: Record<string, readonly unknown[]>;
  /** Puts back what earlier operations may have changed: thread open, room to upload, a live session. */
  reset(): Promise<void>;
}

async function expectStatus(res: LightMyRequestResponse | Promise<LightMyRequestResponse>, status: number, what: string) {
  const r = await res;
  if (r.statusCode !== status) throw new Error(`setup: ${what} answered ${r.statusCode}, expected ${status}`);
  return r.json() as Record<string, unknown> & { id: string };
}

async function seedWorld(t: Test, h: Harness, setupIp: string): Promise<World> {
  const expiredToken = h.token({ sub: 'staff-old', role: 'staff', name: 'Old' }, { expiresIn: 1 });
  const tokens = { staff: h.staff(), admin: h.admin(), integration: h.integration(), patron: h.patron('customer:c-fz-1'), patronOther: h.patron('customer:c-fz-other') };
  await expectStatus(
    h.call('PUT', '/v1/customers/c-fz-1', tokens.integration, { displayName: 'Fuzz Customer', email: 'fuzz@example.org', dateOfBirth: '1980-02-03', phone: '+1 555 010 0000' }),
    201,
    'customer',
  );
  await expectStatus(h.call('PUT', '/v1/volunteers/v-fz-1', tokens.integration, { displayName: 'Fuzz Volunteer' }), 201, 'volunteer');
  const upload = (url: string, token: string, name: string, data: Buffer, fields: Record<string, string> = {}) => {
    const up = fileUpload(name, data, fields);
    return expectStatus(h.app.inject({ method: 'POST', url, headers: { ...up.headers, authorization: `Bearer ${token}` }, payload: up.payload }), 201, `upload ${name}`);
  };
  const library = await upload('/v1/library/documents', tokens.staff, 'handbook.txt', f.utf8Text(3));
  const privateDoc = await upload('/v1/library/documents', tokens.admin, 'private.txt', f.utf8Text(2), { private: 'true' });
  const recordDoc = await upload('/v1/customers/c-fz-1/documents', tokens.staff, 'statement.pdf', f.pdf());
  const patronDoc = await upload('/v1/customers/c-fz-1/documents', tokens.patron, 'reply.txt', f.utf8Text(1));
  const opened = await expectStatus(
    h.call('POST', '/v1/threads', tokens.staff, {
      record: { kind: 'customer', id: 'c-fz-1' },
      subject: 'Fuzz subject',
      body: 'Fuzz body',
      replyAllowed: true,
      attachments: [{ documentId: library.id }, { documentId: recordDoc.id }],
    }),
    201,
    'thread',
  );
  const thread = (opened.thread as { id: string }).id;
  const first = (opened.message as { id: string }).id;
  const reply = await expectStatus(h.call('POST', `/v1/threads/${thread}/messages`, tokens.patron, { body: 'Patron reply', attachments: [{ documentId: patronDoc.id }] }), 201, 'patron reply');
  const closed = await expectStatus(
    h.call('POST', '/v1/threads', tokens.staff, { record: { kind: 'volunteer', id: 'v-fz-1' }, subject: 'Closed', body: 'Closed body', replyAllowed: false }),
    201,
    'second thread',
  );
  const closedThread = (closed.thread as { id: string }).id;
  await expectStatus(h.call('PATCH', `/v1/threads/${closedThread}`, tokens.staff, { state: 'closed' }), 200, 'close');

  // Links: one without checks (the session's, never revoked by the fuzzing), one with both
  // checks, two that may be revoked. Their tokens live only in mail; the test sets known ones.
  const grant = (threadId: string, verify: { dateOfBirth: boolean; phone: boolean }) =>
    expectStatus(h.call('POST', `/v1/threads/${threadId}/access-links`, tokens.staff, { email: 'recipient@example.net', expiresIn: '30d', verify }), 201, 'grant');
  const sessionLink = await grant(thread, { dateOfBirth: false, phone: false });
  const checkedLink = await grant(thread, { dateOfBirth: true, phone: true });
  const spare1 = await grant(thread, { dateOfBirth: false, phone: false });
  const spare2 = await grant(closedThread, { dateOfBirth: false, phone: false });
  const linkToken = randomBytes(32).toString('base64url');
  const checkedLinkToken = randomBytes(32).toString('base64url');
  const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
  const { db } = h.app.database;
  await db.execute(sql`update access_links set token_hash = ${sha(linkToken)} where id = ${sessionLink.id} and org_id = ${h.orgId}`);
  await db.execute(sql`update access_links set token_hash = ${sha(checkedLinkToken)} where id = ${checkedLink.id} and org_id = ${h.orgId}`);

  const openSession = async () =>
    (await expectStatus(h.app.inject({ method: 'POST', url: '/v1/external/sessions', payload: { token: linkToken }, remoteAddress: setupIp }), 201, 'session'))
      .sessionToken as string;
  const session = await openSession();
  const extUp = fileUpload('external.txt', f.utf8Text(1));
  const extDoc = await expectStatus(
    h.app.inject({ method: 'POST', url: '/v1/external/documents', headers: { ...extUp.headers, authorization: `Bearer ${session}` }, payload: extUp.payload }),
    201,
    'external upload',
  );
  const extReply = await expectStatus(h.call('POST', '/v1/external/messages', session, { body: 'External reply', attachments: [{ documentId: extDoc.id }] }), 201, 'external reply');
  const checkpoint = await expectStatus(h.call('GET', '/v1/audit-events/checkpoint', tokens.admin), 200, 'checkpoint');
  // Real cursors of each shape (each list's own, and the others' for it to refuse).
  const cursors: string[] = [];
  for (const url of [`/v1/threads/${thread}/messages?limit=1`, '/v1/audit-events?limit=1', '/v1/library/documents?limit=1', `/v1/threads/${thread}/access-links?limit=1`]) {
    const next = (await expectStatus(h.call('GET', url, tokens.admin), 200, `page of ${url}`)).nextCursor;
    if (typeof next === 'string') cursors.push(next);
  }

  const messages = [first, reply.id, extReply.id];
  const documents = [library.id, privateDoc.id, recordDoc.id, patronDoc.id, extDoc.id];
  const links = [spare1.id, spare2.id, checkedLink.id];
  const records = [
    { kind: 'customer', id: 'c-fz-1' },
    { kind: 'volunteer', id: 'v-fz-1' },
    { kind: 'customer', id: 'c-fz-missing' },
  ];
  const world: World = {
    ids: { customer: 'c-fz-1', volunteer: 'v-fz-1', thread, closedThread, messages, documents, links },
    tokens,
    expiredToken,
    linkToken,
    checkedLinkToken,
    session,
    hints: {
      threadId: [thread, closedThread, thread.toUpperCase(), randomUUID()],
      documentId: [...documents, documents[0]!.toUpperCase(), randomUUID()],
      upTo: [...messages, randomUUID()],
      linkId: [...links, randomUUID()],
      webhookId: [randomUUID()],
      recordId: ['c-fz-1', 'v-fz-1', 'c-fz-missing'],
      customerId: ['c-fz-1', 'c-fz-new', 'C-FZ-1'],
      volunteerId: ['v-fz-1', 'v-fz-new'],
      record: records,
      token: [linkToken, checkedLinkToken, randomBytes(32).toString('base64url')],
      dateOfBirth: ['1980-02-03', '02/03/1980', '1980-02-04', '1980/2/3'],
      phone: ['+1 555 010 0000', '(555) 010-0000', '555 010 0001'],
      email: ['recipient@example.net'],
      checkpoint: [checkpoint, { ...checkpoint, seq: (checkpoint.seq as number) + 1 }, { ...checkpoint, signature: '0'.repeat(64) }, { ...checkpoint, orgId: 'org-other' }],
      cursor: [...cursors, Buffer.from(JSON.stringify([randomUUID()])).toString('base64url'), Buffer.from('["2026-01-01T00:00:00.000Z","x"]').toString('base64url'), 'garbage'],
    },
    async reset() {
      await expectStatus(h.call('PATCH', `/v1/threads/${thread}`, tokens.staff, { state: 'open', replyAllowed: true }), 200, 'reopen');
      await expectStatus(h.call('PATCH', '/v1/settings', tokens.admin, { storageAllocationBytes: 10 * 1024 ** 3 }), 200, 'room');
      const alive = await h.call('GET', '/v1/external/thread', world.session);
      if (alive.statusCode !== 200) world.session = await openSession();
    },
  };
  t.comment(`seeded: 2 records, ${documents.length} documents, 2 threads, ${messages.length} messages, 4 access links, 1 external session`);
  return world;
}

/** Tables of the organization's data (those with org_id), audit tables aside. */
async function orgTables(h: Harness): Promise<string[]> {
  const rows = rowsOf<{ table_name: string }>(
    await h.app.database.db.execute(
      sql`select c.table_name from information_schema.columns c join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
          where c.table_schema = current_schema() and c.column_name = 'org_id' and t.table_type = 'BASE TABLE' and c.table_name not like 'audit%' order by 1`,
    ),
  );
  return rows.map((r) => r.table_name);
}

interface Snapshot {
  counts: Record<string, number>;
  broken: string[];
}

const INVARIANTS: [string, string][] = [
  ['threads without a message', `select count(*) from threads t where t.org_id = $ORG and not exists (select 1 from messages m where m.thread_id = t.id)`],
  ['pending documents', `select count(*) from documents where org_id = $ORG and status = 'pending'`],
  [
    'attachments pointing nowhere',
    `select count(*) from message_attachments a where a.org_id = $ORG and (not exists (select 1 from documents d where d.id = a.document_id)
       or not exists (select 1 from messages m where m.id = a.message_id and m.thread_id = a.thread_id))`,
  ],
  [
    'documents missing chunks',
    `select count(*) from documents d where d.org_id = $ORG and d.status = 'ready' and d.deleted_at is null
       and d.chunk_count <> (select count(*) from document_chunks c where c.document_id = d.id)`,
  ],
  [
    'orphan chunks',
    `select count(*) from document_chunks c where c.org_id = $ORG and not exists (select 1 from documents d where d.id = c.document_id and d.deleted_at is null)`,
  ],
  [
    'storage bytes off',
    `select abs(coalesce((select used_bytes from org_settings where org_id = $ORG), 0)
       - (select coalesce(sum(stored_bytes), 0) from documents where org_id = $ORG and status = 'ready' and deleted_at is null))`,
  ],
  [
    'document count off',
    `select abs(coalesce((select document_count from org_settings where org_id = $ORG), 0)
       - (select count(*) from documents where org_id = $ORG and status = 'ready' and deleted_at is null))`,
  ],
  [
    'idempotency keys pointing nowhere',
    `select count(*) from idempotency_keys k where k.org_id = $ORG and not exists (select 1 from threads where id = k.resource_id)
       and not exists (select 1 from messages where id = k.resource_id)`,
  ],
];

/** Row counts and invariant violations, in one round trip. */
async function snapshot(h: Harness, tables: string[]): Promise<Snapshot> {
  const org = `'${h.orgId.replace(/'/g, "''")}'`;
  const columns = [
    ...tables.map((name, i) => `(select count(*) from "${name}" where org_id = ${org})::int as c${i}`),
    ...INVARIANTS.map(([, q], i) => `(${q.replace(/\$ORG/g, org)})::bigint as i${i}`),
  ];
  const [row] = rowsOf<Record<string, number | string>>(await h.app.database.db.execute(sql.raw(`select ${columns.join(', ')}`)));
  const counts: Record<string, number> = {};
  tables.forEach((name, i) => (counts[name] = Number(row![`c${i}`])));
  const broken = INVARIANTS.flatMap(([label], i) => (Number(row![`i${i}`]) !== 0 ? [`${label}: ${row![`i${i}`]}`] : []));
  return { counts, broken };
}

// ---------------------------------------------------------------------------------------------
// Who may call an operation, and how requests are built and sent.

const specOf = (op: Operation) => op.op as unknown as OperationSpec;
const paramsOf = (op: Operation, where: Parameter['in']) => (specOf(op).parameters ?? []).filter((p) => p.in === where);
const isExternal = (op: Operation) => (specOf(op).security ?? []).some((s) => 'externalSession' in s);
const isPublic = (op: Operation) => Array.isArray(specOf(op).security) && specOf(op).security!.length === 0;

/** Probes each role with a harmless request (ids that do not exist): the roles not refused. */
async function callersOf(h: Harness, op: Operation, world: World): Promise<Caller[]> {
  if (isPublic(op)) return ['public'];
  if (isExternal(op)) return ['external'];
  const allowed: Caller[] = [];
  for (const role of ROLES) {
    const params = Object.fromEntries(paramsOf(op, 'path').map((p) => [p.name, /Id$/.test(p.name) && !/^(customer|volunteer|record)Id$/.test(p.name) ? randomUUID() : 'c-fz-probe']));
    const res = await h.app.inject({ method: op.method as InjectOptions['method'], url: pathOf(op, params), headers: { authorization: `Bearer ${world.tokens[role]}` } });
    if (res.statusCode !== 401 && res.statusCode !== 403) allowed.push(role);
  }
  return allowed.length > 0 ? allowed : ['staff'];
}

/** Percent-encodes a path segment byte by byte (an unpaired surrogate goes out as U+FFFD, as a client would send it). */
const encodeSegment = (value: string) =>
  [...Buffer.from(value, 'utf8')].map((b) => (/[A-Za-z0-9_~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');

const pathOf = (op: Operation, params: Record<string, string>) => op.template.replace(/\{([^}]+)\}/g, (_m, name: string) => encodeSegment(params[name] ?? 'x'));

function authArb(allowed: Caller[]): Arbitrary<Auth> {
  const right = fc.constantFrom(...allowed).map((role): Auth => ({ kind: 'right', role }));
  const wrongRoles = ROLES.filter((r) => !allowed.includes(r));
  const others: Arbitrary<Auth>[] = [fc.constant<Auth>({ kind: 'none' }), fc.constant<Auth>({ kind: 'garbage' }), fc.constant<Auth>({ kind: 'expired' }), fc.constant<Auth>({ kind: 'other-org' })];
  if (wrongRoles.length > 0) others.push(fc.constantFrom(...wrongRoles).map((role): Auth => ({ kind: 'wrong-role', role })));
  if (allowed.includes('external')) others.push(fc.constant<Auth>({ kind: 'cookie' }));
  return fc.oneof({ weight: 12, arbitrary: right }, { weight: 2, arbitrary: fc.oneof(...others) });
}

function paramArb(ctx: SchemaContext, p: Parameter): Arbitrary<string> {
  const schema = p.schema ?? { type: 'string' };
  const fromSchema = fuzzed(ctx, schema, p.name).map(asText);
  // Path segments: never empty (that is another route), sometimes far over the router's limit.
  const extreme = fc.constantFrom(...BOUNDARY_STRINGS.filter((s) => s.length > 0), 'a'.repeat(201), 'é'.repeat(150), '%', '%zz', 'a/b', '..');
  return fc.oneof({ weight: 8, arbitrary: fromSchema }, { weight: 1, arbitrary: extreme }).filter((s) => s.length > 0);
}

/** Present with probability 1 / (1 + absentWeight), else the empty list. */
const sometimes = <T>(arb: Arbitrary<T[]>, absentWeight: number): Arbitrary<T[]> =>
  fc.oneof({ weight: 1, arbitrary: arb }, { weight: absentWeight, arbitrary: fc.constant([] as T[]) });

function queryArb(ctx: SchemaContext, op: Operation): Arbitrary<[string, string][]> {
  const declared = paramsOf(op, 'query');
  // Each declared parameter in about a third of the requests; an undeclared one in a tenth.
  const entries = declared.map((p) =>
    sometimes(
      fuzzed(ctx, p.schema ?? { type: 'string' }, p.name).map((v): [string, string][] => (Array.isArray(v) ? v.map((x) => [p.name, asText(x)]) : [[p.name, asText(v)]])),
      2,
    ),
  );
  const extra = sometimes(
    fc.tuple(fc.constantFrom('extra', 'limit', 'cursor', 'orgId', '__proto__', 'q[]'), fc.oneof(fc.string(), boundary().map(asText))).map(([k, v]): [string, string][] => [[k, v]]),
    9,
  );
  return fc.tuple(fc.tuple(...entries), extra).map(([parts, more]) => [...parts.flat(), ...more]);
}

function headersArb(ctx: SchemaContext, op: Operation): Arbitrary<Record<string, string>> {
  const declared = paramsOf(op, 'header');
  if (declared.length === 0) return fc.constant({});
  return fc
    .tuple(
      ...declared.map((p) =>
        fc.option(
          fc.oneof(fuzzed(ctx, p.schema ?? { type: 'string' }, p.name).map(asText), fc.constantFrom('', ' ', 'k'.repeat(256), `key-${randomUUID()}`, 'fixed-key-1')),
          { freq: 2, nil: undefined }, // absent in half of the requests
        ),
      ),
    )
    .map((values) => {
      const out: Record<string, string> = {};
      declared.forEach((p, i) => {
        const v = values[i];
        if (v !== undefined && headerSafe(v)) out[p.name] = v;
      });
      return out;
    });
}

function jsonBodyArb(ctx: SchemaContext, schema: Schema): Arbitrary<Body> {
  return fc.oneof(
    { weight: 8, arbitrary: valid(ctx, schema).map((value): Body => ({ kind: 'json', value })) },
    { weight: 8, arbitrary: fuzzed(ctx, schema).map((value): Body => ({ kind: 'json', value })) },
    { weight: 1, arbitrary: fc.constantFrom(...MALFORMED_JSON).map((payload): Body => ({ kind: 'raw', contentType: 'application/json', payload })) },
    { weight: 1, arbitrary: fc.constantFrom(null, [], 1, 'text', true).map((value): Body => ({ kind: 'json', value })) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom('text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1')
        .map((contentType): Body => ({ kind: 'raw', contentType, payload: '{"a":1}' })),
    },
    { weight: 1, arbitrary: fc.constant<Body>({ kind: 'raw', contentType: 'application/json', payload: JSON.stringify({ pad: 'x'.repeat(300 * 1024) }) }) },
    { weight: 1, arbitrary: fc.constant<Body>({ kind: 'none' }) },
  );
}

type MultipartBody = FuzzRequest['body'] & { kind: 'multipart' };

function multipartArb(): Arbitrary<MultipartBody | Body> {
  const files = fc.constantFrom(
    { what: 'text', data: f.utf8Text(2) },
    { what: 'pdf', data: f.pdf() },
    { what: 'empty', data: Buffer.alloc(0) },
    { what: 'html', data: f.html() },
    { what: 'exe', data: f.peExe() },
    { what: 'zip', data: f.plainZip() },
    { what: 'csv', data: f.csv() },
  );
  const names = fc.oneof(
    fc.constantFrom('notes.txt', 'x'.repeat(1000), '../../etc/passwd', 'emoji 😀.txt', '\u202Etxt.exe', 'nul\u0000.txt', ''),
    fc.string({ maxLength: 40, unit: 'grapheme' }),
  ).map((n) => n.replace(/["\r\n]/g, '_'));
  const mp = (variant: string, built: { payload: Buffer; headers: Record<string, string> }): MultipartBody => ({
    kind: 'multipart',
    variant,
    payload: built.payload,
    contentType: built.headers['content-type']!,
  });
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(names, files).map(([name, file]) => mp(`file ${file.what}`, fileUpload(name, file.data))) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom('true', 'false', 'yes', ''), files).map(([flag, file]) => mp(`file with private=${flag}`, fileUpload('lib.txt', file.data, { private: flag }))),
    },
    { weight: 1, arbitrary: files.map((file) => mp('part not named file', multipart([{ name: 'document', filename: 'a.txt', data: file.data }]))) },
    { weight: 1, arbitrary: fc.constant(mp('no file part', multipart([{ name: 'private', data: 'true' }])) as MultipartBody) },
    {
      weight: 1,
      arbitrary: fc.constant(
        mp('two files', multipart([{ name: 'file', filename: 'a.txt', data: 'a' }, { name: 'file', filename: 'b.txt', data: 'b' }])) as MultipartBody,
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constant(
        mp('too many fields', multipart([...['a', 'b', 'c', 'd', 'e', 'f'].map((n) => ({ name: n, data: 'v' })), { name: 'file', filename: 'a.txt', data: 'a' }])) as MultipartBody,
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        { kind: 'multipart' as const, variant: 'not multipart inside', payload: Buffer.from('garbage'), contentType: 'multipart/form-data; boundary=zzz' },
        { kind: 'multipart' as const, variant: 'no boundary', payload: Buffer.from('--x\r\n'), contentType: 'multipart/form-data' },
        { kind: 'multipart' as const, variant: 'cut short', payload: Buffer.from('--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nabc'), contentType: 'multipart/form-data; boundary=b' },
      ),
    },
    { weight: 1, arbitrary: fc.constant<Body>({ kind: 'json', value: { file: 'not a file' } }) },
    { weight: 1, arbitrary: fc.constant<Body>({ kind: 'raw', contentType: 'text/plain', payload: 'hello' }) },
    { weight: 1, arbitrary: fc.constantFrom(...MALFORMED_JSON.slice(0, 4)).map((payload): Body => ({ kind: 'raw', contentType: 'application/json', payload })) },
    { weight: 1, arbitrary: fc.constant<Body>({ kind: 'none' }) },
  );
}

function requestArb(ctx: SchemaContext, op: Operation, allowed: Caller[], world: World): Arbitrary<FuzzRequest> {
  const pathParams = paramsOf(op, 'path');
  const params = fc.tuple(...pathParams.map((p) => paramArb(ctx, p))).map((values) => Object.fromEntries(pathParams.map((p, i) => [p.name, values[i]!])));
  const content = specOf(op).requestBody?.content ?? {};
  let body: Arbitrary<FuzzRequest['body']> = fc.constant<Body>({ kind: 'none' });
  // Uploads: multipart/form-data. A contract without a requestBody for them (they read the
  // stream themselves) still gets multipart bodies: POST operations without one are uploads.
  if (content['multipart/form-data'] || (op.method === 'POST' && !specOf(op).requestBody)) body = multipartArb();
  else if (content['application/json']) body = jsonBodyArb(ctx, resolve(ctx, content['application/json'].schema ?? {}));
  void world;
  return fc.record({ auth: authArb(allowed), params, query: queryArb(ctx, op), headers: headersArb(ctx, op), body });
}

function tokenFor(h: Harness, auth: Auth, world: World): { authorization?: string; cookie?: string } {
  switch (auth.kind) {
    case 'right':
      if (auth.role === 'public') return {};
      return { authorization: `Bearer ${auth.role === 'external' ? world.session : world.tokens[auth.role]}` };
    case 'cookie':
      return { cookie: `__Host-sc_ext=${world.session}` };
    case 'none':
      return {};
    case 'garbage':
      return { authorization: 'Bearer not.a.jwt' };
    case 'expired':
      return { authorization: `Bearer ${world.expiredToken}` };
    case 'wrong-role':
      return { authorization: `Bearer ${world.tokens[auth.role]}` };
    case 'other-org':
      return { authorization: `Bearer ${h.token({ sub: 'staff-x', role: 'staff', org: `org-other-${randomUUID()}` })}` };
  }
}

async function send(h: Harness, op: Operation, req: FuzzRequest, world: World, ip: string): Promise<LightMyRequestResponse> {
  const query = req.query.length ? `?${new URLSearchParams(req.query).toString()}` : '';
  const headers: Record<string, string> = { ...req.headers, ...tokenFor(h, req.auth, world) };
  const options: InjectOptions = { method: op.method as InjectOptions['method'], url: `${pathOf(op, req.params)}${query}`, headers, remoteAddress: ip };
  const body = req.body;
  if (body.kind === 'json') {
    headers['content-type'] = 'application/json';
    options.payload = JSON.stringify(body.value);
  } else if (body.kind === 'raw') {
    headers['content-type'] = body.contentType;
    options.payload = body.payload;
  } else if (body.kind === 'multipart') {
    headers['content-type'] = body.contentType;
    options.payload = body.payload;
  }
  return h.app.inject(options);
}

function problemDetail(res: LightMyRequestResponse): string | undefined {
  try {
    return (res.json() as { detail?: string }).detail?.slice(0, 160);
  } catch {
    return undefined;
  }
}

function problemCode(res: LightMyRequestResponse): string | undefined {
  try {
    return (res.json() as { code?: string }).code;
  } catch {
    return undefined;
  }
}

const describe = (mismatches: Mismatch[]) =>
  mismatches.map((m) => `${m.operation} → ${m.status} ${m.contentType}: ${m.problem}${m.errors ? ` ${JSON.stringify(m.errors)}` : ''}`).join('; ');
