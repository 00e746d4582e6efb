/**
 * The provable audit trail: edits, deletions, truncation and rewrites are all detected (the
 * last two against a saved, signed checkpoint); concurrent writers keep the chain linear; the
 * NDJSON export streams exactly the filtered events.
 */
import t, { type Test } from 'tap';
import { sql } from 'drizzle-orm';
import { build, fakeClock, openTestDatabase, type Harness } from '../../fixtures/build.js';
import { assertProblem } from '../../fixtures/problems.js';
import { chainHash, findChainBreak } from '../../../src/modules/audit/audit-chain.js';
import { rowsOf } from '../../../src/db/util.js';
import fc from 'fast-check';
import { createHash, randomUUID } from 'node:crypto';
import { createAuditRepo } from '../../../src/modules/audit/audit.repo.js';
import { createAuditService } from '../../../src/modules/audit/audit.service.js';

/** An audit_events row as the chain functions see it. */
function chainedFieldsOf(r: Record<string, unknown>) {
  return {
    id: String(r.id),
    orgId: String(r.org_id),
    seq: Number(r.seq),
    prevHash: String(r.prev_hash),
    hash: String(r.hash),
    occurredAt: new Date(r.occurred_at as string),
    actorKind: String(r.actor_kind),
    actorId: r.actor_id as string | null,
    actorName: r.actor_name as string | null,
    action: String(r.action),
    outcome: String(r.outcome),
    recordKind: r.record_kind as string | null,
    recordId: r.record_id as string | null,
    threadId: r.thread_id as string | null,
    messageId: r.message_id as string | null,
    documentId: r.document_id as string | null,
    linkId: r.link_id as string | null,
    ip: r.ip as string | null,
    userAgent: r.user_agent as string | null,
    requestId: r.request_id as string | null,
    reason: r.reason as string | null,
  };
}


async function story(h: Harness) {
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  const thread = (
    await h.call('POST', '/v1/threads', h.staff(), { record: { kind: 'customer', id: 'c-1' }, subject: 'S', body: 'B', replyAllowed: true })
  ).json().thread;
  for (let i = 0; i < 4; i++) await h.call('POST', `/v1/threads/${thread.id}/messages`, h.staff(), { body: `m${i}` });
  return thread.id as string;
}

// The story writes 7 events: record.upserted, thread.created, message.sent, then 4 × message.sent.

/** Runs SQL with the append-only trigger off, inside one transaction, as an attacker with DDL rights would. */
async function tamper(h: Harness, statements: ReturnType<typeof sql>[]) {
  await h.app.database.db.transaction(async (tx) => {
    await tx.execute(sql`alter table audit_events disable trigger audit_events_no_update_delete`);
    for (const s of statements) await tx.execute(s);
    await tx.execute(sql`alter table audit_events enable trigger audit_events_no_update_delete`);
  });
}

const verify = async (h: Harness) => (await h.call('GET', '/v1/audit-events/verify', h.admin())).json();

t.test('an untouched chain verifies; an edited row is reported at that row', async (t) => {
  const h = await build(t);
  await story(h);
  const clean = await verify(h);
  t.match(clean, { valid: true, checked: 7, firstBreak: null, head: { seq: 7 } });
  await tamper(h, [sql`update audit_events set actor_id = 'someone-else' where org_id = ${h.orgId} and seq = 5`]);
  t.match(await verify(h), { valid: false, firstBreak: { seq: 5, problem: 'hash_mismatch' } });
});

t.test('a deleted middle row is reported', async (t) => {
  const h = await build(t);
  await story(h);
  await tamper(h, [sql`delete from audit_events where org_id = ${h.orgId} and seq = 6`]);
  t.match(await verify(h), { valid: false, firstBreak: { seq: 6, problem: 'sequence_gap' } });
});

