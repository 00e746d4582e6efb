#!/usr/bin/env node
// @ts-check
/**
 * Generates the Postman collection from the contract: openapi/openapi.json →
 * openapi/postman-collection.json, with openapi-to-postmanv2 (a root devDependency).
 *
 *   node openapi/scripts/postman.mjs          write the file            (npm run postman)
 *   node openapi/scripts/postman.mjs --check  exit 1 when it is stale   (npm run postman:check)
 *
 * The output is byte-for-byte reproducible: the converter's random ids are dropped, and its fake
 * example values (json-schema-faker: Math.random and the current date) come from a seeded PRNG
 * and a fixed clock while it runs. What the collection gets on top of the conversion:
 * - collection variables `baseUrl` (http://127.0.0.1:3000), `token` (a JWT: `npm run token`)
 *   and `sessionToken` (an external session, from POST /v1/external/sessions);
 * - bearer auth with {{token}} on the collection, inherited by every request, except the
 *   external-session routes (bearer {{sessionToken}}) and the routes declared `security: []`
 *   (no auth);
 * - multipart bodies as the contract's forms say, with fix-ups: every `format: binary` part is
 *   a file part (the converter emits some as text "<binary>"), a plain field gets its schema's
 *   first example (the converter ignores 3.1 `examples`), and the plain fields come before the
 *   file (the service reads only the fields sent before the file part);
 * - only the 2xx example responses: the converter's fake error examples (`"status": 6896`) say
 *   nothing that the shared problem+json schema does not, and tripled the file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CONTRACT = path.join(root, 'openapi/openapi.json');
const TARGET = path.join(root, 'openapi/postman-collection.json');
const check = process.argv.includes('--check');

const BASE_URL = 'http://127.0.0.1:3000';
const FIXED_NOW = Date.UTC(2026, 0, 1);
const SEED = 0x5ec7ca7e;

const require = createRequire(path.join(root, 'package.json'));

/** Runs `fn` with Math.random seeded (mulberry32) and `Date` frozen at FIXED_NOW. */
async function deterministic(fn) {
  const realRandom = Math.random;
  const RealDate = Date;
  let state = SEED;
  Math.random = () => {
    state = (state + 0x6d2b79f5) | 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  class FixedDate extends RealDate {
    constructor(...args) {
      // @ts-ignore -- forwarding Date's overloads
      super(...(args.length === 0 ? [FIXED_NOW] : args));
    }
    static now() {
      return FIXED_NOW;
    }
  }
  globalThis.Date = /** @type {DateConstructor} */ (/** @type {unknown} */ (FixedDate));
  try {
    return await fn();
  } finally {
    Math.random = realRandom;
    globalThis.Date = RealDate;
  }
}

function convert(contract) {
  const Converter = require('openapi-to-postmanv2');
  return new Promise((resolve, reject) => {
    Converter.convert(
      { type: 'json', data: contract },
      {
        folderStrategy: 'Tags',
        requestNameSource: 'Fallback',
        indentCharacter: 'Space',
        parametersResolution: 'Example',
        includeAuthInfoInExample: true,
      },
      (error, result) => {
        if (error) return reject(error);
        if (!result.result) return reject(new Error(`openapi-to-postmanv2: ${result.reason}`));
        resolve(result.output[0].data);
      },
    );
  });
}

/** Drops the converter's random ids (optional in the collection format) everywhere. */
function stripIds(node) {
  if (Array.isArray(node)) return node.map(stripIds);
  if (node && typeof node === 'object') {
    const out = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === 'id' || key === '_postman_id') continue;
      out[key] = stripIds(value);
    }
    return out;
  }
  return node;
}

const bearer = (variable) => ({ type: 'bearer', bearer: [{ key: 'token', value: `{{${variable}}}`, type: 'string' }] });

