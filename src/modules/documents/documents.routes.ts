import { Type, type Static } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { requestContext } from '../../plugins/auth.js';
import { receiveUpload } from '../../plugins/uploads.js';
import { NO_CONTROL, NextCursor, PageQuery, problems, recordExternalId, ref, StringEnum, Uuid } from '../../lib/schemas.js';
import { DEFAULT_PAGE_SIZE } from '../../lib/pagination.js';
import { EXAMPLE } from '../../lib/examples.js';
import type { DocumentView } from './document-codec.js';
import type { DocumentsService } from './documents.service.js';

export const Document = Type.Object(
  {
    id: Uuid(),
    owner: Type.Union([
      Type.Object({ kind: Type.Literal('library') }, { additionalProperties: false }),
      Type.Object(
        {
          kind: Type.Literal('record'),
          record: Type.Object({ kind: StringEnum(['customer', 'volunteer'] as const), id: Type.String() }, { additionalProperties: false }),
        },
        { additionalProperties: false },
      ),
    ]),
    name: Type.String({ description: 'Display text only; never used as a path or to judge the type' }),
    mediaType: Type.String({ description: 'Detected from the content' }),
    size: Type.Integer({ minimum: 0 }),
    checksum: Type.String({ description: 'SHA-256 (hex) of the content' }),
    private: Type.Boolean({ description: 'Library only: private documents cannot be attached' }),
    source: StringEnum(['upload', 'message_reply', 'external_reply'] as const),
    createdBy: Type.Object({ kind: Type.String(), id: Type.String() }, { additionalProperties: false }),
    createdAt: Type.String({ format: 'date-time' }),
    retentionUntil: Type.String({ format: 'date-time', description: 'The document cannot be deleted before this' }),
    deletedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'Set when the content was crypto-shredded' }),
  },
  { $id: 'Document', additionalProperties: false },
);

export const DocumentPage = Type.Object(
  { items: Type.Array(ref(Document)), nextCursor: NextCursor },
  { $id: 'DocumentPage', additionalProperties: false },
);

export const Attachment = Type.Object(
  {
    id: Uuid({ description: 'The document id' }),
    name: Type.String(),
    mediaType: Type.String(),
    size: Type.Integer({ minimum: 0 }),
    deleted: Type.Boolean({ description: 'True once the document was crypto-shredded after its retention period' }),
  },
  { $id: 'Attachment', additionalProperties: false },
);

export const AttachmentRefs = Type.Array(Type.Object({ documentId: Uuid() }, { additionalProperties: false }), {
  $id: 'AttachmentRefs',
  maxItems: 10,
  uniqueItems: true,
  description: 'Documents to attach: a non-private library document or a document of the thread record. Never copied.',
});

const FILE_PART = Type.String({
  format: 'binary',
  description: 'The file, at most 25 MiB; its type is judged from the content, never from the name or the part\'s Content-Type',
});

/** The multipart form of the record and external uploads (documented only: receiveUpload() reads the stream). */
export const DocumentUpload = Type.Object({ file: FILE_PART }, { $id: 'DocumentUpload', additionalProperties: false });

/** The library upload's form: `private` must come before the file part to be read. */
export const LibraryDocumentUpload = Type.Object(
  {
    private: Type.Optional(
      StringEnum(['true', 'false'] as const, {
        description: '`true` keeps the document out of attachments; send it before the file part',
        examples: ['false'],
      }),
    ),
    file: FILE_PART,
  },
  { $id: 'LibraryDocumentUpload', additionalProperties: false },
);

export const documentSchemas = [Document, DocumentPage, Attachment, AttachmentRefs, DocumentUpload, LibraryDocumentUpload];

export const DOCUMENT_EXAMPLE: Static<typeof Document> = {
  id: EXAMPLE.documentId,
  owner: { kind: 'record', record: { kind: 'customer', id: EXAMPLE.customerId } },
  name: 'care-plan-2025.pdf',
  mediaType: 'application/pdf',
  size: 184_320,
  checksum: EXAMPLE.checksum,
  private: false,
  source: 'upload',
  createdBy: { kind: 'staff', id: EXAMPLE.staff.id },
  createdAt: EXAMPLE.createdAt,
  retentionUntil: '2032-01-14T09:30:00.000Z',
  deletedAt: null,
};

const LIBRARY_DOCUMENT_EXAMPLE: Static<typeof Document> = {
  ...DOCUMENT_EXAMPLE,
  id: '0192f3a0-1d2e-7f30-8a41-b5c6d7e8f901',
  owner: { kind: 'library' },
  name: 'volunteer-handbook.pdf',
  size: 1_048_576,
};

