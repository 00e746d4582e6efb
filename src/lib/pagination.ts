/**
 * Keyset pagination: cursors are opaque base64url JSON of the last row's sort key. Clients
 * must treat them as opaque; a tampered or foreign cursor answers 400 invalid_cursor.
 */
import { AppError } from './errors.js';
import { UUID_PATTERN } from './ids.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/**
 * What each cursor position must hold. Values are checked before they reach SQL, so a forged
 * cursor is a 400, never a failed cast.
 */
const CURSOR_PARTS = {
  uuid: (v: unknown): v is string => typeof v === 'string' && new RegExp(UUID_PATTERN).test(v),
  timestamp: (v: unknown): v is string =>
    typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(v) && !Number.isNaN(Date.parse(v)),
  seq: (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0,
} as const;

type CursorPart = keyof typeof CURSOR_PARTS;
type CursorValue<P extends CursorPart> = P extends 'seq' ? number : string;

/** Decodes a cursor into exactly the key shape expected, or throws 400 invalid_cursor. */
export function decodeCursor<const T extends readonly CursorPart[]>(
  cursor: string | undefined,
  shape: T,
): { [K in keyof T]: CursorValue<T[K]> } | undefined {
  if (cursor === undefined) return undefined;
  const invalid = () => new AppError('invalid_cursor', 'Use the nextCursor of a previous page, unchanged');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || parsed.length !== shape.length) throw invalid();
  shape.forEach((part, i) => {
    if (!CURSOR_PARTS[part](parsed[i])) throw invalid();
  });
  return parsed as { [K in keyof T]: CursorValue<T[K]> };
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
