/**
 * Dev-only: prints a JWT signed with the configured secret (JWT_SECRET or the dev secret in
 * DATA_DIR), so curl and Postman users can start at once.
 *
 *   npm run token -- --role staff --org demo --sub alice [--name "Alice"] [--rec customer:c-1] [--ttl 3600]
 */
import { parseArgs } from 'node:util';
import { createSigner } from 'fast-jwt';
import { loadConfig } from '../config.js';
import { ACTOR_ROLES } from '../lib/context.js';

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'staff' },
    org: { type: 'string', default: 'demo' },
    sub: { type: 'string', default: 'alice' },
    name: { type: 'string' },
    rec: { type: 'string' },
    ttl: { type: 'string', default: '3600' },
  },
});

function fail(message: string): never {
  process.stderr.write(`token: ${message}\n`);
  process.exit(2);
}

const config = loadConfig();
if (config.env === 'production') fail('refusing to mint tokens in production');
if (config.jwt.kind !== 'secret') fail('JWT_PUBLIC_KEY is set: tokens come from your identity provider');
const role = values.role as (typeof ACTOR_ROLES)[number];
if (!ACTOR_ROLES.includes(role)) fail(`--role must be one of ${ACTOR_ROLES.join(', ')}`);
if (role === 'patron' && !values.rec) fail('a patron token needs --rec customer:<id> or volunteer:<id>');
const ttl = Number(values.ttl);
if (!Number.isInteger(ttl) || ttl <= 0) fail('--ttl must be a positive number of seconds');

const sign = createSigner({
  key: config.jwt.secret,
  algorithm: 'HS256',
  expiresIn: ttl * 1000,
  ...(config.jwt.issuer ? { iss: config.jwt.issuer } : {}),
  ...(config.jwt.audience ? { aud: config.jwt.audience } : {}),
});
const claims: Record<string, string> = { sub: values.sub!, org: values.org!, role, name: values.name ?? values.sub! };
if (values.rec) claims.rec = values.rec;
process.stdout.write(`${sign(claims)}\n`);
