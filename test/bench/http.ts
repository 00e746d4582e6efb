/**
 * The HTTP benchmark suite (performance issue): autocannon against a real server on
 * PostgreSQL, every scenario measured as a ratio to `baseline-insert`, a bench-only route
 * (BENCH_MODE) that runs a transaction of two INSERTs of a message's and an audit event's
 * sizes through the same pool and Drizzle layer, in the same run and on the same database.
 *
 * Scenarios: baseline-insert, send-message (JWT, authorization, encryption, audit, chain),
 * send-message with the audit chain off (a second server, BENCH_AUDIT_CHAIN=off), list-messages
 * (50 per page, decrypted), list-threads (a Secure Messages tab), external-session (checks
 * and session creation, limiter raised). BENCH_SECONDS sets each run's length (default 10).
 */
import autocannon from 'autocannon';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { peakRssDuring, startServer, type BenchServer } from './server.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 50;
const THREADS = 200;
const MESSAGE_BODY = 'Your appointment is confirmed for Tuesday. '.repeat(24).slice(0, 1000);
const MiB = 1024 * 1024;

export interface HttpBenchRow {
  scenario: string;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  peakRssMiB: number;
}

async function api(server: BenchServer, method: string, url: string, token: string, body?: unknown) {
  const res = await fetch(`${server.base}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text || 'null');
}

interface Fixture {
  threadIds: string[];
  busyThreadId: string;
  tokens: string[];
}

/** One customer, THREADS threads, one of them with 200 messages, and (with a mail folder) 50 access-link tokens. */
async function seed(server: BenchServer, mailDir: string | null): Promise<Fixture> {
  const staff = server.token('staff');
  await api(server, 'PUT', '/v1/customers/c-bench', server.token('integration'), { displayName: 'Bench Customer', dateOfBirth: '1980-02-03' });
  const threadIds: string[] = [];
  for (let i = 0; i < THREADS; i++) {
    const res = await api(server, 'POST', '/v1/threads', staff, { record: { kind: 'customer', id: 'c-bench' }, subject: `Bench ${i}`, body: MESSAGE_BODY, replyAllowed: true });
    threadIds.push(res.thread.id);
  }
  const busyThreadId = threadIds[0]!;
  for (let i = 0; i < 200; i++) await api(server, 'POST', `/v1/threads/${busyThreadId}/messages`, staff, { body: MESSAGE_BODY });
  if (!mailDir) return { threadIds, busyThreadId, tokens: [] };
  for (let i = 0; i < 50; i++) {
    await api(server, 'POST', `/v1/threads/${threadIds[i]}/access-links`, staff, { email: `bench${i}@example.net`, expiresIn: '7d', verify: { dateOfBirth: true, phone: false } });
  }
  const tokens: string[] = [];
  const deadline = Date.now() + 60_000;
  while (tokens.length < 50 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    tokens.length = 0;
    for (const file of readdirSync(mailDir).filter((f) => f.endsWith('.eml'))) {
      const text = readFileSync(path.join(mailDir, file), 'utf8').replace(/=\r?\n/g, '').replace(/=3D/gi, '=');
      const token = /#token=([A-Za-z0-9_-]{43})/.exec(text)?.[1];
      if (token) tokens.push(token);
    }
  }
  if (tokens.length < 50) throw new Error(`only ${tokens.length} access mails arrived`);
  return { threadIds, busyThreadId, tokens };
}

type Requests = NonNullable<autocannon.Options['requests']>;

async function load(server: BenchServer, scenario: string, method: 'GET' | 'POST', token: string | null, requests: Requests): Promise<HttpBenchRow> {
  const options = (duration: number): autocannon.Options => ({
    url: server.base,
    connections: CONNECTIONS,
    duration,
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    requests,
  });
  await autocannon(options(Math.min(3, SECONDS))); // warm-up: JIT, pool, statement caches
  const { result, peak } = await peakRssDuring(server, () => autocannon(options(SECONDS)));
  return {
    scenario,
    reqPerSec: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    peakRssMiB: Number((peak / MiB).toFixed(1)),
  };
}

const rotate = <T>(items: T[]) => {
  let i = 0;
  return () => items[i++ % items.length]!;
};

export async function runHttpBench(): Promise<HttpBenchRow[]> {
  const rows: HttpBenchRow[] = [];
  const mailDir = mkdtempSync(path.join(tmpdir(), 'sc-bench-mail-'));
  const env = { NODE_ENV: 'development', BENCH_MODE: 'true', EXTERNAL_SESSION_RATE_LIMIT: '1000000', MAIL_DIR: mailDir };
  const server = await startServer(env);
  try {
    const fx = await seed(server, mailDir);
    const staff = server.token('staff');
    const baselineBody = JSON.stringify({ orgId: server.orgId, body: MESSAGE_BODY });
    rows.push(await load(server, 'baseline-insert', 'POST', null, [{ path: '/bench/baseline-insert', body: baselineBody }]));

    const nextThread = rotate(fx.threadIds);
    const sendBody = JSON.stringify({ body: MESSAGE_BODY });
    const send: Requests = [{ method: 'POST', setupRequest: (req) => ({ ...req, path: `/v1/threads/${nextThread()}/messages`, body: sendBody }) }];
    rows.push(await load(server, 'send-message', 'POST', staff, send));
    rows.push(await load(server, 'list-messages', 'GET', staff, [{ path: `/v1/threads/${fx.busyThreadId}/messages?limit=50` }]));
    rows.push(await load(server, 'list-threads', 'GET', staff, [{ path: '/v1/customers/c-bench/threads?limit=50' }]));
    const nextToken = rotate(fx.tokens);
    rows.push(
      await load(server, 'external-session', 'POST', null, [
        { setupRequest: (req) => ({ ...req, path: '/v1/external/sessions', body: JSON.stringify({ token: nextToken(), dateOfBirth: '1980-02-03' }) }) },
      ]),
    );
  } finally {
    await server.stop();
  }

  // The chain's price: the same send load on a fresh server whose audit events skip the chain,
  // then once more on a fresh server with the chain, so each side has a run on a fresh server
  // and the database grows between them in both directions (the cost uses the mean of the two
  // chained runs).
  for (const [label, chain] of [
    ['send-message (audit chain off)', 'off'],
    ['send-message (audit chain on, fresh server)', 'on'],
  ] as const) {
    const fresh = await startServer({ ...env, BENCH_AUDIT_CHAIN: chain });
    try {
      const fx = await seed(fresh, null);
      const nextThread = rotate(fx.threadIds);
      const sendBody = JSON.stringify({ body: MESSAGE_BODY });
      rows.push(
        await load(fresh, label, 'POST', fresh.token('staff'), [
          { method: 'POST', setupRequest: (req) => ({ ...req, path: `/v1/threads/${nextThread()}/messages`, body: sendBody }) },
        ]),
      );
    } finally {
      await fresh.stop();
    }
  }
  return rows;
}
