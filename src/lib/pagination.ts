/**
 * Keyset pagination: cursors are opaque base64url JSON of the last row's sort key. Clients
 * must treat them as opaque; a tampered or foreign cursor answers 400 invalid_cursor.
 */
import { AppError } from './errors.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/** Decodes a cursor into exactly the key shape expected (types checked one by one). */
export function decodeCursor<const T extends readonly ('string' | 'number')[]>(
  cursor: string | undefined,
  shape: T,
): { [K in keyof T]: T[K] extends 'string' ? string : number } | undefined {
  if (cursor === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new AppError('invalid_cursor');
  }
  if (!Array.isArray(parsed) || parsed.length !== shape.length) throw new AppError('invalid_cursor');
  shape.forEach((type, i) => {
    const v: unknown = parsed[i];
    if (typeof v !== type || (type === 'string' && (v as string).length > 100)) throw new AppError('invalid_cursor');
  });
  return parsed as { [K in keyof T]: T[K] extends 'string' ? string : number };
}

/** Rows are fetched with limit + 1; the extra row only says whether a next page exists. */
export function toPage<R, T>(rows: R[], limit: number, map: (row: R) => T, key: (row: R) => (string | number)[]): Page<T> {
  const hasMore = rows.length > limit;
  const pageRows = hasMore ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return {
    items: pageRows.map(map),
    nextCursor: hasMore && last !== undefined ? encodeCursor(key(last)) : null,
  };
}