export const ATTACHMENT_EXAMPLE: Static<typeof Attachment> = {
  id: EXAMPLE.documentId,
  name: DOCUMENT_EXAMPLE.name,
  mediaType: DOCUMENT_EXAMPLE.mediaType,
  size: DOCUMENT_EXAMPLE.size,
  deleted: false,
};

const DOCUMENT_PAGE_EXAMPLE: Static<typeof DocumentPage> = { items: [DOCUMENT_EXAMPLE], nextCursor: null };

const UPLOAD_DESCRIPTION =
  'multipart/form-data with the file in a part named `file` (at most 25 MiB = 26,214,400 bytes). The type is judged from ' +
  'the content: PDF, images (PNG, JPEG, GIF, WebP, TIFF, HEIC), Office documents (docx, xlsx, pptx, odt, ods, odp, doc, ' +
  'xls, ppt), RTF, plain text and CSV pass; ZIP archives, executables, macro-enabled Office files and HTML get 415. ' +
  'Nothing is stored after a refusal.';

const ListQuery = Type.Object(
  {
    ...PageQuery,
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: NO_CONTROL, description: 'Case-insensitive name search' })),
  },
  { additionalProperties: false },
);
export const DocumentId = Uuid({ description: 'The document id', examples: [EXAMPLE.documentId] });
const DocumentParams = Type.Object({ documentId: DocumentId }, { additionalProperties: false });
const recordParams = (kind: 'customer' | 'volunteer') =>
  Type.Object(
    {
      recordId: recordExternalId({
        description: `The platform's own id of the ${kind} record`,
        examples: [kind === 'customer' ? EXAMPLE.customerId : EXAMPLE.volunteerId],
      }),
    },
    { additionalProperties: false },
  );

/** RFC 6266: an ASCII fallback plus the exact UTF-8 name in filename*. */
export function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

const page = (q: { cursor?: string; limit?: number; q?: string }) => ({ cursor: q.cursor, limit: q.limit ?? DEFAULT_PAGE_SIZE, q: q.q });

