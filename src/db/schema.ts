/**
 * The Drizzle schema. drizzle-kit generates the migrations in drizzle/ from this file.
 *
 * Invariants:
 * - every row carries org_id, and every query filters on it;
 * - PHI (names, email, date of birth, phone, subjects, bodies) lives only in bytea columns
 *   sealed by src/lib/crypto; there is no plaintext column for any of it;
 * - salt + wrapped_key + key_version form each row's envelope (DESIGN section 5).
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  customType,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

/** bytea as a Node Buffer on both drivers (PGlite yields Uint8Array, postgres.js Buffer). */
export const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array | string }>({
  dataType: () => 'bytea',
  toDriver: (value) => value,
  fromDriver: (value) => {
    if (typeof value === 'string') {
      return Buffer.from(value.startsWith('\\x') ? value.slice(2) : value, 'hex');
    }
    return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  },
});

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

const envelopeColumns = () => ({
  salt: bytea('salt').notNull(),
  wrappedKey: bytea('wrapped_key').notNull(),
  keyVersion: integer('key_version').notNull(),
});

export const records = pgTable(
  'records',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    kind: text('kind', { enum: ['customer', 'volunteer'] }).notNull(),
    externalId: text('external_id').notNull(),
    ...envelopeColumns(),
    displayName: bytea('display_name').notNull(),
    email: bytea('email'),
    dateOfBirth: bytea('date_of_birth'),
    phone: bytea('phone'),
    createdAt: timestamptz('created_at').notNull(),
    updatedAt: timestamptz('updated_at').notNull(),
  },
  (t) => [uniqueIndex('records_org_kind_external_uq').on(t.orgId, t.kind, t.externalId)],
);

export const threads = pgTable(
  'threads',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    recordId: uuid('record_id')
      .notNull()
      .references(() => records.id),
    ...envelopeColumns(),
    subject: bytea('subject').notNull(),
    replyAllowed: boolean('reply_allowed').notNull(),
    state: text('state', { enum: ['open', 'closed'] }).notNull(),
    createdById: text('created_by_id').notNull(),
    createdByName: text('created_by_name'),
    createdAt: timestamptz('created_at').notNull(),
    updatedAt: timestamptz('updated_at').notNull(),
    lastActivityAt: timestamptz('last_activity_at').notNull(),
    /** Set by crypto-shredding after retention: subject, bodies and the key are gone. */
    deletedAt: timestamptz('deleted_at'),
  },
  (t) => [index('threads_org_record_activity_idx').on(t.orgId, t.recordId, t.lastActivityAt.desc(), t.id.desc())],
);

export const messages = pgTable(
  'messages',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    threadId: uuid('thread_id')
      .notNull()
      .references(() => threads.id),
    authorKind: text('author_kind', { enum: ['staff', 'patron', 'external'] }).notNull(),
    /** 'staff' for staff and admin authors, 'recipient' for patrons and external recipients. */
    authorSide: text('author_side', { enum: ['staff', 'recipient'] }).notNull(),
    authorId: text('author_id').notNull(),
    /** Sealed: a patron's or recipient's name is PHI, so every author name is encrypted. */
    authorName: bytea('author_name'),
    body: bytea('body').notNull(),
    sentAt: timestamptz('sent_at').notNull(),
    readAt: timestamptz('read_at'),
  },
  (t) => [
    index('messages_thread_id_idx').on(t.threadId, t.id),
    index('messages_unread_idx')
      .on(t.threadId, t.authorSide)
      .where(sql`${t.readAt} is null`),
  ],
);

/**
 * Append-only: a trigger (migration 0001) refuses UPDATE, DELETE and TRUNCATE. Hash-chained
 * per organization through `seq`, `prev_hash` and `hash`; `audit_chain_heads` serializes writers.
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
    occurredAt: timestamptz('occurred_at').notNull(),
    actorKind: text('actor_kind').notNull(),
    actorId: text('actor_id'),
    actorName: text('actor_name'),
    action: text('action').notNull(),
    outcome: text('outcome', { enum: ['success', 'denied', 'failure', 'error'] }).notNull(),
    recordKind: text('record_kind'),
    recordId: text('record_id'),
    threadId: uuid('thread_id'),
    messageId: uuid('message_id'),
    documentId: uuid('document_id'),
    linkId: uuid('link_id'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    requestId: text('request_id'),
    reason: text('reason'),
  },
  (t) => [
    uniqueIndex('audit_events_org_seq_uq').on(t.orgId, t.seq),
    index('audit_events_org_thread_idx').on(t.orgId, t.threadId, t.seq),
    index('audit_events_org_record_idx').on(t.orgId, t.recordId, t.seq),
    index('audit_events_org_time_idx').on(t.orgId, t.occurredAt),
  ],
);

export const auditChainHeads = pgTable('audit_chain_heads', {
  orgId: text('org_id').primaryKey(),
  seq: bigint('seq', { mode: 'number' }).notNull(),
  hash: text('hash').notNull(),
});

/**
 * Idempotency-Key replay table. It stores a keyed fingerprint of the request, never the body,
 * and the id of the resource created, which is re-read on replay.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    orgId: text('org_id').notNull(),
    actorId: text('actor_id').notNull(),
    scope: text('scope').notNull(),
    key: text('key').notNull(),
    fingerprint: text('fingerprint').notNull(),
    resourceId: uuid('resource_id').notNull(),
    createdAt: timestamptz('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.actorId, t.scope, t.key] }), index('idempotency_keys_created_idx').on(t.createdAt)],
);

/**
 * Document Storage. A document belongs to the org library (record_id null) or to one record's
 * repository. Record-repository names are PHI and sealed (`name_sealed`); library names stay
 * plain (`name_plain`) so they can be searched in SQL. Content lives in a BlobStore
 * (document_chunks by default), sealed in 64 KiB chunks under the document's own data key.
 */
