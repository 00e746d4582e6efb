/**
 * Document names and API views. Record-repository names are PHI, sealed under the document's
 * own data key; library names are plain text (searchable in SQL).
 */
import { documentKeyContext, documentNameAad, withIntegrityTarget, type DataKey, type KeyRing } from '../../lib/crypto/index.js';
import type { DocumentRow } from './documents.repo.js';

export type DocumentWithRecord = DocumentRow & { recordKind: 'customer' | 'volunteer' | null; recordExternalId: string | null };

export interface DocumentView {
  id: string;
  owner: { kind: 'library' } | { kind: 'record'; record: { kind: 'customer' | 'volunteer'; id: string } };
  name: string;
  mediaType: string;
  size: number;
  checksum: string;
  private: boolean;
  source: DocumentRow['source'];
  createdBy: { kind: string; id: string };
  createdAt: string;
  retentionUntil: string;
  deletedAt: string | null;
}

export interface AttachmentView {
  id: string;
  name: string;
  mediaType: string;
  size: number;
  deleted: boolean;
}

export function createDocumentCodec(keyRing: KeyRing) {
  const dataKey = (doc: Pick<DocumentRow, 'orgId' | 'id' | 'salt' | 'wrappedKey' | 'keyVersion'>): DataKey =>
    withIntegrityTarget({ documentId: doc.id }, () => keyRing.openEnvelope(doc, documentKeyContext(doc.orgId, doc.id)));

  /** The display name; a shredded record document's name is gone with its key. */
  function nameOf(doc: DocumentRow): string {
    if (doc.namePlain !== null) return doc.namePlain;
    if (doc.nameSealed === null) return '(deleted)';
    return withIntegrityTarget({ documentId: doc.id }, () => dataKey(doc).openText(doc.nameSealed!, documentNameAad(doc.orgId, doc.id)));
  }

  return {
    dataKey,
    nameOf,

    toView(doc: DocumentWithRecord): DocumentView {
      return {
        id: doc.id,
        owner:
          doc.ownerKind === 'record' && doc.recordKind && doc.recordExternalId
            ? { kind: 'record', record: { kind: doc.recordKind, id: doc.recordExternalId } }
            : { kind: 'library' },
        name: nameOf(doc),
        mediaType: doc.mediaType,
        size: doc.sizeBytes,
        checksum: doc.checksum,
        private: doc.private,
        source: doc.source,
        createdBy: { kind: doc.createdByKind, id: doc.createdById },
        createdAt: doc.createdAt.toISOString(),
        retentionUntil: doc.retentionUntil.toISOString(),
        deletedAt: doc.deletedAt ? doc.deletedAt.toISOString() : null,
      };
    },

    toAttachment(doc: DocumentRow): AttachmentView {
      return { id: doc.id, name: nameOf(doc), mediaType: doc.mediaType, size: doc.sizeBytes, deleted: doc.deletedAt !== null };
    },
  };
}

export type DocumentCodec = ReturnType<typeof createDocumentCodec>;
