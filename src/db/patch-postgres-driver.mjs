// Runs on `npm ci` / `npm install` (package.json "postinstall").
//
// postgres.js 3.4.x can crash the whole process when a connection closes while a small write
// is still scheduled: `nextWrite` runs from setImmediate after `closed()` set `socket = null`
// and throws a TypeError no caller can catch (porsager/postgres#1154, #1208; fixes proposed in
// #1168, #1176, #1209, none released). A PostgreSQL restart or failover under load takes the
// service down with it; test/faults.test.ts reproduces it. This adds the guard from #1209: a
// write to a closed connection settles its queries with CONNECTION_CLOSED instead of throwing.
//
// Invariant: the patch is applied exactly once per file, only to the code it was written for;
// if the driver's code differs (a new version), install fails loudly so someone checks
// whether upstream fixed it and removes or updates this script.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

const MARKER = 'securecare: guard nextWrite';
const ORIGINAL = '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)';
const PATCHED = `  function nextWrite(fn) {
    if (socket === null) { // ${MARKER} (porsager/postgres#1208)
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options, socket))
      return false
    }
    const x = socket.write(chunk, fn)`;

// npm runs lifecycle scripts in the package root; the driver's package.json is not exported.
const root = path.join(process.cwd(), 'node_modules', 'postgres');
if (!existsSync(path.join(root, 'package.json'))) process.exit(0); // not installed: nothing to patch
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
let patched = 0;
for (const file of ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js']) {
  const full = path.join(root, file);
  if (!existsSync(full)) continue;
  const text = readFileSync(full, 'utf8');
  if (text.includes(MARKER)) continue;
  if (!text.includes(ORIGINAL)) {
    console.error(`patch-postgres-driver: postgres@${version} ${file} does not have the expected nextWrite; check porsager/postgres#1208 and update src/db/patch-postgres-driver.mjs`);
    process.exit(1);
  }
  writeFileSync(full, text.replace(ORIGINAL, PATCHED));
  patched++;
}
if (patched > 0) console.log(`patch-postgres-driver: guarded nextWrite in ${patched} file(s) of postgres@${version}`);
