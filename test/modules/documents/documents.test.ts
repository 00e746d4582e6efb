/**
 * Document Storage acceptance on the default blob store (PostgreSQL rows): the suite itself is
 * in test/fixtures/document-suite.ts, shared with documents-s3.test.ts.
 */
import t from 'tap';
import { documentSuite, pdfOfSize, postgresContent } from '../../fixtures/document-suite.js';
import { sql } from 'drizzle-orm';
import { build, openTestDatabase } from '../../fixtures/build.js';
import { fileUpload } from '../../fixtures/multipart.js';
import { rowsOf } from '../../../src/db/util.js';

documentSuite(t, { store: postgresContent, options: () => ({}) });

t.test('the sweep passes over an upload it cannot discard, logs it, and removes the rest', async (t) => {
  // A database of its own: the trigger below must not reach another test.
  const h = await build(t, { database: await openTestDatabase(t), captureLogs: true });
  const { db } = h.app.database;
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  const ids: string[] = [];
  for (const name of ['stuck.pdf', 'a.pdf', 'b.pdf']) {
    const body = fileUpload(name, pdfOfSize(100_000));
    const res = await h.app.inject({ method: 'POST', url: '/v1/customers/c-1/documents', headers: { ...body.headers, authorization: `Bearer ${h.staff()}` }, payload: body.payload });
    ids.push(res.json().id);
  }
  // Three crash leftovers, the oldest of which cannot be removed (its content will not delete).
  await db.execute(sql`update documents set status = 'pending', created_at = created_at - interval '2 hours' where org_id = ${h.orgId}`);
  await db.execute(sql`update documents set created_at = created_at - interval '1 hour' where id = ${ids[0]}`);
  await db.execute(sql.raw(`create function refuse_chunk_delete() returns trigger language plpgsql as $$ begin raise exception 'chunk store refused'; end $$`));
  await db.execute(
    sql.raw(`create trigger refuse_chunk_delete before delete on document_chunks for each row when (old.document_id = '${ids[0]}') execute function refuse_chunk_delete()`),
  );
  const swept = await h.app.documents.sweepPendingUploads();
  t.equal(swept.pending, 2, 'the two removable leftovers are removed');
  const left = rowsOf<{ id: string; status: string }>(await db.execute(sql`select id, status from documents where org_id = ${h.orgId}`));
  t.same(left, [{ id: ids[0], status: 'pending' }], 'the stuck one stays pending for the next sweep');
  const warned = h.logs.flatMap((c) => c.split('\n')).filter(Boolean).map((l) => JSON.parse(l)).filter((l) => /could not be discarded/.test(l.msg));
  t.equal(warned.length, 1, 'and is logged once');
  t.equal(warned[0]?.documentId, ids[0]);
  t.equal(warned[0]?.err?.code, 'P0001', 'with its SQLSTATE, without the message');
});
