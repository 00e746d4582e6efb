/**
 * buildApp(config): the one way to build the service, for the server and the tests alike.
 * This file is the composition root: it opens the database, runs migrations, and wires
 * repos into services into routes. Modules are registered explicitly, in one place.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import type { TSchema } from 'typebox';
import type { Config } from './config.js';
import { databaseOptionsOf, openDatabase, type Database } from './db/client.js';
import { migrate } from './db/migrate.js';
import { systemClock, type Clock } from './lib/clock.js';
import { createCheckpointSigner, KeyRing } from './lib/crypto/index.js';
import { createLogger } from './lib/logger.js';
import { Problem } from './lib/schemas.js';
import { createValidatorCompiler } from './lib/validation.js';
import authPlugin, { requestContext } from './plugins/auth.js';
import errorsPlugin, { problemBody } from './plugins/errors.js';
import securityHeaders from './plugins/security-headers.js';
import swaggerPlugin from './plugins/swagger.js';
import { createAuditRepo } from './modules/audit/audit.repo.js';
import { auditRoutes, auditSchemas } from './modules/audit/audit.routes.js';
import { createAuditService } from './modules/audit/audit.service.js';
import { healthRoutes } from './modules/health/health.routes.js';
import { createIdempotencyRepo } from './modules/idempotency/idempotency.repo.js';
import { createIdempotencyService } from './modules/idempotency/idempotency.service.js';
import { createMessagesRepo } from './modules/messages/messages.repo.js';
import { messageRoutes, messageSchemas } from './modules/messages/messages.routes.js';
import { createMessagesService } from './modules/messages/messages.service.js';
import { createRecordsRepo } from './modules/records/records.repo.js';
import { customerRecordRoutes, recordSchemas, volunteerRecordRoutes } from './modules/records/records.routes.js';
import { createRecordsService } from './modules/records/records.service.js';
import { createThreadsRepo } from './modules/threads/threads.repo.js';
import { threadRoutes, threadSchemas } from './modules/threads/threads.routes.js';
import { createThreadsService } from './modules/threads/threads.service.js';
import { createKeysRepo } from './modules/keys/keys.repo.js';
import { createKeysService } from './modules/keys/keys.service.js';
import { createAttachmentsRepo } from './modules/attachments/attachments.repo.js';
import { createAttachmentsService } from './modules/attachments/attachments.service.js';
import { createBlobStore } from './modules/documents/blob-store.js';
import { createDocumentCodec } from './modules/documents/document-codec.js';
import { createDocumentsRepo } from './modules/documents/documents.repo.js';
import { documentRoutes, documentSchemas } from './modules/documents/documents.routes.js';
import { createDocumentsService, type DocumentsService } from './modules/documents/documents.service.js';
import { createStorageRepo } from './modules/storage/storage.repo.js';
import { storageRoutes, storageSchemas } from './modules/storage/storage.routes.js';
import { createStorageService } from './modules/storage/storage.service.js';
import uploadsPlugin from './plugins/uploads.js';
import rateLimitPlugin from './plugins/rate-limit.js';
import externalSessionPlugin from './plugins/external-session.js';
import { createAccessRepo } from './modules/access/access.repo.js';
import { accessRoutes, accessSchemas } from './modules/access/access.routes.js';
import { createAccessService } from './modules/access/access.service.js';
import { externalRoutes, externalSchemas } from './modules/access/external.routes.js';
import { createMailTransport } from './modules/mail/mail-transport.js';
import { createMailService, type MailService } from './modules/mail/mail.service.js';
import { createNotices } from './modules/mail/notices.js';
import { createOutboxRepo } from './modules/mail/outbox.repo.js';
import { createWebhooksRepo } from './modules/webhooks/webhooks.repo.js';
import { webhookRoutes, webhookSchemas } from './modules/webhooks/webhooks.routes.js';
import { createWebhooksService, type WebhooksService } from './modules/webhooks/webhooks.service.js';
import { httpWebhookSender, type WebhookSender } from './modules/webhooks/webhook-sender.js';
import { systemResolver, type Resolver } from './modules/webhooks/webhook-url.js';
import { benchRoutes } from './modules/bench/bench.routes.js';
import { ipBucket } from './lib/ip.js';
import { SERVICE_AUDIT_ORG } from './lib/context.js';
import { sanitizeHeaderText } from './lib/text.js';

export interface BuildOptions {
  /** A pino logger to use instead of one built from config (tests capture logs this way). */
  logger?: Logger;
  clock?: Clock;
  /** An already open database; buildApp then neither migrates nor closes it. */
  database?: Database;
  /** How often the mail and webhook outbox workers poll; 0 disables them (tests drive them by hand). */
  mailPollMs?: number;
  /** DNS for webhook targets (tests resolve names to chosen addresses). */
  webhookResolver?: Resolver;
  webhookSender?: WebhookSender;
  /** The periodic sweep of crash-left pending uploads; tests call it directly. */
  sweepUploads?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    database: Database;
    mail: MailService;
    documents: DocumentsService;
    webhooks: WebhooksService;
  }
}