t.test('a truncated tail and a rewritten chain are caught against a saved checkpoint', async (t) => {
  const h = await build(t);
  await story(h);
  const checkpoint = (await h.call('GET', '/v1/audit-events/checkpoint', h.admin())).json();
  t.match(checkpoint, { orgId: h.orgId, seq: 7 });
  t.match(checkpoint.signature, /^[0-9a-f]{64}$/);
  const againstCheckpoint = async () => (await h.call('POST', '/v1/audit-events/verify', h.admin(), { checkpoint })).json();
  t.match(await againstCheckpoint(), { valid: true });

  // Truncate the tail and fix up the head row, so the chain is self-consistent but shorter.
  await tamper(h, [
    sql`delete from audit_events where org_id = ${h.orgId} and seq > 5`,
    sql`update audit_chain_heads set seq = 5, hash = (select hash from audit_events where org_id = ${h.orgId} and seq = 5) where org_id = ${h.orgId}`,
  ]);
  t.match(await verify(h), { valid: true }, 'without the checkpoint the shortened chain looks whole');
  t.match(await againstCheckpoint(), { valid: false, firstBreak: { problem: 'truncated_before_checkpoint' } });
});

t.test('a chain rewritten with recomputed hashes fails against the checkpoint', async (t) => {
  const h = await build(t);
  await story(h);
  const checkpoint = (await h.call('GET', '/v1/audit-events/checkpoint', h.admin())).json();
  // Rewrite event 3 and recompute every later hash, as an attacker who knows the algorithm would.
  const rows = rowsOf<Record<string, unknown>>(await h.app.database.db.execute(sql`select * from audit_events where org_id = ${h.orgId} order by seq`));
  const fixes: ReturnType<typeof sql>[] = [];
  let prev = '';
  for (const r of rows) {
    const e = { ...chainedFieldsOf(r), prevHash: prev || String(r.prev_hash), actorId: Number(r.seq) === 3 ? 'forged' : (r.actor_id as string | null) };
    const hash = chainHash(e);
    fixes.push(sql`update audit_events set actor_id = ${e.actorId}, prev_hash = ${e.prevHash}, hash = ${hash} where id = ${e.id}`);
    prev = hash;
  }
  fixes.push(sql`update audit_chain_heads set hash = ${prev} where org_id = ${h.orgId}`);
  await tamper(h, fixes);
  t.match(await verify(h), { valid: true }, 'a consistent rewrite passes the plain verification');
  const res = await h.call('POST', '/v1/audit-events/verify', h.admin(), { checkpoint });
  t.match(res.json(), { valid: false, firstBreak: { seq: 7, problem: 'checkpoint_mismatch' } });

  const forged = { ...checkpoint, hash: prev };
  assertProblem(t, await h.call('POST', '/v1/audit-events/verify', h.admin(), { checkpoint: forged }), 422, 'checkpoint_invalid', 'a re-signed checkpoint needs the key');
});

t.test('50 concurrent sends keep the chain linear', async (t: Test) => {
  const h = await build(t);
  const threadId = await story(h);
  const sends = await Promise.all(Array.from({ length: 50 }, (_, i) => h.call('POST', `/v1/threads/${threadId}/messages`, h.staff(`staff-${i}`), { body: `c${i}` })));
  t.same(new Set(sends.map((s) => s.statusCode)), new Set([201]));
  const result = await verify(h);
  t.match(result, { valid: true, checked: 57, head: { seq: 57 } });
  const seqs = rowsOf<{ seq: number }>(await h.app.database.db.execute(sql`select seq from audit_events where org_id = ${h.orgId} order by seq`)).map((r) => Number(r.seq));
  t.same(seqs, Array.from({ length: 57 }, (_, i) => i + 1), 'no forks, no gaps');
});

