/**
 * Associated-data and key-context strings. Binding the row identity into AES-GCM's AAD means
 * a ciphertext copied to another row, org or field fails to decrypt instead of reading as
 * someone else's data. Changing any of these strings makes existing rows unreadable.
 */
export const recordKeyContext = (orgId: string, recordId: string) => `record:${orgId}:${recordId}`;
export const recordFieldAad = (orgId: string, recordId: string, field: string) => `record:${orgId}:${recordId}:${field}`;

export const threadKeyContext = (orgId: string, threadId: string) => `thread:${orgId}:${threadId}`;
export const threadSubjectAad = (orgId: string, threadId: string) => `thread:${orgId}:${threadId}:subject`;
export const messageFieldAad = (orgId: string, threadId: string, messageId: string, field: 'body' | 'author_name') =>
  `message:${orgId}:${threadId}:${messageId}:${field}`;

export const accessLinkEmailAad = (orgId: string, threadId: string, linkId: string) => `access_link:${orgId}:${threadId}:${linkId}:email`;
export const outboxKeyContext = (orgId: string, outboxId: string) => `outbox:${orgId}:${outboxId}`;
export const outboxFieldAad = (orgId: string, outboxId: string, field: 'recipient' | 'body') => `outbox:${orgId}:${outboxId}:${field}`;

export const documentKeyContext = (orgId: string, documentId: string) => `document:${orgId}:${documentId}`;
export const documentNameAad = (orgId: string, documentId: string) => `document:${orgId}:${documentId}:name`;

export const webhookKeyContext = (orgId: string, endpointId: string) => `webhook:${orgId}:${endpointId}`;
export const webhookSecretAad = (orgId: string, endpointId: string) => `webhook:${orgId}:${endpointId}:secret`;
