/**
 * Applies the drizzle-kit migrations in drizzle/ at start, on PGlite and PostgreSQL alike.
 *
 * Why not drizzle's own migrator: several instances (or parallel test files) may start at once
 * against one PostgreSQL. Here every run takes a transaction-scoped advisory lock first, so
 * migrations apply exactly once and in order, and a failed migration leaves nothing behind.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { Db } from './client.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../drizzle', import.meta.url));
/** Arbitrary constant: the advisory lock key for "schema migrations". */
const MIGRATION_LOCK_KEY = 7_342_019_551;

interface JournalEntry {
  idx: number;
  tag: string;
}

export interface Migration {
  tag: string;
  hash: string;
  statements: string[];
}

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const journal = JSON.parse(readFileSync(path.join(dir, 'meta', '_journal.json'), 'utf8')) as { entries: JournalEntry[] };
  return journal.entries
    .sort((a, b) => a.idx - b.idx)
    .map((entry) => {
      const text = readFileSync(path.join(dir, `${entry.tag}.sql`), 'utf8');
      return {
        tag: entry.tag,
        hash: createHash('sha256').update(text).digest('hex'),
        statements: text
          .split('--> statement-breakpoint')
          .map((s) => s.trim())
          .filter((s) => s.length > 0),
      };
    });
}

/** Returns the tags it applied (empty when the schema was already current). */
export async function migrate(db: Db, migrations = readMigrations()): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    await tx.execute(sql`create table if not exists schema_migrations (
      tag text primary key, hash text not null, applied_at timestamptz not null default now())`);
    const rows = (await tx.execute(sql`select tag, hash from schema_migrations`)) as unknown as
      | { rows: { tag: string; hash: string }[] }
      | { tag: string; hash: string }[];
    const list = Array.isArray(rows) ? rows : rows.rows;
    const applied = new Map(list.map((r) => [r.tag, r.hash]));
    const done: string[] = [];
    for (const m of migrations) {
      const known = applied.get(m.tag);
      if (known !== undefined) {
        if (known !== m.hash) throw new Error(`migration ${m.tag} was changed after it was applied`);
        continue;
      }
      for (const statement of m.statements) await tx.execute(sql.raw(statement));
      await tx.execute(sql`insert into schema_migrations (tag, hash) values (${m.tag}, ${m.hash})`);
      done.push(m.tag);
    }
    return done;
  });
}