t.test('the export streams NDJSON in chain order with the same filters', async (t) => {
  const h = await build(t);
  const threadId = await story(h);
  const res = await h.call('GET', `/v1/audit-events/export?threadId=${threadId}&action=message.sent`, h.admin());
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /application\/x-ndjson/);
  const lines = res.body.trimEnd().split('\n').map((l) => JSON.parse(l));
  t.equal(lines.length, 5);
  t.ok(lines.every((e) => e.action === 'message.sent' && e.threadId === threadId));
  t.same(lines.map((e) => e.seq), [...lines.map((e) => e.seq)].sort((a, b) => a - b));
  const all = (await h.call('GET', '/v1/audit-events/export', h.admin())).body.trimEnd().split('\n');
  t.equal(all.length, 7);
  t.equal((await h.call('GET', '/v1/audit-events/export', h.staff())).statusCode, 403);
  assertProblem(t, await h.call('GET', '/v1/audit-events/export?from=nope', h.admin()), 400, 'validation_failed');
});

t.test('thread retention: 409 before the date; after it the thread is crypto-shredded and the trail verifies', async (t) => {
  const clock = fakeClock();
  const h = await build(t, { clock });
  await h.call('PATCH', '/v1/settings', h.admin(), { retentionYears: 6 });
  const threadId = await story(h);
  assertProblem(t, await h.call('DELETE', `/v1/threads/${threadId}`, h.staff()), 409, 'retention_period_active', 'before retention');
  clock.advance(6 * 366 * 24 * 3600 * 1000);
  const del = await h.call('DELETE', `/v1/threads/${threadId}`, h.staff());
  t.equal(del.statusCode, 200);
  const [row] = rowsOf<{ key: number; subject: number; bodies: number }>(
    await h.app.database.db.execute(
      sql`select length(wrapped_key) as key, length(subject) as subject, (select coalesce(sum(length(body)), 0)::int from messages where thread_id = ${threadId}) as bodies from threads where id = ${threadId}`,
    ),
  );
  t.same(row, { key: 0, subject: 0, bodies: 0 }, 'key, subject and bodies are gone');
  assertProblem(t, await h.call('GET', `/v1/threads/${threadId}`, h.staff()), 410, 'thread_deleted', 'reading a shredded thread');
  t.same((await h.call('GET', '/v1/customers/c-1/threads', h.staff())).json().items, [], 'it leaves the Secure Messages tab');
  const events = (await h.call('GET', `/v1/audit-events?threadId=${threadId}&limit=200`, h.admin())).json().items;
  t.same(events.slice(-2).map((e: { action: string; outcome: string }) => `${e.action}:${e.outcome}`), ['thread.deleted:denied', 'thread.deleted:success']);
  t.equal((await verify(h)).valid, true, 'the audit trail remains and verifies');
});

t.test('probing another organization: the caller gets 404, the owner gets a denied event', async (t) => {
  const h = await build(t);
  const threadId = await story(h);
  const intruder = h.token({ sub: 'mallory', role: 'staff', name: 'Mallory', org: 'org-intruder' });
  t.equal((await h.call('GET', `/v1/threads/${threadId}`, intruder)).statusCode, 404);
  const denied = (await h.call('GET', '/v1/audit-events?outcome=denied', h.admin())).json().items;
  t.match(denied, [{ action: 'thread.opened', actor: { id: 'mallory' }, threadId, reason: 'foreign_org:org-intruder' }]);
  t.equal((await verify(h)).valid, true);
});

t.test('a ranged verification ends at the first event past `to`: clock skew between instances is no gap', async (t) => {
  // Two instances whose clocks differ by a few milliseconds chain events in commit order, so
  // occurred_at may step back along the chain. The window must not drop such an event.
  const clock = fakeClock(new Date('2026-06-01T12:00:00.000Z'));
  const h = await build(t, { clock });
  const sync = h.integration();
  const upsert = (id: string) => h.call('PUT', `/v1/customers/${id}`, sync, { displayName: 'Skew' });
  await upsert('c-a'); // 12:00:00.000
  clock.advance(10);
  await upsert('c-b'); // 12:00:00.010
  clock.advance(-5);
  await upsert('c-c'); // 12:00:00.005: chained after c-b, stamped before it
  clock.advance(15);
  await upsert('c-d'); // 12:00:00.020
  const verify = (to: string) => h.call('GET', `/v1/audit-events/verify?to=${encodeURIComponent(to)}`, h.admin());
  const inside = await verify('2026-06-01T12:00:00.007Z');
  t.equal(inside.statusCode, 200);
  t.same(inside.json(), { valid: true, checked: 1, firstBreak: null, head: { seq: 1, hash: inside.json().head.hash } }, 'the window is the chain up to the first later event');
  const all = await verify('2026-06-01T12:00:00.020Z');
  t.equal(all.json().valid, true);
  t.equal(all.json().checked, 4, 'every event up to the last one');
  t.equal((await h.call('GET', '/v1/audit-events/verify', h.admin())).json().valid, true, 'the whole chain verifies');
});

