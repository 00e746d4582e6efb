/**
 * A wrong body or parameter type in an SDK call fails `tsc` (issue 6, acceptance).
 *
 * test/fixtures/sdk-type-errors.ts holds wrong calls, each under
 * `// @ts-expect-error TSxxxx <why>`, and correct ones. Two checks:
 * 1. `npx tsc --noEmit -p test/fixtures/tsconfig.sdk-types.json` exits 0: since tsc refuses an
 *    unused @ts-expect-error, every marked call IS a type error, and every correct call compiles.
 * 2. With the directives stripped (in memory, through the compiler API), each marked line fails
 *    with the error code its directive names and no other line fails: the expected errors are
 *    the intended ones, not an unrelated error that happens to fall on the same line.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURE = path.join(ROOT, 'test/fixtures/sdk-type-errors.ts');
const TSCONFIG = path.join(ROOT, 'test/fixtures/tsconfig.sdk-types.json');
const DIRECTIVE = /^\s*\/\/ @ts-expect-error (TS\d+) (.+)$/;

t.test('tsc accepts the fixture: every @ts-expect-error is used, every correct call compiles', async (t) => {
  const result = spawnSync('npx', ['tsc', '--noEmit', '--pretty', 'false', '-p', path.relative(ROOT, TSCONFIG)], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  t.equal(result.status, 0, `npx tsc exits 0${result.status === 0 ? '' : `:\n${result.stdout}${result.stderr}`}`);
});

t.test('without the directives, each marked call fails with the named error and nothing else fails', async (t) => {
  const source = readFileSync(FIXTURE, 'utf8');
  const lines = source.split('\n');
  const expected = new Map<number, { code: string; why: string }>(); // 0-based line of the call
  lines.forEach((line, i) => {
    const m = DIRECTIVE.exec(line);
    if (m) expected.set(i + 1, { code: m[1]!, why: m[2]! });
  });
  t.ok(expected.size >= 10, `the fixture marks ${expected.size} wrong calls`);
  const stripped = lines.map((line) => (DIRECTIVE.test(line) ? '' : line)).join('\n');

  const parsed = ts.getParsedCommandLineOfConfigFile(TSCONFIG, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!parsed) throw new Error('could not read the tsconfig');
  const host = ts.createCompilerHost(parsed.options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  const same = (file: string) => path.resolve(file) === FIXTURE;
  host.readFile = (file) => (same(file) ? stripped : readFile(file));
  host.getSourceFile = (file, languageVersion, onError, shouldCreate) =>
    same(file) ? ts.createSourceFile(file, stripped, languageVersion, true) : getSourceFile(file, languageVersion, onError, shouldCreate);
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options, host });

  const fixture = program.getSourceFile(FIXTURE);
  if (!fixture) throw new Error('the fixture is not in the program');
  const found = new Map<number, Set<string>>();
  for (const d of [...program.getSyntacticDiagnostics(fixture), ...program.getSemanticDiagnostics(fixture)]) {
    const line = d.start === undefined ? -1 : fixture.getLineAndCharacterOfPosition(d.start).line;
    if (!found.has(line)) found.set(line, new Set());
    found.get(line)!.add(`TS${d.code}`);
  }
  for (const [line, { code, why }] of expected) {
    const codes = [...(found.get(line) ?? [])];
    t.ok(codes.includes(code), `line ${line + 1} (${why}) fails with ${code}${codes.includes(code) ? '' : `; got ${codes.join(', ') || 'no error'}`}`);
  }
  const unexpected = [...found.keys()].filter((line) => !expected.has(line)).map((line) => `line ${line + 1}: ${[...found.get(line)!].join(', ')}`);
  t.same(unexpected, [], 'no other line of the fixture has an error');
  const elsewhere = ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file && !same(d.file.fileName))
    .map((d) => `${d.file!.fileName}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
  t.same(elsewhere, [], 'the SDK itself compiles cleanly');
});