export const documents = pgTable(
  'documents',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    ownerKind: text('owner_kind', { enum: ['library', 'record'] }).notNull(),
    recordId: uuid('record_id').references(() => records.id),
    ...envelopeColumns(),
    /** Per-document nonce prefix; chunk nonce = prefix (8 bytes) || chunk index (4 bytes, BE). */
    noncePrefix: bytea('nonce_prefix').notNull(),
    namePlain: text('name_plain'),
    nameSealed: bytea('name_sealed'),
    mediaType: text('media_type').notNull(),
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    storedBytes: bigint('stored_bytes', { mode: 'number' }).notNull(),
    chunkCount: integer('chunk_count').notNull(),
    /** SHA-256 (hex) of the plaintext, for clients to verify a download. */
    checksum: text('checksum').notNull(),
    private: boolean('private').notNull(),
    source: text('source', { enum: ['upload', 'message_reply', 'external_reply'] }).notNull(),
    createdByKind: text('created_by_kind').notNull(),
    createdById: text('created_by_id').notNull(),
    createdAt: timestamptz('created_at').notNull(),
    retentionUntil: timestamptz('retention_until').notNull(),
    /** Set by crypto-shredding: content and wrapped key are gone, metadata stays. */
    deletedAt: timestamptz('deleted_at'),
    /**
     * 'pending' while an upload streams in (invisible to every reader); 'ready' once the final
     * transaction accepted it. A refused upload's pending row and chunks are deleted at once; a
     * crash leaves them to the sweeper.
     */
    status: text('status', { enum: ['pending', 'ready'] })
      .notNull()
      .default('ready'),
  },
  (t) => [
    index('documents_pending_idx')
      .on(t.createdAt)
      .where(sql`${t.status} = 'pending'`),
    index('documents_org_record_idx').on(t.orgId, t.recordId, t.id),
    index('documents_org_library_idx')
      .on(t.orgId, t.id)
      .where(sql`${t.ownerKind} = 'library'`),
  ],
);

export const documentChunks = pgTable(
  'document_chunks',
  {
    documentId: uuid('document_id')
      .notNull()
      .references(() => documents.id),
    idx: integer('idx').notNull(),
    orgId: text('org_id').notNull(),
    data: bytea('data').notNull(),
  },
  (t) => [primaryKey({ columns: [t.documentId, t.idx] })],
);

/** A message references documents; it never copies them. */
export const messageAttachments = pgTable(
  'message_attachments',
  {
    messageId: uuid('message_id')
      .notNull()
      .references(() => messages.id),
    documentId: uuid('document_id')
      .notNull()
      .references(() => documents.id),
    orgId: text('org_id').notNull(),
    threadId: uuid('thread_id')
      .notNull()
      .references(() => threads.id),
    position: integer('position').notNull(),
  },
  (t) => [primaryKey({ columns: [t.messageId, t.documentId] }), index('message_attachments_document_idx').on(t.documentId, t.threadId)],
);

/**
 * Per-organization settings and storage accounting. Null settings mean "the service default"
 * (STORAGE_ALLOCATION_BYTES, RETENTION_YEARS). `used_bytes` changes only in the transaction
 * that stores or shreds a document, under this row's lock.
 */
export const orgSettings = pgTable('org_settings', {
  orgId: text('org_id').primaryKey(),
  /** Shown in emails ("<name> sent you a secure message"); not PHI. */
  displayName: text('display_name'),
  storageAllocationBytes: bigint('storage_allocation_bytes', { mode: 'number' }),
  retentionYears: integer('retention_years'),
  usedBytes: bigint('used_bytes', { mode: 'number' }).notNull(),
  documentCount: integer('document_count').notNull(),
});

/**
 * External access: one link grants one email address access to one thread. Only the SHA-256
 * of the token is stored; the address is PHI, sealed under the thread's data key.
 */
