import { Type, type Static } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { requestContext } from '../../plugins/auth.js';
import { DEFAULT_PAGE_SIZE } from '../../lib/pagination.js';
import { NextCursor, PageQuery, problems, ref, StringEnum, Uuid } from '../../lib/schemas.js';
import { EXAMPLE } from '../../lib/examples.js';
import { WEBHOOK_EVENTS, webhookEventId, type WebhooksService } from './webhooks.service.js';

const WebhookEventType = StringEnum(WEBHOOK_EVENTS);

export const WebhookEndpoint = Type.Object(
  {
    id: Uuid(),
    url: Type.String({ format: 'uri' }),
    description: Type.Union([Type.String(), Type.Null()]),
    events: Type.Array(WebhookEventType),
    createdBy: Type.String({ description: 'The admin who registered it (token sub)' }),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'WebhookEndpoint', additionalProperties: false, description: 'Never contains the signing secret' },
);

export const WebhookEndpointCreated = Type.Object(
  {
    id: Uuid(),
    url: Type.String({ format: 'uri' }),
    description: Type.Union([Type.String(), Type.Null()]),
    events: Type.Array(WebhookEventType),
    createdBy: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
    secret: Type.String({
      pattern: '^whsec_[A-Za-z0-9+/]+=*$',
      description: 'The Standard Webhooks signing secret. Shown only in this answer: store it now.',
    }),
  },
  { $id: 'WebhookEndpointCreated', additionalProperties: false },
);

export const WebhookEndpointPage = Type.Object(
  { items: Type.Array(ref(WebhookEndpoint)), nextCursor: NextCursor },
  { $id: 'WebhookEndpointPage', additionalProperties: false },
);

export const CreateWebhookEndpoint = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048, description: 'https in production; private addresses are refused' }),
    events: Type.Array(WebhookEventType, { minItems: 1, maxItems: WEBHOOK_EVENTS.length, uniqueItems: true }),
    description: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]*$' })),
  },
  { $id: 'CreateWebhookEndpoint', additionalProperties: false },
);

export const WebhookAttempt = Type.Object(
  {
    attempt: Type.Integer({ minimum: 1 }),
    attemptedAt: Type.String({ format: 'date-time' }),
    responseStatus: Type.Union([Type.Integer(), Type.Null()], { description: "The receiver's HTTP status; null when it was not reached" }),
    error: Type.Union([Type.String(), Type.Null()]),
    durationMs: Type.Integer({ minimum: 0 }),
  },
  { $id: 'WebhookAttempt', additionalProperties: false },
);

export const WebhookDelivery = Type.Object(
  {
    id: Uuid(),
    eventId: Type.String({ description: 'The webhook-id header: the same on every attempt' }),
    eventType: WebhookEventType,
    status: StringEnum(['pending', 'delivered', 'failed'] as const),
    createdAt: Type.String({ format: 'date-time' }),
    deliveredAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'While pending' }),
    attempts: Type.Array(ref(WebhookAttempt)),
  },
  { $id: 'WebhookDelivery', additionalProperties: false },
);

export const WebhookDeliveryPage = Type.Object(
  { items: Type.Array(ref(WebhookDelivery)), nextCursor: NextCursor },
  { $id: 'WebhookDeliveryPage', additionalProperties: false },
);

export const webhookSchemas = [WebhookEndpoint, WebhookEndpointCreated, WebhookEndpointPage, CreateWebhookEndpoint, WebhookAttempt, WebhookDelivery, WebhookDeliveryPage];

const WEBHOOK_ID = '0192f3c0-1a2b-7c3d-8e4f-5a6b7c8d9e0f';
const WebhookParams = Type.Object(
  { webhookId: Uuid({ description: 'The webhook endpoint id', examples: [WEBHOOK_ID] }) },
  { additionalProperties: false },
);

/** Made-up endpoints and deliveries for the contract (example.com receivers, no real secret). */
const ENDPOINT_EXAMPLE: Static<typeof WebhookEndpoint> = {
  id: WEBHOOK_ID,
  url: 'https://crm.example.com/hooks/securecare',
  description: 'CRM read receipts',
  events: ['message.sent', 'message.read'],
  createdBy: 'admin-1',
  createdAt: EXAMPLE.createdAt,
};
const DELIVERY_EXAMPLE: Static<typeof WebhookDelivery> = {
  id: '0192f3c1-2b3c-7d4e-8f50-6a7b8c9d0e1f',
  eventId: webhookEventId(EXAMPLE.auditEventId, 'message.read'),
  eventType: 'message.read',
  status: 'delivered',
  createdAt: EXAMPLE.readAt,
  deliveredAt: '2025-01-14T10:03:16.000Z',
  nextAttemptAt: null,
  attempts: [
    { attempt: 1, attemptedAt: '2025-01-14T10:02:46.000Z', responseStatus: 503, error: 'receiver answered 503', durationMs: 41 },
    { attempt: 2, attemptedAt: '2025-01-14T10:03:16.000Z', responseStatus: 204, error: null, durationMs: 38 },
  ],
};

