/**
 * The response-contract guard (test/fixtures/contract.ts) itself: it accepts what the contract
 * declares and flags every kind of departure, on synthetic answers checked against the live
 * contract, and it really sees app.inject answers and answers over a socket.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import Fastify from 'fastify';
import swagger from '@fastify/swagger';
import { build } from '../fixtures/build.js';
import { contractOf, GLOBAL_ALLOWANCES, guardResponses, type ContractException, type ObservedResponse } from '../fixtures/contract.js';

const problem = (status: number, code: string, extra: Record<string, unknown> = {}) =>
  Buffer.from(JSON.stringify({ type: `urn:securecare:problem:${code}`, title: 'T', status, code, detail: 'd', instance: randomUUID(), ...extra }));
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const PJ = 'application/problem+json; charset=utf-8';
const AJ = 'application/json; charset=utf-8';

t.test('synthetic answers against the live contract', async (t) => {
  const h = await build(t);
  const contract = contractOf(h.app);
  const id = randomUUID();
  const check = (res: Omit<ObservedResponse, 'body'> & { body?: Buffer }, exceptions: ContractException[] = []) =>
    contract.check({ body: undefined, ...res }, exceptions).map((m) => m.problem);

  t.ok(contract.operations.length > 30, `${contract.operations.length} operations`);
  t.equal(contract.operation('GET', `/v1/threads/${id}`)?.operationId, 'getThread', 'a parametric path finds its operation');
  t.equal(contract.operation('GET', `/v1/threads/${id}/`)?.operationId, 'getThread', 'a trailing slash is ignored, as in the router');
  t.equal(contract.operation('GET', '/v1/audit-events/verify?from=x')?.operationId, 'verifyAuditChain', 'static segments win; the query is ignored');
  t.equal(contract.operation('GET', '/v1/me/threads')?.operationId, 'listMyThreads');

  t.same(check({ method: 'GET', url: '/healthz', status: 200, contentType: AJ, body: json({ status: 'ok' }) }), [], 'a conforming answer');
  t.match(check({ method: 'GET', url: '/healthz', status: 200, contentType: AJ, body: json({ status: 1 }) }), [/does not match the declared schema/], 'a wrong type');
  t.match(check({ method: 'GET', url: '/healthz', status: 200, contentType: AJ, body: json({ status: 'ok', extra: 1 }) }), [/does not match/], 'an extra field');
  t.match(check({ method: 'GET', url: '/healthz', status: 200, contentType: AJ, body: Buffer.from('{') }), [/not JSON/], 'a broken body');
  t.match(check({ method: 'GET', url: '/healthz', status: 200, contentType: 'text/html', body: Buffer.from('<p>') }), [/content type text\/html is not declared/]);
  t.match(check({ method: 'GET', url: '/healthz', status: 404, contentType: PJ, body: problem(404, 'not_found') }), [/status 404 is not declared/]);
  t.match(check({ method: 'GET', url: `/v1/threads/${id}`, status: 409, contentType: PJ, body: problem(409, 'retention_period_active') }), [/status 409 is not declared/]);
  t.same(
    check({ method: 'GET', url: `/v1/threads/${id}`, status: 409, contentType: PJ, body: problem(409, 'retention_period_active') }, [
      { status: 409, operationId: 'getThread', reason: 'test' },
    ]),
    [],
    'a per-harness exception lets a valid Problem through',
  );
  t.match(
    check({ method: 'GET', url: `/v1/threads/${id}`, status: 409, contentType: PJ, body: problem(409, 'retention_period_active') }, [
      { status: 409, operationId: 'updateThread' },
    ]),
    [/not declared/],
    'an exception for another operation does not',
  );

  // Problems must agree with themselves.
  t.same(check({ method: 'GET', url: `/v1/threads/${id}`, status: 404, contentType: PJ, body: problem(404, 'not_found') }), []);
  t.match(check({ method: 'GET', url: `/v1/threads/${id}`, status: 404, contentType: PJ, body: problem(403, 'forbidden') }), [/differs from the HTTP status/]);
  t.match(check({ method: 'GET', url: `/v1/threads/${id}`, status: 404, contentType: PJ, body: problem(404, 'forbidden') }), [/belongs to status 403/]);
  t.match(check({ method: 'GET', url: `/v1/threads/${id}`, status: 404, contentType: PJ, body: problem(404, 'nope') }), [/not a known error code/]);
  t.match(check({ method: 'GET', url: `/v1/threads/${id}`, status: 404, contentType: PJ, body: problem(404, 'not_found', { type: 'about:blank' }) }), [/Problem.type/]);
  t.match(check({ method: 'GET', url: `/v1/threads/${id}`, status: 404, contentType: PJ, body: json({ statusCode: 404, error: 'Not Found' }) }), [/not a valid Problem|does not match/]);

  // The global allowance: 500 internal_error and 503 service_unavailable, as valid Problems only.
  t.same(GLOBAL_ALLOWANCES.map((g) => `${g.status} ${g.code}`), ['500 internal_error', '503 service_unavailable']);
  t.same(check({ method: 'GET', url: `/v1/threads/${id}`, status: 500, contentType: PJ, body: problem(500, 'internal_error') }), []);
  t.same(check({ method: 'GET', url: `/v1/threads/${id}`, status: 503, contentType: PJ, body: problem(503, 'service_unavailable') }), []);
  t.match(
    check({ method: 'GET', url: `/v1/threads/${id}`, status: 503, contentType: AJ, body: json({ error: 'Service Unavailable', message: 'Service Unavailable', statusCode: 503 }) }),
    [/must at least be a problem\+json Problem/],
    "Fastify's own 503 body (return503OnClosing) is not a Problem",
  );
  t.match(check({ method: 'GET', url: `/v1/threads/${id}`, status: 429, contentType: PJ, body: problem(429, 'rate_limited') }), [/status 429 is not declared/], '429 is declared-or-fail');

  // What Fastify's JSON parser answers is declared on every JSON-body operation.
  t.same(check({ method: 'POST', url: '/v1/threads', status: 413, contentType: PJ, body: problem(413, 'payload_too_large') }), [], '413 on a JSON-body operation is declared');
  t.same(check({ method: 'POST', url: '/v1/threads', status: 415, contentType: PJ, body: problem(415, 'unsupported_media_type') }), [], '415 on a JSON-body operation is declared');
  t.match(check({ method: 'GET', url: `/v1/threads/${id}`, status: 413, contentType: PJ, body: problem(413, 'payload_too_large') }), [/status 413 is not declared/], 'but not on a GET without a body');
  // Downloads go out with the document's own media type: the contract declares */*.
  t.same(check({ method: 'GET', url: `/v1/documents/${id}/content`, status: 200, contentType: 'application/pdf', body: Buffer.from('%PDF-1.7') }), []);
  // Binary content: status and type, never the body.
  t.same(check({ method: 'GET', url: '/v1/audit-events/export', status: 200, contentType: 'application/x-ndjson', body: Buffer.from('not json\n') }), []);
  t.match(check({ method: 'GET', url: '/v1/audit-events/export', status: 200, contentType: AJ, body: json([]) }), [/not declared/]);
  // No content declared: the body must be empty.
  t.same(check({ method: 'DELETE', url: '/v1/external/session', status: 204, contentType: undefined, body: Buffer.alloc(0) }), []);
  t.match(check({ method: 'DELETE', url: '/v1/external/session', status: 204, contentType: AJ, body: json({}) }), [/declares no content/]);

  // Unknown and hidden routes.
  t.same(check({ method: 'GET', url: '/v1/nope', status: 404, contentType: PJ, body: problem(404, 'not_found'), routeExists: false }), []);
  t.match(check({ method: 'GET', url: '/v1/nope', status: 404, contentType: AJ, body: json({ message: 'x' }), routeExists: false }), [/must answer problem\+json/]);
  t.match(check({ method: 'GET', url: '/v1/nope', status: 200, contentType: PJ, body: problem(200, 'not_found'), routeExists: false }), [/must answer 404/]);
  t.same(check({ method: 'GET', url: '/openapi.json', status: 200, contentType: AJ, body: json({}), routeExists: true }), [], 'a hidden route is skipped');
});

