import { and, desc, eq, lt, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/client.js';
import { accessLinks, externalSessions } from '../../db/schema.js';

export type AccessLinkRow = typeof accessLinks.$inferSelect;
export type ExternalSessionRow = typeof externalSessions.$inferSelect;

export function createAccessRepo(db: DbOrTx) {
  return {
    async insertLink(row: AccessLinkRow, tx: DbOrTx = db) {
      await tx.insert(accessLinks).values(row);
    },

    async findLink(orgId: string, id: string, tx: DbOrTx = db, forUpdate = false) {
      const query = tx
        .select()
        .from(accessLinks)
        .where(and(eq(accessLinks.orgId, orgId), eq(accessLinks.id, id)));
      const [row] = forUpdate ? await query.for('update') : await query;
      return row;
    },

    /** By token hash, across organizations (the token is the only thing the caller has). */
    async findLinkByTokenHash(tokenHash: string, tx: DbOrTx, forUpdate = false) {
      const query = tx.select().from(accessLinks).where(eq(accessLinks.tokenHash, tokenHash));
      const [row] = forUpdate ? await query.for('update') : await query;
      return row;
    },

    async listLinks(orgId: string, threadId: string, page: { beforeId?: string; limit: number }, tx: DbOrTx = db) {
      return tx
        .select()
        .from(accessLinks)
        .where(and(eq(accessLinks.orgId, orgId), eq(accessLinks.threadId, threadId), page.beforeId ? lt(accessLinks.id, page.beforeId) : undefined))
        .orderBy(desc(accessLinks.id))
        .limit(page.limit + 1);
    },

    async updateLink(orgId: string, id: string, fields: Partial<AccessLinkRow>, tx: DbOrTx = db) {
      await tx
        .update(accessLinks)
        .set(fields)
        .where(and(eq(accessLinks.orgId, orgId), eq(accessLinks.id, id)));
    },

    async insertSession(row: ExternalSessionRow, tx: DbOrTx = db) {
      await tx.insert(externalSessions).values(row);
    },

    /** A session with its link, by token hash. */
    async findSession(tokenHash: string, tx: DbOrTx = db) {
      const [row] = await tx
        .select({ session: externalSessions, link: accessLinks })
        .from(externalSessions)
        .innerJoin(accessLinks, eq(accessLinks.id, externalSessions.linkId))
        .where(eq(externalSessions.tokenHash, tokenHash));
      return row;
    },

    async touchSession(id: string, at: Date, tx: DbOrTx = db) {
      await tx.update(externalSessions).set({ lastSeenAt: at }).where(eq(externalSessions.id, id));
    },

    async expireSession(id: string, at: Date, tx: DbOrTx = db) {
      await tx.update(externalSessions).set({ expiresAt: at }).where(eq(externalSessions.id, id));
    },

    /** Crypto-shredding of a thread: its links lose their (sealed) address and stop working. */
    async shredThreadLinks(orgId: string, threadId: string, at: Date, tx: DbOrTx) {
      const links = await tx
        .update(accessLinks)
        .set({ emailSealed: Buffer.alloc(0), revokedAt: sql`coalesce(${accessLinks.revokedAt}, ${at.toISOString()}::timestamptz)` })
        .where(and(eq(accessLinks.orgId, orgId), eq(accessLinks.threadId, threadId)))
        .returning({ id: accessLinks.id });
      for (const link of links) await this.endSessionsOfLink(link.id, at, tx);
    },

    /** Sessions end with their link: revocation expires them all at once. */
    async endSessionsOfLink(linkId: string, at: Date, tx: DbOrTx = db) {
      await tx
        .update(externalSessions)
        .set({ expiresAt: at })
        .where(and(eq(externalSessions.linkId, linkId), sql`${externalSessions.expiresAt} > ${at.toISOString()}::timestamptz`));
    },
  };
}

export type AccessRepo = ReturnType<typeof createAccessRepo>;
