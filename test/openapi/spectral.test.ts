/**
 * openapi/spectral.yaml (npm run lint:openapi): the generated contract passes it, and each of
 * our rules can fail. A small valid contract (test/fixtures/spectral.ts) is broken one thing at
 * a time; each broken copy must be reported by the rule meant to catch it, and by nothing we did
 * not expect. Everything is linted in one Spectral process (a run is mostly ruleset bundling).
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CONTRACT, lintFiles, validContract, type Json, type SpectralResult } from '../fixtures/spectral.js';

interface Case {
  name: string;
  /** Breaks (or, for a `clean` case, legitimately changes) the valid contract. */
  edit(doc: Json): void;
  /** Every rule code the result must contain; [] = no result at all. */
  expect: string[];
  /** Codes that may also appear (consequences of the same defect, from spectral:oas). */
  alsoAllowed?: string[];
}

const inlineNote = { type: 'object', properties: { id: { type: 'string' }, text: { type: 'string' } }, required: ['id', 'text'] };

const CASES: Case[] = [
  { name: 'valid', edit: () => {}, expect: [] },

  // sc-operation-documented
  { name: 'missing summary', edit: (d) => delete d.paths['/notes/{noteId}'].get.summary, expect: ['sc-operation-documented'] },
  { name: 'missing description', edit: (d) => delete d.paths['/notes/{noteId}'].get.description, expect: ['sc-operation-documented'], alsoAllowed: ['operation-description'] },
  { name: 'missing operationId', edit: (d) => delete d.paths['/notes/{noteId}'].get.operationId, expect: ['sc-operation-documented'], alsoAllowed: ['operation-operationId'] },
  { name: 'empty tags', edit: (d) => (d.paths['/notes/{noteId}'].get.tags = []), expect: ['sc-operation-documented'], alsoAllowed: ['operation-tags'] },

  // sc-operation-example
  { name: 'no example', edit: (d) => delete d.paths['/notes/{noteId}'].get.responses['200'].content['application/json'].example, expect: ['sc-operation-example'] },
  {
    name: 'no example on the write (body and 201)',
    edit: (d) => {
      delete d.paths['/notes'].post.requestBody.content['application/json'].example;
      delete d.paths['/notes'].post.responses['201'].content['application/json'].example;
    },
    expect: ['sc-operation-example'],
  },
  {
    name: 'an example on an error response does not count',
    edit: (d) => {
      const get = d.paths['/notes/{noteId}'].get;
      delete get.responses['200'].content['application/json'].example;
      get.responses['404'].content['application/problem+json'].example = { type: 'urn:x', title: 'Not found', status: 404, code: 'not_found' };
    },
    expect: ['sc-operation-example'],
  },
  {
    name: 'an example on a parameter counts',
    edit: (d) => {
      const get = d.paths['/notes/{noteId}'].get;
      delete get.responses['200'].content['application/json'].example;
      get.parameters[0].example = 'n-1';
    },
    expect: [],
  },
  {
    name: 'the request body example alone counts',
    edit: (d) => delete d.paths['/notes'].post.responses['201'].content['application/json'].example,
    expect: [],
  },

  // sc-problem-responses
  {
    name: '4xx as application/json',
    edit: (d) => (d.paths['/notes/{noteId}'].get.responses['404'] = { description: 'Not found', content: { 'application/json': { schema: { $ref: '#/components/schemas/Problem' } } } }),
    expect: ['sc-problem-responses'],
  },
  {
    name: '4xx problem+json with another schema',
    edit: (d) => (d.paths['/notes/{noteId}'].get.responses['404'].content['application/problem+json'].schema = { $ref: '#/components/schemas/Note' }),
    expect: ['sc-problem-responses'],
  },
  {
    name: '4xx problem+json with an inline schema',
    edit: (d) => (d.paths['/notes/{noteId}'].get.responses['404'].content['application/problem+json'].schema = { type: 'object', properties: { code: { type: 'string' } } }),
    expect: ['sc-problem-responses', 'sc-no-inline-object-schema'],
  },
  { name: '4xx without content', edit: (d) => (d.paths['/notes/{noteId}'].get.responses['404'] = { description: 'Not found' }), expect: ['sc-problem-responses'] },
  {
    name: '4xx with a second media type',
    edit: (d) => (d.paths['/notes/{noteId}'].get.responses['404'].content['text/plain'] = { schema: { type: 'string' } }),
    expect: ['sc-problem-responses'],
  },

  // sc-security-schemes, sc-security-requirements-declared
  {
    name: 'undeclared security scheme',
    edit: (d) => (d.paths['/notes/{noteId}'].get.security = [{ apiKeyHeader: [] }]),
    expect: ['sc-security-requirements-declared'],
    alsoAllowed: ['oas3-operation-security-defined'],
  },
  {
    name: 'no bearerAuth scheme',
    edit: (d) => {
      delete d.components.securitySchemes.bearerAuth;
      d.security = [{ externalSession: [] }];
    },
    expect: ['sc-security-schemes'],
  },
  {
    name: 'bearerAuth is not a bearer JWT',
    edit: (d) => (d.components.securitySchemes.bearerAuth = { type: 'http', scheme: 'basic', description: 'Basic auth' }),
    expect: ['sc-security-schemes'],
  },
  {
    name: 'no external-session scheme',
    edit: (d) => {
      delete d.components.securitySchemes.externalSession;
      delete d.components.securitySchemes.externalCookie;
      d.paths['/session'].delete.security = [{ bearerAuth: [] }];
    },
    expect: ['sc-security-schemes'],
  },
  {
    name: 'one external-session scheme is enough',
    edit: (d) => {
      delete d.components.securitySchemes.externalSession;
      d.paths['/session'].delete.security = [{ externalCookie: [] }];
    },
    expect: [],
  },

  // sc-no-inline-object-schema
  {
    name: 'inline response object',
    edit: (d) => (d.paths['/notes/{noteId}'].get.responses['200'].content['application/json'].schema = inlineNote),
    expect: ['sc-no-inline-object-schema'],
  },
  {
    name: 'inline request body object',
    edit: (d) => (d.paths['/notes'].post.requestBody.content['application/json'].schema = { type: 'object', properties: { text: { type: 'string' } } }),
    expect: ['sc-no-inline-object-schema'],
    alsoAllowed: ['oas3-unused-component'],
  },
  {
    name: 'inline array of objects',
    edit: (d) => {
      const media = d.paths['/notes/{noteId}'].get.responses['200'].content['application/json'];
      media.schema = { type: 'array', items: inlineNote };
      media.example = [media.example];
    },
    expect: ['sc-no-inline-object-schema'],
  },
  {
    name: 'an array of $refs is fine',
    edit: (d) => {
      const media = d.paths['/notes/{noteId}'].get.responses['200'].content['application/json'];
      media.schema = { type: 'array', items: { $ref: '#/components/schemas/Note' } };
      media.example = [media.example];
    },
    expect: [],
  },
];