t.test('the canonical form is JSON.stringify of the fixed-order array, and the database links exactly as chainHash does', async (t) => {
  const text = fc.option(fc.string({ unit: 'binary', maxLength: 40 }), { nil: null });
  // The formula chains were written with before the linking moved into SQL: every stored chain
  // must still verify, so the two must agree on every input.
  const reference = (e: Parameters<typeof chainHash>[0]) =>
    createHash('sha256')
      .update(
        JSON.stringify([e.prevHash, e.orgId, e.seq, e.id, e.occurredAt.toISOString(), e.actorKind, e.actorId, e.actorName, e.action, e.outcome, e.recordKind, e.recordId, e.threadId, e.messageId, e.documentId, e.linkId, e.ip, e.userAgent, e.requestId, e.reason]),
      )
      .digest('hex');
  fc.assert(
    fc.property(
      fc.record({
        prevHash: fc.stringMatching(/^[0-9a-f]{64}$/),
        orgId: fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }),
        seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        id: fc.uuid(),
        occurredAt: fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }),
        actorKind: fc.constantFrom('staff', 'admin', 'patron', 'external'),
        actorId: text,
        actorName: text,
        action: fc.string({ maxLength: 30 }),
        outcome: fc.constantFrom('success', 'denied'),
        recordKind: text,
        recordId: text,
        threadId: fc.option(fc.uuid(), { nil: null }),
        messageId: fc.option(fc.uuid(), { nil: null }),
        documentId: fc.option(fc.uuid(), { nil: null }),
        linkId: fc.option(fc.uuid(), { nil: null }),
        ip: text,
        userAgent: text,
        requestId: text,
        reason: text,
      }),
      (e) => chainHash(e) === reference(e),
    ),
    { seed: 20261204, numRuns: 2000 },
  );
  t.pass('chainHash equals the array formula on 2,000 random events');

  // Names and agents with quotes, backslashes, control characters and non-ASCII go through the
  // SQL linking; verification recomputes every hash in JavaScript.
  const h = await build(t);
  const odd = ['Zoë "Z" O\'Brien \\ staff', 'tab\there\nnewline', '名前 🌱 ÅÄÖ', '\u0001\u001f</script>'];
  await h.call('PUT', '/v1/customers/c-odd', h.integration(), { displayName: 'Odd' });
  for (const name of odd) {
    const res = await h.call('GET', '/v1/customers/c-odd', h.token({ sub: `s-${odd.indexOf(name)}`, role: 'staff', name }), undefined, { 'user-agent': `${name} agent/1.0` });
    t.equal(res.statusCode, 200);
  }
  const verdict = (await h.call('GET', '/v1/audit-events/verify', h.admin())).json();
  t.equal(verdict.valid, true, 'hashes linked in SQL verify in JavaScript');
  t.ok(verdict.checked >= odd.length + 1, `${verdict.checked} events checked`);
  const names = (await h.call('GET', '/v1/audit-events?action=record.viewed&limit=50', h.admin())).json().items.map((i: { actor: { name: string } }) => i.actor.name);
  t.ok(names.includes(odd[0]) && names.includes(odd[2]), 'quotes, backslashes and non-ASCII are stored as given');
});

