/**
 * Multipart uploads with explicit limits: one file part named `file` (at most 25 MiB), a few
 * small fields before it. @fastify/multipart cuts an oversized file quietly (it sets
 * `truncated`), so the documents service checks that flag and answers 413.
 */
import fp from 'fastify-plugin';
import multipart from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import type { TSchema } from 'typebox';
import { MAX_FILE_BYTES } from '../lib/content-policy/content-inspector.js';
import { AppError } from '../lib/errors.js';
import { sanitizeHeaderText } from '../lib/text.js';
import type { UploadInput } from '../modules/documents/documents.service.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The multipart form a route reads with receiveUpload(): a named schema (with `$id`) of the
     * parts, `file` and the fields sent before it. For the contract only (the swagger plugin makes
     * it the `multipart/form-data` request body): the route keeps no body schema, so Fastify never
     * tries to parse or validate the stream.
     */
    multipartForm?: TSchema;
  }
}

const LIMITS = { fileSize: MAX_FILE_BYTES, files: 1, fields: 4, fieldSize: 64, fieldNameSize: 32, parts: 6, headerPairs: 20 };
const NAME_MAX = 255;

/** Display text only: no path, no control characters, bounded length. */
export function displayFilename(raw: string | undefined): string {
  const base = (raw ?? '').split(/[\\/]/).pop() ?? '';
  return sanitizeHeaderText(base.normalize('NFC'), NAME_MAX)?.trim() || 'untitled';
}

export interface ReceivedUpload extends UploadInput {
  fields: Record<string, string>;
}

/** The single `file` part of a multipart request, with the plain fields sent before it. */
export async function receiveUpload(request: FastifyRequest): Promise<ReceivedUpload> {
  if (!request.isMultipart()) throw new AppError('unsupported_media_type', 'Send multipart/form-data with the file in a part named "file"');
  let part;
  try {
    part = await request.file({ limits: LIMITS });
  } catch {
    throw new AppError('validation_failed', 'The multipart body is malformed or has too many parts');
  }
  if (!part) throw new AppError('validation_failed', 'No file part: send the file in a part named "file"');
  if (part.fieldname !== 'file') {
    part.file.resume();
    throw new AppError('validation_failed', 'The file part must be named "file"');
  }
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(part.fields)) {
    if (value && !Array.isArray(value) && value.type === 'field') fields[name] = String(value.value);
  }
  const stream = part.file;
  return { filename: displayFilename(part.filename), stream, truncated: () => stream.truncated, fields };
}

export default fp(
  async function uploadsPlugin(app) {
    await app.register(multipart, { limits: LIMITS, throwFileSizeLimit: false });
  },
  { name: 'uploads' },
);
