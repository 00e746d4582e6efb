import t from 'tap';
import { build } from '../../fixtures/build.js';

t.test('liveness, readiness, the contract, unknown routes and security headers', async (t) => {
  const h = await build(t);
  const health = await h.call('GET', '/healthz');
  t.equal(health.statusCode, 200);
  t.same(health.json(), { status: 'ok' });
  t.equal(health.headers['cache-control'], 'no-store');
  t.equal(health.headers['referrer-policy'], 'no-referrer');
  t.equal(health.headers['x-content-type-options'], 'nosniff');
  t.match(String(health.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  t.equal((await h.call('GET', '/readyz')).statusCode, 200);

  const missing = await h.call('GET', '/v1/nothing-here', h.staff());
  t.equal(missing.statusCode, 404);
  t.match(missing.headers['content-type'], /application\/problem\+json/);
  t.equal(missing.json().code, 'not_found');

  const contract = (await h.call('GET', '/openapi.json')).json();
  t.equal(contract.openapi, '3.1.0');
  const names = Object.keys(contract.components.schemas);
  t.ok(names.includes('Thread') && names.includes('Message') && names.includes('Problem') && names.includes('Record'));
  t.notOk(names.some((n) => /^def-\d+$/.test(n)), 'no def-N component names');
  for (const [path, item] of Object.entries(contract.paths as Record<string, Record<string, { operationId?: string; tags?: string[]; responses?: Record<string, unknown> }>>)) {
    for (const [method, op] of Object.entries(item)) {
      t.ok(op.operationId, `${method} ${path} has an operationId`);
      t.ok(op.tags?.length, `${method} ${path} has tags`);
      const problems = Object.entries(op.responses ?? {}).filter(([status]) => Number(status) >= 400);
      for (const [status, response] of problems) {
        t.ok((response as { content?: Record<string, unknown> }).content?.['application/problem+json'], `${method} ${path} ${status} is problem+json`);
      }
    }
  }
  const docs = await h.call('GET', '/docs/');
  t.equal(docs.statusCode, 200, 'Swagger UI is served');
});

t.test('readiness fails with 503 when the database is gone', async (t) => {
  const h = await build(t);
  await h.app.database.close();
  const res = await h.call('GET', '/readyz');
  t.equal(res.statusCode, 503);
  t.equal(res.json().code, 'service_unavailable');
  t.equal((await h.call('GET', '/healthz')).statusCode, 200, 'liveness does not depend on the database');
});
