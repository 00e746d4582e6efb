/**
 * The PHI-free notice a record holder gets when staff write on a thread of their record:
 * the organization's name, a generic subject and the portal address. Coalesced: at most one
 * notice per thread per 15 minutes, decided in the sending transaction.
 */
import type { DbOrTx } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import type { RecordsRepo } from '../records/records.repo.js';
import type { RecordsService } from '../records/records.service.js';
import type { StorageService } from '../storage/storage.service.js';
import type { MailService } from './mail.service.js';
import { allSettledInTransaction } from '../../db/util.js';

export const NOTICE_COALESCE_MS = 15 * 60 * 1000;

export function createNotices(deps: { mail: MailService; recordsRepo: RecordsRepo; records: RecordsService; storage: StorageService; clock: Clock; portalUrl: string }) {
  const { mail, recordsRepo, records, storage, clock, portalUrl } = deps;
  return {
    async newStaffMessage(tx: DbOrTx, orgId: string, threadId: string, recordId: string): Promise<void> {
      const since = new Date(clock.now().getTime() - NOTICE_COALESCE_MS);
      // Both reads in one round trip; the record is decrypted only when a notice is due.
      const [recent, record] = await allSettledInTransaction([mail.recentNotice(orgId, threadId, since, tx), recordsRepo.findById(orgId, recordId, tx)]);
      if (recent) return;
      const email = record ? records.decrypt(record).email : null;
      if (!email) return;
      const orgName = (await storage.orgDisplayName(orgId, tx)) ?? 'Your care team';
      await mail.enqueue(tx, {
        kind: 'message_notice',
        orgId,
        threadId,
        to: email,
        text: [`${orgName} has sent you a secure message.`, '', 'Sign in to read it:', portalUrl, '', 'The message itself is not sent by email.'].join('\n'),
      });
    },
  };
}

export type Notices = ReturnType<typeof createNotices>;