export const accessLinks = pgTable(
  'access_links',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    threadId: uuid('thread_id')
      .notNull()
      .references(() => threads.id),
    emailSealed: bytea('email_sealed').notNull(),
    tokenHash: text('token_hash').notNull(),
    verifyDateOfBirth: boolean('verify_date_of_birth').notNull(),
    verifyPhone: boolean('verify_phone').notNull(),
    expiresAt: timestamptz('expires_at').notNull(),
    revokedAt: timestamptz('revoked_at'),
    revokedById: text('revoked_by_id'),
    consecutiveFailures: integer('consecutive_failures').notNull(),
    totalFailures: integer('total_failures').notNull(),
    lockedUntil: timestamptz('locked_until'),
    lockedPermanently: boolean('locked_permanently').notNull(),
    createdById: text('created_by_id').notNull(),
    createdByName: text('created_by_name'),
    createdAt: timestamptz('created_at').notNull(),
    lastUsedAt: timestamptz('last_used_at'),
  },
  (t) => [uniqueIndex('access_links_token_hash_uq').on(t.tokenHash), index('access_links_org_thread_idx').on(t.orgId, t.threadId, t.id)],
);

/** A verified browser's session: only the SHA-256 of its token is stored. */
export const externalSessions = pgTable(
  'external_sessions',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    linkId: uuid('link_id')
      .notNull()
      .references(() => accessLinks.id),
    threadId: uuid('thread_id').notNull(),
    tokenHash: text('token_hash').notNull(),
    createdAt: timestamptz('created_at').notNull(),
    lastSeenAt: timestamptz('last_seen_at').notNull(),
    expiresAt: timestamptz('expires_at').notNull(),
  },
  (t) => [uniqueIndex('external_sessions_token_hash_uq').on(t.tokenHash), index('external_sessions_link_idx').on(t.linkId)],
);

/**
 * Transactional outbox for mail: written in the transaction of the change that needs the mail,
 * sent by a worker. Recipient and body are sealed under the row's own envelope (the body of an
 * access-link mail carries the token); the body is wiped once the mail is sent.
 */
export const emailOutbox = pgTable(
  'email_outbox',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    kind: text('kind', { enum: ['access_link', 'message_notice'] }).notNull(),
    threadId: uuid('thread_id'),
    ...envelopeColumns(),
    recipientSealed: bytea('recipient_sealed').notNull(),
    subject: text('subject').notNull(),
    bodySealed: bytea('body_sealed'),
    status: text('status', { enum: ['pending', 'sent', 'failed'] }).notNull(),
    attempts: integer('attempts').notNull(),
    nextAttemptAt: timestamptz('next_attempt_at').notNull(),
    lastError: text('last_error'),
    createdAt: timestamptz('created_at').notNull(),
    sentAt: timestamptz('sent_at'),
  },
  (t) => [
    index('email_outbox_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.status} = 'pending'`),
    index('email_outbox_thread_notice_idx').on(t.orgId, t.threadId, t.kind, t.createdAt),
  ],
);

/**
 * Webhook endpoints an organization registered. The signing secret is sealed under the row's
 * own envelope: it is shown once, at registration, and read back only to sign deliveries.
 */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    url: text('url').notNull(),
    description: text('description'),
    events: text('events').array().notNull(),
    ...envelopeColumns(),
    secretSealed: bytea('secret_sealed').notNull(),
    createdById: text('created_by_id').notNull(),
    createdAt: timestamptz('created_at').notNull(),
    deletedAt: timestamptz('deleted_at'),
  },
  (t) => [index('webhook_endpoints_org_idx').on(t.orgId, t.id)],
);

/**
 * The webhook outbox and delivery log in one: a row per event per endpoint, written in the
 * transaction of the change it announces. The payload is ids and metadata only (no PHI), so
 * it is stored as the exact bytes that are signed and sent on every attempt.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    endpointId: uuid('endpoint_id')
      .notNull()
      .references(() => webhookEndpoints.id),
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    payload: text('payload').notNull(),
    status: text('status', { enum: ['pending', 'delivered', 'failed'] }).notNull(),
    attempts: integer('attempts').notNull(),
    nextAttemptAt: timestamptz('next_attempt_at').notNull(),
    createdAt: timestamptz('created_at').notNull(),
    deliveredAt: timestamptz('delivered_at'),
  },
  (t) => [
    index('webhook_deliveries_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.status} = 'pending'`),
    index('webhook_deliveries_endpoint_idx').on(t.endpointId, t.id),
  ],
);

/** One row per delivery attempt: what the receiver answered, or why it could not be reached. */
export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    deliveryId: uuid('delivery_id')
      .notNull()
      .references(() => webhookDeliveries.id),
    attempt: integer('attempt').notNull(),
    attemptedAt: timestamptz('attempted_at').notNull(),
    responseStatus: integer('response_status'),
    error: text('error'),
    durationMs: integer('duration_ms').notNull(),
  },
  (t) => [primaryKey({ columns: [t.deliveryId, t.attempt] })],
);