/** `METHOD /path/{param}` → the contract's operation. */
function operationsOf(contract) {
  const map = new Map();
  for (const [route, methods] of Object.entries(contract.paths ?? {})) {
    for (const [method, operation] of Object.entries(methods)) map.set(`${method.toUpperCase()} ${route}`, operation);
  }
  return map;
}

function routeOf(request) {
  const segments = (request.url?.path ?? []).map((s) => (s.startsWith(':') ? `{${s.slice(1)}}` : s));
  return `${request.method} /${segments.join('/')}`;
}

function finishRequest(item, operations, contract) {
  const key = routeOf(item.request);
  const operation = operations.get(key);
  if (!operation) throw new Error(`no operation in the contract for ${key}`);
  const security = operation.security ?? contract.security ?? [];
  const schemes = security.flatMap((requirement) => Object.keys(requirement));
  if (security.length === 0) item.request.auth = { type: 'noauth' };
  else if (schemes.includes('bearerAuth')) delete item.request.auth; // inherit {{token}}
  else if (schemes.includes('externalSession')) item.request.auth = bearer('sessionToken');
  else delete item.request.auth;

  item.response = (item.response ?? []).filter((example) => example.code >= 200 && example.code < 300);

  const form = formParts(operation, contract);
  for (const request of [item.request, ...item.response.map((example) => example.originalRequest)]) {
    if (request?.body?.mode === 'formdata') request.body.formdata = fixFormData(request.body.formdata, form);
  }
}

/** File parts as files, plain fields with their example and before the file parts. */
function fixFormData(formdata, form) {
  const parts = formdata.map((part) => {
    const schema = form[part.key];
    if (schema?.type === 'string' && schema.format === 'binary') return { key: part.key, type: 'file', src: [], description: part.description };
    return Array.isArray(schema?.examples) && schema.examples.length > 0 ? { ...part, value: String(schema.examples[0]) } : part;
  });
  return [...parts.filter((part) => part.type !== 'file'), ...parts.filter((part) => part.type === 'file')];
}

/** The part schemas of the operation's multipart/form-data form, by name (a local $ref is followed). */
function formParts(operation, contract) {
  let schema = operation.requestBody?.content?.['multipart/form-data']?.schema;
  const prefix = '#/components/schemas/';
  if (typeof schema?.$ref === 'string' && schema.$ref.startsWith(prefix)) schema = contract.components?.schemas?.[schema.$ref.slice(prefix.length)];
  return schema?.properties ?? {};
}

function walk(items, visit) {
  for (const item of items) {
    if (Array.isArray(item.item)) walk(item.item, visit);
    else if (item.request) visit(item);
  }
}

const contract = JSON.parse(readFileSync(CONTRACT, 'utf8'));
const converted = await deterministic(() => convert(JSON.stringify(contract)));
const collection = stripIds(converted);
const operations = operationsOf(contract);
walk(collection.item, (item) => finishRequest(item, operations, contract));
collection.auth = bearer('token');
collection.variable = [
  { key: 'baseUrl', value: BASE_URL, type: 'string', description: 'Where the service listens' },
  { key: 'token', value: '', type: 'string', description: 'A JWT: `npm run -s token -- --role staff --org demo --sub alice`' },
  { key: 'sessionToken', value: '', type: 'string', description: 'An external session: sessionToken from POST /v1/external/sessions' },
];
const text = `${JSON.stringify(collection, null, 2)}\n`;

if (check) {
  let current = '';
  try {
    current = readFileSync(TARGET, 'utf8');
  } catch {
    // missing counts as stale
  }
  if (current !== text) {
    process.stderr.write('openapi/postman-collection.json is stale against openapi/openapi.json: run `npm run postman` and commit the result\n');
    process.exit(1);
  }
  process.stdout.write('openapi/postman-collection.json is current\n');
} else {
  writeFileSync(TARGET, text);
  process.stdout.write(`wrote ${path.relative(process.cwd(), TARGET)}\n`);
}
