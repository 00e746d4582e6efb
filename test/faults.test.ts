/**
 * Faults under load. The app reaches PostgreSQL (and Redis) through a TCP proxy that the test
 * cuts: every connection drops and new ones are refused, as during a restart or failover.
 *
 * PostgreSQL: during the outage clients get 503 and /readyz fails; no client gets a 201 for a
 * message that was not stored; afterwards the same app serves again without a restart, and
 * every message that got a 201 is readable, with matching counts.
 * Redis: while it is down the external-session route fails closed (503) and the rest of the
 * API keeps working; afterwards the route works again.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { build, newKey, openTestDatabase } from './fixtures/build.js';
import { startTcpProxy } from './fixtures/tcp-proxy.js';

t.test('PostgreSQL drops every connection in the middle of a send load', { skip: !process.env.DATABASE_URL && 'needs DATABASE_URL (PostgreSQL)' }, async (t) => {
  const database = await openTestDatabase(t);
  const direct = new URL((database as { url?: string }).url!);
  const proxy = await startTcpProxy(Number(direct.port || 5432), direct.hostname);
  t.teardown(() => proxy.close());
  const viaProxy = new URL(direct);
  viaProxy.port = String(proxy.port);
  const h = await build(t, { encryptionKeys: `v1:${newKey()}`, env: { DATABASE_URL: viaProxy.toString() } });
  const staff = h.staff();
  t.equal((await h.call('PUT', '/v1/customers/c-fault', h.integration(), { displayName: 'Fault Tolerant' })).statusCode, 201);
  const threadIds: string[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await h.call('POST', '/v1/threads', staff, { record: { kind: 'customer', id: 'c-fault' }, subject: `Load ${i}`, body: 'start', replyAllowed: true });
    threadIds.push(res.json().thread.id);
  }

  type Phase = 'before' | 'outage' | 'after';
  let phase: Phase = 'before';
  let running = true;
  const answers: { phase: Phase; status: number; id?: string; threadId: string; code?: string }[] = [];
  const worker = async (w: number) => {
    for (let i = 0; running; i++) {
      const threadId = threadIds[(w + i) % threadIds.length]!;
      const sentIn = phase;
      const res = await h.call('POST', `/v1/threads/${threadId}/messages`, staff, { body: `w${w}-${i}` });
      answers.push({ phase: sentIn === phase ? phase : 'outage', status: res.statusCode, threadId, id: res.statusCode === 201 ? res.json().id : undefined, code: res.statusCode >= 400 ? res.json().code : undefined });
      if (res.statusCode !== 201) await sleep(20);
    }
  };
  const load = Promise.all([0, 1, 2, 3, 4, 5].map(worker));

  await sleep(800);
  phase = 'outage';
  await proxy.cut();
  await sleep(300);
  const ready = await h.call('GET', '/readyz');
  t.equal(ready.statusCode, 503, '/readyz fails during the outage');
  await sleep(1500);
  await proxy.restore();
  phase = 'after';
  // The pool reconnects on demand: give the first new connections a moment, then measure.
  let readyAgain = 0;
  for (let i = 0; i < 50 && readyAgain !== 200; i++) {
    readyAgain = (await h.call('GET', '/readyz')).statusCode;
    if (readyAgain !== 200) await sleep(100);
  }
  t.equal(readyAgain, 200, '/readyz recovers without a restart');
  await sleep(1000);
  running = false;
  await load;

  const by = (p: Phase, status: number) => answers.filter((a) => a.phase === p && a.status === status).length;
  t.ok(by('before', 201) > 0, `messages stored before the outage (${by('before', 201)})`);
  t.ok(answers.filter((a) => a.phase === 'outage' && a.status === 503).length > 0, `503s during the outage (${by('outage', 503)})`);
  t.ok(by('after', 201) > 0, `messages stored after recovery (${by('after', 201)})`);
  const others = answers.filter((a) => a.status !== 201 && a.status !== 503);
  t.same(others.map((a) => a.status), [], 'every answer was 201 or 503: never a 500');
  t.ok(answers.filter((a) => a.status === 503).every((a) => a.code === 'service_unavailable'), '503s are service_unavailable problems');

  // Every 201 is readable, and nothing was stored beyond what was answered (plus requests
  // whose commit landed while the connection dropped, which answered 503).
  const stored = new Set<string>();
  for (const threadId of threadIds) {
    let cursor: string | null = null;
    do {
      const res = await h.call('GET', `/v1/threads/${threadId}/messages?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, staff);
      t.equal(res.statusCode, 200);
      for (const m of res.json().items as { id: string; body: string }[]) if (m.body !== 'start') stored.add(m.id);
      cursor = res.json().nextCursor;
    } while (cursor);
  }
  const acknowledged = answers.filter((a) => a.status === 201).map((a) => a.id!);
  t.ok(acknowledged.every((id) => stored.has(id)), `all ${acknowledged.length} acknowledged messages are stored and readable`);
  const unacknowledged = stored.size - acknowledged.length;
  t.ok(unacknowledged >= 0 && unacknowledged <= answers.filter((a) => a.status === 503).length, `stored minus acknowledged (${unacknowledged}) is at most the 503s that raced a commit`);
});

t.test('Redis goes away: the external-session route fails closed, the rest of the API works', { skip: !process.env.REDIS_URL && 'needs REDIS_URL' }, async (t) => {
  const redis = new URL(process.env.REDIS_URL!);
  const proxy = await startTcpProxy(Number(redis.port || 6379), redis.hostname);
  t.teardown(() => proxy.close());
  const h = await build(t, { env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}` } });
  const staff = h.staff();
  await h.call('PUT', '/v1/customers/c-redis', h.integration(), { displayName: 'Redis Down' });
  const thread = await h.call('POST', '/v1/threads', staff, { record: { kind: 'customer', id: 'c-redis' }, subject: 'x', body: 'y', replyAllowed: true });
  const threadId = thread.json().thread.id as string;
  const attempt = () => h.call('POST', '/v1/external/sessions', undefined, { token: 'A'.repeat(43) });

  t.equal((await attempt()).statusCode, 401, 'before: an unknown token is a plain 401');
  await proxy.cut();
  await sleep(300);
  const refused = await attempt();
  t.equal(refused.statusCode, 503, 'during: the rate-limited route fails closed');
  t.equal(refused.json().code, 'service_unavailable');
  t.equal((await h.call('GET', `/v1/threads/${threadId}`, staff)).statusCode, 200, 'during: staff reads still work');
  t.equal((await h.call('POST', `/v1/threads/${threadId}/messages`, staff, { body: 'still here' })).statusCode, 201, 'during: sends still work');
  t.equal((await h.call('GET', '/readyz')).statusCode, 200, 'during: /readyz (the database) is fine');
  await proxy.restore();
  let after = 0;
  for (let i = 0; i < 60 && after !== 401; i++) {
    after = (await attempt()).statusCode;
    if (after !== 401) await sleep(200);
  }
  t.equal(after, 401, 'after: the route works again without a restart');
});