t.test('the database links random events exactly as chainHash verifies them, times never step back, and uppercase UUIDs are stored as read back', async (t) => {
  const database = await openTestDatabase(t);
  const repo = createAuditRepo(database.db);
  // Text the API can store: no NUL (PostgreSQL text refuses it) and no lone surrogates.
  const storable = fc.string({ unit: 'grapheme', maxLength: 24 }).filter((v) => !v.includes('\u0000'));
  const text = fc.option(storable, { nil: null });
  const orgId = `org-${randomUUID()}-"quoted" \\ ÅÄÖ 名前`;
  const events = fc.sample(
    fc.record({
      actorKind: fc.constantFrom('staff', 'admin', 'patron', 'external'),
      actorId: text,
      actorName: text,
      action: storable,
      outcome: fc.constantFrom('success', 'denied'),
      recordKind: text,
      recordId: text,
      ip: text,
      userAgent: text,
      requestId: text,
      reason: text,
      skewMs: fc.integer({ min: -5_000, max: 5_000 }),
    }),
    { seed: 20261204, numRuns: 120 },
  );
  const base = Date.now();
  await database.db.transaction(async (tx) => {
    await repo.ensureHead(tx, orgId);
    for (const [i, e] of events.entries()) {
      const { skewMs, ...fields } = e;
      const linked = await repo.appendLinked(
        tx,
        { ...fields, id: randomUUID(), orgId, threadId: i % 3 === 0 ? randomUUID() : null, messageId: null, documentId: null, linkId: null },
        // Writers' clocks disagree by up to 5 s either way.
        new Date(base + i * 10 + skewMs),
      );
      if (!linked) throw new Error('not linked');
    }
  });
  const rows = rowsOf<Record<string, unknown>>(await database.db.execute(sql`select * from audit_events where org_id = ${orgId} order by seq`));
  const chained = rows.map(chainedFieldsOf);
  t.equal(chained.length, events.length, `${events.length} random events written`);
  t.same(findChainBreak(chained).break, null, 'every hash made in SQL verifies in JavaScript');
  t.ok(
    chained.every((e, i) => i === 0 || e.occurredAt.getTime() >= chained[i - 1]!.occurredAt.getTime()),
    'occurredAt never steps back along the chain, though the writers\' clocks did',
  );

  const h = await build(t);
  const { threadId } = await (async () => {
    await h.call('PUT', '/v1/customers/c-case', h.integration(), { displayName: 'Case' });
    const res = await h.call('POST', '/v1/threads', h.staff(), { record: { kind: 'customer', id: 'c-case' }, subject: 's', body: 'b', replyAllowed: true });
    return { threadId: res.json().thread.id as string };
  })();
  t.equal((await h.call('GET', `/v1/threads/${threadId.toUpperCase()}`, h.staff())).statusCode, 200, 'a thread read by its uppercase id');
  const verdict = (await h.call('GET', '/v1/audit-events/verify', h.admin())).json();
  t.equal(verdict.valid, true, 'the chain still verifies (route params are lowercased on the way in, and record() lowercases UUIDs too)');
});

t.test("concurrent first transactions of a new organization both link, in one unbroken chain", async (t) => {
  const database = await openTestDatabase(t);
  const signer = { sign: () => '0'.repeat(64), verify: () => true } as never;
  const audit = createAuditService({ db: database.db, repo: createAuditRepo(database.db), clock: { now: () => new Date() }, signer });
  const orgId = `org-first-${randomUUID()}`;
  const ctx = (n: number) => ({ actor: { orgId, role: 'staff', id: `s-${n}`, name: `S${n}`, rec: null }, ip: null, userAgent: null, requestId: `r-${n}` }) as never;
  // Each transaction records two events, as opening a thread does.
  await Promise.all(
    [1, 2, 3, 4].map((n) =>
      database.db.transaction(async (tx) => {
        await audit.record(tx, ctx(n), { action: 'thread.created' });
        await audit.record(tx, ctx(n), { action: 'message.sent' });
      }),
    ),
  );
  const result = await audit.verify(orgId);
  t.equal(result.valid, true, 'the chain verifies');
  t.equal(result.checked, 8, 'all eight events are in it');
});