t.test('the guard sees app.inject answers and answers over a socket', async (t) => {
  const h = await build(t);
  const seen = await h.contract.collect(async () => {
    await h.call('GET', '/healthz');
    await h.call('GET', '/v1/nope');
    await h.call('HEAD', '/healthz');
    await h.app.inject({ method: 'GET', url: { pathname: '/v1/threads/not-a-uuid' }, headers: { authorization: `Bearer ${h.staff()}` } });
    await new Promise<void>((resolve, reject) =>
      h.app.inject({ method: 'GET', url: '/readyz' }, (err) => (err ? reject(err) : resolve())),
    );
    const base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    for (const path of ['/healthz', '/v1/nope', '/openapi.json', `/v1/threads/${randomUUID()}`]) {
      const res = await fetch(`${base}${path}`);
      await res.arrayBuffer();
    }
    await new Promise((r) => setTimeout(r, 50));
    return true;
  });
  t.same(seen.mismatches, [], 'every answer conforms');

});

t.test('a departing app is caught through inject and over a socket', async (t) => {
  // A tiny app of its own whose one operation declares 200 only, and answers 418.
  const app = Fastify({ logger: false });
  await app.register(swagger, { openapi: { openapi: '3.1.0', info: { title: 't', version: '1' } } });
  app.get('/teapot', { schema: { response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } }, async (_req, reply) =>
    reply.code(418 as 200).type('application/json').send('{"short":"and stout"}'),
  );
  await app.ready();
  t.teardown(() => app.close());
  const guard = guardResponses(t, app);
  const viaInject = await guard.collect(() => app.inject({ method: 'GET', url: '/teapot' }));
  t.match(viaInject.mismatches, [{ operation: /GET \/teapot/, status: 418, problem: /status 418 is not declared/ }], 'inject: flagged');
  t.notOk(JSON.stringify(viaInject.mismatches).includes('stout'), 'the report never quotes the body');
  const viaSocket = await guard.collect(async () => {
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    await (await fetch(`${base}/teapot`)).arrayBuffer();
    await new Promise((r) => setTimeout(r, 50));
  });
  t.match(viaSocket.mismatches, [{ status: 418, problem: /not declared/ }], 'socket: flagged');
});