const summary = (results: SpectralResult[]) => results.map((r) => `${r.code} at ${r.path.join('.')}: ${r.message}`).join('\n');

t.test('openapi/spectral.yaml: the contract is clean and every custom rule catches what it is for', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sc-spectral-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files = CASES.map((c, i) => {
    const doc = validContract();
    c.edit(doc);
    const file = path.join(dir, `case-${String(i).padStart(2, '0')}.json`);
    writeFileSync(file, JSON.stringify(doc, null, 2));
    return file;
  });

  const { exitCode, byFile, stderr } = await lintFiles([CONTRACT, ...files]);
  t.equal(exitCode, 1, `spectral exits 1 when something fails${stderr ? `\n${stderr}` : ''}`);

  const contract = byFile.get(CONTRACT)!;
  t.same(contract, [], `openapi/openapi.json passes openapi/spectral.yaml\n${summary(contract)}`);

  CASES.forEach((c, i) => {
    const results = byFile.get(files[i]!)!;
    const codes = new Set(results.map((r) => r.code));
    if (c.expect.length === 0) {
      t.same(results, [], `${c.name}: clean\n${summary(results)}`);
      return;
    }
    for (const code of c.expect) t.ok(codes.has(code), `${c.name}: reported by ${code}\n${summary(results)}`);
    const unexpected = [...codes].filter((code) => !c.expect.includes(code) && !(c.alsoAllowed ?? []).includes(code));
    t.same(unexpected, [], `${c.name}: nothing else reported\n${summary(results)}`);
  });
});