export const webhookRoutes: FastifyPluginAsyncTypebox<{ service: WebhooksService }> = async (app, { service }) => {
  app.post(
    '/v1/webhooks',
    {
      onRequest: app.authorize(['admin'], 'webhook.created'),
      schema: {
        operationId: 'createWebhookEndpoint',
        tags: ['webhooks'],
        summary: 'Register an endpoint for event notifications',
        description:
          'Admins. Deliveries are signed in the Standard Webhooks format (webhook-id, webhook-timestamp, webhook-signature) ' +
          'with the returned secret, retried with exponential backoff for up to 24 hours, and carry ids and metadata only, ' +
          'never PHI. 422 webhook_url_refused for private, loopback or link-local targets (SSRF).',
        body: ref(CreateWebhookEndpoint, { examples: [{ url: ENDPOINT_EXAMPLE.url, events: ENDPOINT_EXAMPLE.events, description: 'CRM read receipts' }] }),
        response: {
          201: ref(WebhookEndpointCreated, { examples: [{ ...ENDPOINT_EXAMPLE, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }] }),
          ...problems(400, 401, 403, 422),
        },
      },
    },
    async (req, reply) => reply.status(201).send(await service.register(requestContext(req), req.body)),
  );

  app.get(
    '/v1/webhooks',
    {
      onRequest: app.authorize(['admin'], 'webhook.listed'),
      schema: {
        operationId: 'listWebhookEndpoints',
        tags: ['webhooks'],
        summary: "The organization's webhook endpoints",
        description: 'Admins. Newest first. Secrets are never shown again.',
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: ref(WebhookEndpointPage, { examples: [{ items: [ENDPOINT_EXAMPLE], nextCursor: null }] }), ...problems(400, 401, 403) },
      },
    },
    async (req) => service.list(requestContext(req), { cursor: req.query.cursor, limit: req.query.limit ?? DEFAULT_PAGE_SIZE }),
  );

  app.get(
    '/v1/webhooks/:webhookId',
    {
      onRequest: app.authorize(['admin'], 'webhook.viewed'),
      schema: {
        operationId: 'getWebhookEndpoint',
        tags: ['webhooks'],
        summary: 'One webhook endpoint',
        description: 'Admins.',
        params: WebhookParams,
        response: { 200: ref(WebhookEndpoint, { examples: [ENDPOINT_EXAMPLE] }), ...problems(400, 401, 403, 404) },
      },
    },
    async (req) => service.get(requestContext(req), req.params.webhookId),
  );

  app.delete(
    '/v1/webhooks/:webhookId',
    {
      onRequest: app.authorize(['admin'], 'webhook.deleted'),
      schema: {
        operationId: 'deleteWebhookEndpoint',
        tags: ['webhooks'],
        summary: 'Remove an endpoint',
        description: 'Admins. Nothing more is sent to it, deliveries still queued are marked failed, and it answers 404 from then on.',
        params: WebhookParams,
        response: { 204: Type.Null({ description: 'Removed' }), ...problems(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      await service.remove(requestContext(req), req.params.webhookId);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/v1/webhooks/:webhookId/deliveries',
    {
      onRequest: app.authorize(['admin'], 'webhook.deliveries_listed'),
      schema: {
        operationId: 'listWebhookDeliveries',
        tags: ['webhooks'],
        summary: "An endpoint's delivery log",
        description: 'Admins. Newest first; each delivery lists every attempt and what the receiver answered.',
        params: WebhookParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: ref(WebhookDeliveryPage, { examples: [{ items: [DELIVERY_EXAMPLE], nextCursor: null }] }), ...problems(400, 401, 403, 404) },
      },
    },
    async (req) => service.deliveries(requestContext(req), req.params.webhookId, { cursor: req.query.cursor, limit: req.query.limit ?? DEFAULT_PAGE_SIZE }),
  );
};