export const documentRoutes: FastifyPluginAsyncTypebox<{ service: DocumentsService }> = async (app, { service }) => {
  for (const kind of ['customer', 'volunteer'] as const) {
    const Kind = kind === 'customer' ? 'Customer' : 'Volunteer';
    app.post(
      `/v1/${kind}s/:recordId/documents`,
      {
        onRequest: app.authorize(['staff', 'admin', 'patron'], 'document.created'),
        config: { multipartForm: DocumentUpload },
        schema: {
          operationId: `upload${Kind}Document`,
          tags: ['documents'],
          summary: `Upload a file to a ${kind}'s repository`,
          description: `${UPLOAD_DESCRIPTION} Staff and admins upload to any ${kind}; a patron uploads only to its own record (then attaches it to a reply).`,
          consumes: ['multipart/form-data'],
          params: recordParams(kind),
          response: {
            201: ref(Document, {
              examples: [
                kind === 'customer'
                  ? DOCUMENT_EXAMPLE
                  : { ...DOCUMENT_EXAMPLE, owner: { kind: 'record', record: { kind: 'volunteer', id: EXAMPLE.volunteerId } } },
              ],
            }),
            ...problems(400, 401, 403, 404, 413, 415),
          },
        },
      },
      async (req, reply) => {
        const upload = await receiveUpload(req);
        const doc = await service.upload(requestContext(req), { kind: 'record', recordKind: kind, recordId: req.params.recordId }, upload);
        return reply.status(201).send(doc);
      },
    );
    app.get(
      `/v1/${kind}s/:recordId/documents`,
      {
        onRequest: app.authorize(['staff', 'admin'], 'document.listed'),
        schema: {
          operationId: `list${Kind}Documents`,
          tags: ['documents'],
          summary: `A ${kind}'s document repository`,
          description: 'Newest first. `q` searches names (they are encrypted, so the search decrypts at most 2,000 names per request).',
          params: recordParams(kind),
          querystring: ListQuery,
          response: {
            200: ref(DocumentPage, {
              examples: [
                kind === 'customer'
                  ? DOCUMENT_PAGE_EXAMPLE
                  : { items: [{ ...DOCUMENT_EXAMPLE, owner: { kind: 'record', record: { kind: 'volunteer', id: EXAMPLE.volunteerId } } }], nextCursor: null },
              ],
            }),
            ...problems(400, 401, 403, 404),
          },
        },
      },
      async (req) => service.listRecord(requestContext(req), kind, req.params.recordId, page(req.query)),
    );
  }

  app.get(
    '/v1/library/documents',
    {
      onRequest: app.authorize(['staff', 'admin'], 'document.listed'),
      schema: {
        operationId: 'listLibraryDocuments',
        tags: ['documents'],
        summary: "The organization's document library",
        description: 'Newest first; `q` searches names. Private documents are listed (and flagged) but cannot be attached.',
        querystring: ListQuery,
        response: {
          200: ref(DocumentPage, { examples: [{ items: [LIBRARY_DOCUMENT_EXAMPLE], nextCursor: EXAMPLE.cursor }] }),
          ...problems(400, 401, 403),
        },
      },
    },
    async (req) => service.listLibrary(requestContext(req), page(req.query)),
  );

  app.post(
    '/v1/library/documents',
    {
      onRequest: app.authorize(['staff', 'admin'], 'document.created'),
      config: { multipartForm: LibraryDocumentUpload },
      schema: {
        operationId: 'uploadLibraryDocument',
        tags: ['documents'],
        summary: 'Upload a document to the organization library',
        description: `${UPLOAD_DESCRIPTION} A field \`private\` = \`true\`, sent before the file part, keeps it out of attachments.`,
        consumes: ['multipart/form-data'],
        response: { 201: ref(Document, { examples: [LIBRARY_DOCUMENT_EXAMPLE] }), ...problems(400, 401, 403, 413, 415) },
      },
    },
    async (req, reply) => {
      const upload = await receiveUpload(req);
      const isPrivate = upload.fields.private === 'true';
      return reply.status(201).send(await service.upload(requestContext(req), { kind: 'library', private: isPrivate }, upload));
    },
  );

  app.get(
    '/v1/documents/:documentId',
    {
      onRequest: app.authorize(['staff', 'admin', 'patron'], 'document.viewed'),
      schema: {
        operationId: 'getDocument',
        tags: ['documents'],
        summary: "A document's metadata",
        description: 'Staff and admins: any document of the org. Patrons: their own uploads and documents attached in their threads.',
        params: DocumentParams,
        response: { 200: ref(Document, { examples: [DOCUMENT_EXAMPLE] }), ...problems(400, 401, 403, 404) },
      },
    },
    async (req) => service.get(requestContext(req), req.params.documentId),
  );

  app.get(
    '/v1/documents/:documentId/content',
    {
      onRequest: app.authorize(['staff', 'admin', 'patron'], 'document.downloaded'),
      schema: {
        operationId: 'downloadDocument',
        tags: ['documents'],
        summary: "Download a document's content",
        description:
          'Streamed, as an attachment. Each 64 KiB chunk is authenticated before it is sent; if stored content fails ' +
          'authentication after the response started, the connection is cut short of Content-Length. Repr-Digest carries the SHA-256.',
        params: DocumentParams,
        response: {
          200: { description: "The file, sent with the document's own media type", content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
          ...problems(400, 401, 403, 404, 410),
        },
      },
    },
    async (req, reply) => {
      const { document, body } = await service.download(requestContext(req), req.params.documentId);
      // A stream is sent as-is (the 200 schema documents a binary body; nothing is serialized).
      return reply.headers(downloadHeaders(document)).send(body as unknown as string);
    },
  );

  app.delete(
    '/v1/documents/:documentId',
    {
      onRequest: app.authorize(['staff', 'admin'], 'document.deleted'),
      schema: {
        operationId: 'deleteDocument',
        tags: ['documents'],
        summary: 'Delete a document after its retention date',
        description: 'Refused (409) before retentionUntil. After it, the content and its key are destroyed; metadata and the audit trail stay.',
        params: DocumentParams,
        response: {
          200: ref(Document, { examples: [{ ...DOCUMENT_EXAMPLE, retentionUntil: '2025-01-14T09:30:00.000Z', deletedAt: '2025-02-03T11:00:00.000Z' }] }),
          ...problems(400, 401, 403, 404, 409),
        },
      },
    },
    async (req) => service.remove(requestContext(req), req.params.documentId),
  );
};

export function downloadHeaders(document: DocumentView): Record<string, string> {
  return {
    'content-type': document.mediaType,
    'content-length': String(document.size),
    'content-disposition': contentDisposition(document.name),
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
    'repr-digest': `sha-256=:${Buffer.from(document.checksum, 'hex').toString('base64')}:`,
  };
}
