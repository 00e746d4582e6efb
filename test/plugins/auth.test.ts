/**
 * JWT verification under each key kind: algorithms are allowlisted, so HS/RS confusion and
 * `alg: none` fail; exp is required; iss/aud are checked when configured.
 */
import t from 'tap';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createSigner } from 'fast-jwt';
import { build } from '../fixtures/build.js';

const claims = (org: string) => ({ sub: 'staff-1', org, role: 'staff', name: 'S' });
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

t.test('RS256 public key: RS256 tokens pass; HS256 signed with the public key, and alg none, fail', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pub = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const priv = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const h = await build(t, { env: { JWT_SECRET: '', JWT_PUBLIC_KEY: pub, JWT_ALGORITHM: 'RS256' } });
  const url = '/v1/customers/c-1';
  const good = createSigner({ key: priv, algorithm: 'RS256', expiresIn: 60_000 })(claims(h.orgId));
  t.equal((await h.call('GET', url, good)).statusCode, 404, 'a valid RS256 token authenticates (404: no such record)');
  const confused = createSigner({ key: pub, algorithm: 'HS256', expiresIn: 60_000 })(claims(h.orgId));
  t.equal((await h.call('GET', url, confused)).statusCode, 401, 'HS256 with the public key as secret is refused');
  const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims(h.orgId), exp: Math.floor(Date.now() / 1000) + 60 })}.`;
  t.equal((await h.call('GET', url, none)).statusCode, 401, 'alg none is refused');
  const noExp = createSigner({ key: priv, algorithm: 'RS256' })(claims(h.orgId));
  t.equal((await h.call('GET', url, noExp)).statusCode, 401, 'a token without exp is refused');
  const es = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const wrongAlg = createSigner({ key: es.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), algorithm: 'ES256', expiresIn: 60_000 })(
    claims(h.orgId),
  );
  t.equal((await h.call('GET', url, wrongAlg)).statusCode, 401, 'an ES256 token is refused when RS256 is configured');
});

t.test('ES256 public key works when configured', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const h = await build(t, {
    env: { JWT_SECRET: '', JWT_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }).toString(), JWT_ALGORITHM: 'ES256' },
  });
  const token = createSigner({ key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), algorithm: 'ES256', expiresIn: 60_000 })(
    claims(h.orgId),
  );
  t.equal((await h.call('GET', '/v1/customers/c-1', token)).statusCode, 404);
});

t.test('iss and aud are checked when configured; HS384 is not accepted for a secret', async (t) => {
  const secret = randomBytes(32).toString('hex');
  const h = await build(t, { jwtSecret: secret, env: { JWT_ISSUER: 'https://idp.example.org', JWT_AUDIENCE: 'securecare-messaging' } });
  const url = '/v1/customers/c-1';
  const sign = (opts: Record<string, unknown>) => createSigner({ key: secret, algorithm: 'HS256', expiresIn: 60_000, ...opts })(claims(h.orgId));
  t.equal((await h.call('GET', url, sign({ iss: 'https://idp.example.org', aud: 'securecare-messaging' }))).statusCode, 404);
  t.equal((await h.call('GET', url, sign({ iss: 'https://evil.example.org', aud: 'securecare-messaging' }))).statusCode, 401, 'wrong iss');
  t.equal((await h.call('GET', url, sign({ iss: 'https://idp.example.org', aud: 'other-service' }))).statusCode, 401, 'wrong aud');
  t.equal((await h.call('GET', url, sign({ aud: 'securecare-messaging' }))).statusCode, 401, 'missing iss');
  const hs384 = createSigner({ key: secret, algorithm: 'HS384', expiresIn: 60_000, iss: 'https://idp.example.org', aud: 'securecare-messaging' })(
    claims(h.orgId),
  );
  t.equal((await h.call('GET', url, hs384)).statusCode, 401, 'only HS256 is allowlisted');
  const res = await h.call('GET', url, 'not-a-jwt');
  t.equal(res.statusCode, 401);
  t.match(res.headers['content-type'], /application\/problem\+json/);
  t.equal(res.json().code, 'unauthorized');
});

t.test('a presented token that fails verification is a denied event in the service chain', async (t) => {
  const h = await build(t);
  const bad = await h.call('GET', '/v1/customers/c-1', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad', undefined, { 'user-agent': 'probe\u0007/1.0' });
  t.equal(bad.statusCode, 401);
  const requestId = String(bad.headers['x-request-id']);
  const { sql } = await import('drizzle-orm');
  const { rowsOf } = await import('../../src/db/util.js');
  const rows = rowsOf<{ org_id: string; action: string; outcome: string; reason: string; user_agent: string; actor_kind: string }>(
    await h.app.database.db.execute(sql`select org_id, action, outcome, reason, user_agent, actor_kind from audit_events where request_id = ${requestId}`),
  );
  t.same(rows, [{ org_id: '_service', action: 'record.viewed', outcome: 'denied', reason: 'invalid_token', user_agent: 'probe/1.0', actor_kind: 'anonymous' }]);
  const none = await h.call('GET', '/v1/customers/c-1');
  const noneRows = rowsOf(await h.app.database.db.execute(sql`select 1 from audit_events where request_id = ${String(none.headers['x-request-id'])}`));
  t.same(noneRows, [], 'a request without any token is not an audit event (only a 401)');
});
