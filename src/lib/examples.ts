/**
 * Fake values shared by the contract's examples (`ref(X, { examples })` in the routes): ids,
 * instants and a made-up person. Never real data: `.example`/`example.org` addresses, a 555-01xx
 * phone number, names from the usual placeholders.
 */
export const EXAMPLE = {
  orgName: 'Riverside Community Services',
  customerId: 'c-100',
  volunteerId: 'v-200',
  patron: { displayName: 'Jane Roe', email: 'jane.roe@example.org', dateOfBirth: '1980-02-03', phone: '+1 555 010 0000' },
  volunteer: { displayName: 'Sam Doe', email: 'sam.doe@example.org', dateOfBirth: '1992-07-14', phone: '+1 555 010 0042' },
  staff: { id: 'alice', name: 'Alice Staff' },
  recipientEmail: 'guardian@example.net',
  threadId: '0192f3a4-5b6c-7d8e-9f01-23456789abcd',
  messageId: '0192f3a4-5b6d-7a10-8b11-1c2d3e4f5a6b',
  replyId: '0192f3b1-0c2d-7e3f-8a4b-5c6d7e8f9a0b',
  documentId: '0192f3a4-4e10-7c22-a1b2-c3d4e5f60718',
  linkId: '0192f3a5-0a1b-7c2d-8e3f-405162738495',
  auditEventId: '0192f3a4-5b6e-7f00-9a01-b2c3d4e5f607',
  createdAt: '2025-01-14T09:30:00.000Z',
  repliedAt: '2025-01-14T16:05:12.000Z',
  readAt: '2025-01-14T10:02:45.000Z',
  checksum: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
  hash: '3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b',
  cursor: 'eyJ0IjoiMjAyNS0wMS0xNFQwOTozMDowMC4wMDBaIiwiaWQiOiIwMTkyZjNhNCJ9',
} as const;
