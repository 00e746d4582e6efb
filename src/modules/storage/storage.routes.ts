import { Type, type Static } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { requestContext } from '../../plugins/auth.js';
import { problems, ref } from '../../lib/schemas.js';
import { EXAMPLE } from '../../lib/examples.js';
import type { StorageService } from './storage.service.js';

export const StorageUsage = Type.Object(
  {
    allocationBytes: Type.Integer(),
    usedBytes: Type.Integer({ description: 'Every stored byte, encryption overhead included' }),
    availableBytes: Type.Integer(),
    documentCount: Type.Integer(),
  },
  { $id: 'StorageUsage', additionalProperties: false },
);

export const OrgSettings = Type.Object(
  {
    displayName: Type.Union([Type.String(), Type.Null()], { description: "The organization's name as mails show it" }),
    storageAllocationBytes: Type.Integer({ minimum: 1 }),
    retentionYears: Type.Integer({ minimum: 1, maximum: 100, description: 'Default retention for new documents' }),
  },
  { $id: 'OrgSettings', additionalProperties: false },
);

export const OrgSettingsPatch = Type.Object(
  {
    displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 120, pattern: '^[^\\r\\n<>]+$' })),
    storageAllocationBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
    retentionYears: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { $id: 'OrgSettingsPatch', additionalProperties: false, minProperties: 1 },
);

export const storageSchemas = [StorageUsage, OrgSettings, OrgSettingsPatch];

const ORG_SETTINGS_EXAMPLE: Static<typeof OrgSettings> = {
  displayName: EXAMPLE.orgName,
  storageAllocationBytes: 10_737_418_240,
  retentionYears: 7,
};

export const storageRoutes: FastifyPluginAsyncTypebox<{ service: StorageService }> = async (app, { service }) => {
  app.get(
    '/v1/storage/usage',
    {
      onRequest: app.authorize(['staff', 'admin'], 'storage.viewed'),
      schema: {
        operationId: 'getStorageUsage',
        tags: ['documents'],
        summary: "The organization's storage allocation and use",
        description: 'Staff and admins.',
        response: {
          200: ref(StorageUsage, {
            examples: [{ allocationBytes: 10_737_418_240, usedBytes: 1_288_490_189, availableBytes: 9_448_928_051, documentCount: 412 }],
          }),
          ...problems(401, 403),
        },
      },
    },
    async (req) => service.usage(requestContext(req)),
  );

  app.get(
    '/v1/settings',
    {
      onRequest: app.authorize(['admin'], 'settings.viewed'),
      schema: {
        operationId: 'getOrgSettings',
        tags: ['settings'],
        summary: "The organization's display name, storage allocation and retention period",
        description: 'Admins only. Values not set for the org come from the service defaults.',
        response: { 200: ref(OrgSettings, { examples: [ORG_SETTINGS_EXAMPLE] }), ...problems(401, 403) },
      },
    },
    async (req) => service.settings(requestContext(req)),
  );

  app.patch(
    '/v1/settings',
    {
      onRequest: app.authorize(['admin'], 'settings.updated'),
      schema: {
        operationId: 'updateOrgSettings',
        tags: ['settings'],
        summary: "Change the organization's storage allocation or retention period",
        description: 'Admins only. A new retention period applies to documents stored from then on. Audited.',
        body: ref(OrgSettingsPatch, { examples: [{ retentionYears: 10 }] }),
        response: { 200: ref(OrgSettings, { examples: [{ ...ORG_SETTINGS_EXAMPLE, retentionYears: 10 }] }), ...problems(400, 401, 403) },
      },
    },
    async (req) => service.updateSettings(requestContext(req), req.body),
  );
};