/** Every named schema, registered once: they become OpenAPI components and validator refs. */
const NAMED_SCHEMAS: TSchema[] = [
  Problem,
  ...recordSchemas,
  ...documentSchemas,
  ...messageSchemas,
  ...threadSchemas,
  ...auditSchemas,
  ...storageSchemas,
  ...accessSchemas,
  ...externalSchemas,
  ...webhookSchemas,
];

const BODY_LIMIT = 256 * 1024;

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  const keyRing = KeyRing.parse(config.encryptionKeys);
  const ownsDatabase = !options.database;
  const database =
    options.database ?? (await openDatabase(databaseOptionsOf(config)));
  try {
    if (ownsDatabase) await migrate(database.db);
    // Refuse to start when stored rows use a key version the ring lacks: reads would fail.
    const missing = await createKeysService({ db: database.db, repo: createKeysRepo(database.db), keyRing }).missingVersions();
    if (missing.length > 0) {
      throw new Error(
        `ENCRYPTION_KEYS lacks ${missing.map((v) => `v${v}`).join(', ')}, which stored rows still use: put it back ` +
          '(after the newest version) and run npm run keys:rewrap before removing it',
      );
    }
  } catch (error) {
    if (ownsDatabase) await database.close();
    throw error;
  }

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    trustProxy: config.trustProxy,
    bodyLimit: BODY_LIMIT,
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    // HEAD would run the audited GET handlers (a HEAD on content would be logged as a download).
    exposeHeadRoutes: false,
    // Bounds how long a slow client may hold an upload (and its transaction) open.
    requestTimeout: 180_000,
    // Record ids may be 128 characters; longer path segments still get a problem answer below.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    frameworkErrors: (error, request, reply) => {
      // Router-level refusals (bad URL encoding, over-long segments) as problem+json, without
      // echoing the path back.
      request.log.info({ code: error.code }, 'refused by the router');
      void (reply as FastifyReply)
        .status(400)
        .type('application/problem+json')
        .send(problemBody('validation_failed', request.id, 'A path segment is malformed or too long'));
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate('database', database);
  // JSON only: without this, Fastify would parse text/plain bodies into strings.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(createValidatorCompiler(NAMED_SCHEMAS));
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onClose', async () => {
    if (ownsDatabase) await database.close();
  });

  // Repos, then services, then routes.
  const { db } = database;
  const auditRepo = createAuditRepo(db);
  const recordsRepo = createRecordsRepo(db);
  const threadsRepo = createThreadsRepo(db);
  const messagesRepo = createMessagesRepo(db);
  const idempotencyRepo = createIdempotencyRepo(db);
  const documentsRepo = createDocumentsRepo(db);
  const attachmentsRepo = createAttachmentsRepo(db);
  const storageRepo = createStorageRepo(db);
  const blobs = await createBlobStore(config, db);
  const accessRepo = createAccessRepo(db);
  const outboxRepo = createOutboxRepo(db);
  const webhooksRepo = createWebhooksRepo(db);

  const audit = createAuditService({ db, repo: auditRepo, clock, signer: createCheckpointSigner(config.auditCheckpointKey), chain: config.auditChain });
  const idempotency = createIdempotencyService({ db, repo: idempotencyRepo, keyRing, clock });
  const records = createRecordsService({ db, repo: recordsRepo, keyRing, audit, clock });
  const storage = createStorageService({ db, repo: storageRepo, audit, defaults: config });
  const transport = createMailTransport({ smtpUrl: config.smtpUrl, mailDir: config.mailDir });
  const mail = createMailService({ db, repo: outboxRepo, keyRing, transport, clock, from: config.mailFrom, log: logger });
  const notices = createNotices({ mail, recordsRepo, records, storage, clock, portalUrl: config.portalUrl });
  const codec = createDocumentCodec(keyRing);
  const documents = createDocumentsService({ db, repo: documentsRepo, recordsRepo, threadsRepo, records, storage, blobs, codec, keyRing, audit, clock, log: logger });
  const attachments = createAttachmentsService({ repo: attachmentsRepo, documentsRepo, codec, audit });
  const threads = createThreadsService({ db, repo: threadsRepo, messagesRepo, recordsRepo, records, idempotency, attachments, notices, storage, accessRepo, keyRing, audit, clock });
  const messages = createMessagesService({ db, repo: messagesRepo, threadsRepo, threads, idempotency, attachments, notices, audit, clock });
  const access = createAccessService({ db, repo: accessRepo, threadsRepo, threads, recordsRepo, records, storage, mail, keyRing, audit, clock, config });
  const webhooks = createWebhooksService({
    db,
    repo: webhooksRepo,
    keyRing,
    audit,
    clock,
    log: logger,
    policy: { allowPrivate: config.webhookAllowPrivate, requireHttps: config.env === 'production' },
    resolver: options.webhookResolver ?? systemResolver,
    sender: options.webhookSender ?? httpWebhookSender,
  });
  // Webhook deliveries are written by the audit trail's listener, in the event's transaction.
  audit.onRecorded(webhooks.onAuditEvent);
  app.decorate('mail', mail);
  app.decorate('webhooks', webhooks);
  app.decorate('documents', documents);

  await app.register(errorsPlugin, {
    recordAudit: (request, input, ownerOrgId) => {
      const ctx = requestContext(request);
      return audit.recordStandalone(ownerOrgId ? { ...ctx, actor: { ...ctx.actor, orgId: ownerOrgId } } : ctx, input);
    },
  });
  await app.register(securityHeaders);
  await app.register(swaggerPlugin, { schemas: NAMED_SCHEMAS });
  await app.register(authPlugin, {
    jwt: config.jwt,
    onRejected: (request, action, reason) =>
      audit
        .recordStandalone(
          {
            actor: { role: 'anonymous', id: 'anonymous', orgId: SERVICE_AUDIT_ORG, name: null, rec: null },
            ip: request.ip,
            userAgent: sanitizeHeaderText(request.headers['user-agent'], 256),
            requestId: request.id,
          },
          { action, outcome: 'denied', reason },
        )
        .catch((err: unknown) => request.log.error({ errorName: (err as Error).name }, 'could not audit a rejected token')),
  });
  await app.register(uploadsPlugin);
  await app.register(rateLimitPlugin, { redisUrl: config.redisUrl });
  await app.register(externalSessionPlugin, { authenticate: access.authenticate });

  await app.register(healthRoutes, { ping: database.ping });
  await app.register(customerRecordRoutes, { service: records });
  await app.register(volunteerRecordRoutes, { service: records });
  await app.register(threadRoutes, { service: threads });
  await app.register(messageRoutes, { service: messages });
  await app.register(auditRoutes, { service: audit });
  await app.register(documentRoutes, { service: documents });
  await app.register(storageRoutes, { service: storage });
  await app.register(accessRoutes, { service: access });
  await app.register(webhookRoutes, { service: webhooks });
  if (config.benchMode) await app.register(benchRoutes, { db });
  await app.register(externalRoutes, {
    access,
    threads,
    messages,
    documents,
    perIpPerMinute: config.externalAccess.perIpPerMinute,
    keyGenerator: ipBucket,
  });

  if (config.auditCheckpointMinutes > 0) {
    // Signed heads go to the log on a schedule, so a copy of each org's chain head lives
    // outside the database (log shipping keeps it).
    const every = setInterval(() => {
      audit.publishCheckpoints(app.log).catch((err: unknown) => app.log.error({ errorName: (err as Error).name }, 'checkpoint publishing failed'));
    }, config.auditCheckpointMinutes * 60_000);
    every.unref();
    app.addHook('onClose', async () => clearInterval(every));
  }

  const pollMs = options.mailPollMs ?? 1000;
  if (pollMs > 0) {
    mail.start(pollMs);
    webhooks.start(pollMs);
  }
  app.addHook('onClose', () => mail.stop());
  app.addHook('onClose', () => webhooks.stop());
  if (options.sweepUploads !== false) {
    // Uploads a crash left 'pending' (invisible, never counted) are removed after an hour.
    const sweep = setInterval(() => {
      documents.sweepPendingUploads().catch((err: unknown) => app.log.error({ errorName: (err as Error).name }, 'upload sweep failed'));
    }, 10 * 60_000);
    sweep.unref();
    app.addHook('onClose', async () => clearInterval(sweep));
  }

  await app.ready();
  return app;
}
