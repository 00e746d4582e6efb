/**
 * ZIP container policy, from the bytes alone and WITHOUT inflating anything (see README.md beside
 * this file). `inspectZipDirectory` reads the End Of Central Directory record (and its ZIP64
 * variant) and the central directory out of the tail of the stream and applies the structural
 * limits; `classifyZip` then decides whether the archive is an allowed Office document
 * (OOXML docx/xlsx/pptx or ODF odt/ods/odp) or a refused archive.
 *
 * Every number read from the archive is attacker-controlled: each offset is bounds-checked
 * against the buffer before it is read, and nothing is allocated in proportion to a declared size.
 */

/** At most this many central-directory entries. */
export const MAX_ZIP_ENTRIES = 10_000;
/** Zip-bomb guard: the declared uncompressed sizes may add up to at most 10 × 25 MiB. */
export const MAX_DECLARED_UNCOMPRESSED_BYTES = 10 * 26_214_400;
/** The EOCD record (22 bytes) plus the longest possible archive comment (65,535 bytes). */
export const EOCD_SEARCH_BYTES = 22 + 0xffff;

const SIG_LOCAL_HEADER = 0x04034b50;
const SIG_CENTRAL_HEADER = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;

const EOCD_BYTES = 22;
const ZIP64_LOCATOR_BYTES = 20;
const ZIP64_EOCD_MIN_BYTES = 56;
const CENTRAL_HEADER_BYTES = 46;
const LOCAL_HEADER_BYTES = 30;

const EXTRA_ZIP64 = 0x0001;
const EXTRA_UNICODE_PATH = 0x7075;

const FLAG_ENCRYPTED = 0x0001;
const FLAG_DATA_DESCRIPTOR = 0x0008;
const FLAG_STRONG_ENCRYPTION = 0x0040;
const HOST_UNIX = 3;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

export type ZipRefusalReason =
  | 'archive_malformed'
  | 'archive_too_complex'
  | 'archive_too_many_entries'
  | 'archive_too_large'
  | 'archive_unsafe_path'
  | 'archive_encrypted'
  | 'macros_not_allowed'
  | 'archive_not_allowed';

/** `problem` says what is wrong; the caller adds the sentence naming what is allowed. */
export interface ZipRefusal {
  ok: false;
  reason: ZipRefusalReason;
  problem: string;
}

export interface ZipEntry {
  /** The central-directory name, decoded as UTF-8 when flag bit 11 is set, else latin1. */
  name: string;
  flags: number;
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

export interface ZipDirectory {
  ok: true;
  entries: ZipEntry[];
  /** Sum of the declared uncompressed sizes (may be imprecise above 2^53; only compared to a limit). */
  declaredUncompressedBytes: number;
  centralDirectoryOffset: number;
  zip64: boolean;
}

export type ZipKind = 'docx' | 'xlsx' | 'pptx' | 'odt' | 'ods' | 'odp';

export const ZIP_MEDIA_TYPES: Readonly<Record<ZipKind, string>> = {
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text',
  ods: 'application/vnd.oasis.opendocument.spreadsheet',
  odp: 'application/vnd.oasis.opendocument.presentation',
};

export type ZipClassification = { ok: true; kind: ZipKind; mediaType: string } | ZipRefusal;

const refuse = (reason: ZipRefusalReason, problem: string): ZipRefusal => ({ ok: false, reason, problem });
const malformed = (what: string) => refuse('archive_malformed', `The ZIP structure is invalid (${what}).`);

/** Reads a little-endian 64-bit field as a Number (exact up to 2^53; larger values only need to compare as huge). */
const u64 = (buf: Buffer, at: number) => Number(buf.readBigUInt64LE(at));

/** True when the signature at `at` is `sig` and the whole record of `length` bytes fits. */
const hasRecord = (buf: Buffer, at: number, sig: number, length: number) =>
  at >= 0 && at + length <= buf.length && buf.readUInt32LE(at) === sig;

/**
 * Parses the EOCD (and ZIP64 EOCD) and the central directory out of `tail`, which must be the
 * LAST `tail.length` bytes of a stream of `totalLength` bytes, and applies the structural limits:
 * entry count, declared uncompressed total, safe entry names, no encryption. Never inflates.
 */
export function inspectZipDirectory(tail: Buffer, totalLength: number): ZipDirectory | ZipRefusal {
  if (!Number.isSafeInteger(totalLength) || totalLength < tail.length) {
    throw new RangeError('totalLength must be an integer no smaller than the tail');
  }
  /** Absolute stream offset of tail[0]. */
  const tailStart = totalLength - tail.length;
  const toTail = (absolute: number) => absolute - tailStart;

  // 1. EOCD: search backwards; the record plus its comment must end exactly at the end of the stream.
  let eocd = -1;
  const lowest = Math.max(0, tail.length - EOCD_SEARCH_BYTES);
  for (let at = tail.length - EOCD_BYTES; at >= lowest; at--) {
    if (tail.readUInt32LE(at) === SIG_EOCD && at + EOCD_BYTES + tail.readUInt16LE(at + 20) === tail.length) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) return malformed('no end-of-central-directory record at the end of the file');

  const diskNumber = tail.readUInt16LE(eocd + 4);
  const cdDisk = tail.readUInt16LE(eocd + 6);
  let entriesOnDisk = tail.readUInt16LE(eocd + 8);
  let entryCount = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  /** Where the central directory must end: the ZIP64 EOCD record if present, else the EOCD. */
  let cdEnd = tailStart + eocd;
  let zip64 = false;

  // 2. ZIP64: the locator sits immediately before the EOCD and points at the ZIP64 EOCD record.
  const locator = eocd - ZIP64_LOCATOR_BYTES;
  if (hasRecord(tail, locator, SIG_ZIP64_LOCATOR, ZIP64_LOCATOR_BYTES)) {
    zip64 = true;
    if (tail.readUInt32LE(locator + 4) !== 0 || tail.readUInt32LE(locator + 16) !== 1) {
      return malformed('multi-disk ZIP64 archive');
    }
    const recordAbsolute = u64(tail, locator + 8);
    const record = toTail(recordAbsolute);
    if (recordAbsolute < tailStart) {
      return refuse('archive_too_complex', 'The ZIP central directory is too far from the end of the file to check.');
    }
    if (!hasRecord(tail, record, SIG_ZIP64_EOCD, ZIP64_EOCD_MIN_BYTES)) return malformed('ZIP64 record not found');
    if (record + 12 + u64(tail, record + 4) !== locator) return malformed('ZIP64 record size');
    if (tail.readUInt32LE(record + 16) !== 0 || tail.readUInt32LE(record + 20) !== 0) {
      return malformed('multi-disk ZIP64 archive');
    }
    entriesOnDisk = u64(tail, record + 24);
    entryCount = u64(tail, record + 32);
    cdSize = u64(tail, record + 40);
    cdOffset = u64(tail, record + 48);
    cdEnd = recordAbsolute;
  } else {
    if (entryCount === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      return malformed('ZIP64 fields without a ZIP64 locator');
    }
    if (diskNumber !== 0 || cdDisk !== 0) return malformed('multi-disk archive');
  }
  if (entriesOnDisk !== entryCount) return malformed('multi-disk archive');

  // 3. Limits that need only the EOCD.
  if (entryCount > MAX_ZIP_ENTRIES) {
    return refuse('archive_too_many_entries', `The ZIP archive has ${entryCount} entries; at most ${MAX_ZIP_ENTRIES} are accepted.`);
  }
  if (cdOffset + cdSize !== cdEnd) return malformed('central directory does not end where the end record begins');
  if (cdOffset < tailStart) {
    return refuse('archive_too_complex', 'The ZIP central directory is too large to check.');
  }

  // 4. The central directory, entry by entry, entirely inside the tail.
  const entries: ZipEntry[] = [];
  const seen = new Set<string>();
  let declared = 0;
  let at = toTail(cdOffset);
  const end = at + cdSize;
  while (at < end) {
    if (entries.length >= entryCount) return malformed('more central directory entries than declared');
    if (at + CENTRAL_HEADER_BYTES > end || tail.readUInt32LE(at) !== SIG_CENTRAL_HEADER) {
      return malformed('bad central directory entry');
    }
    const madeBy = tail.readUInt16LE(at + 4);
    const flags = tail.readUInt16LE(at + 8);
    const method = tail.readUInt16LE(at + 10);
    let compressedSize = tail.readUInt32LE(at + 20);
    let uncompressedSize = tail.readUInt32LE(at + 24);
    const nameLength = tail.readUInt16LE(at + 28);
    const extraLength = tail.readUInt16LE(at + 30);
    const commentLength = tail.readUInt16LE(at + 32);
    const diskStart = tail.readUInt16LE(at + 34);
    const externalAttributes = tail.readUInt32LE(at + 38);
    let localHeaderOffset = tail.readUInt32LE(at + 42);
    const nameStart = at + CENTRAL_HEADER_BYTES;
    const extraStart = nameStart + nameLength;
    const next = extraStart + extraLength + commentLength;
    if (next > end) return malformed('central directory entry overruns the directory');

    const rawName = tail.subarray(nameStart, extraStart);
    const names = [rawName];
    // Extra fields: ZIP64 sizes/offset, and the Info-ZIP Unicode path that some extractors prefer.
    let p = extraStart;
    const extraEnd = extraStart + extraLength;
    while (p + 4 <= extraEnd) {
      const id = tail.readUInt16LE(p);
      const size = tail.readUInt16LE(p + 2);
      const data = p + 4;
      if (data + size > extraEnd) return malformed('extra field overruns its entry');
      if (id === EXTRA_ZIP64) {
        let q = data;
        const take = () => {
          if (q + 8 > data + size) return undefined;
          const value = u64(tail, q);
          q += 8;
          return value;
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = take() ?? Number.POSITIVE_INFINITY;
        if (compressedSize === 0xffffffff) compressedSize = take() ?? Number.POSITIVE_INFINITY;
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take() ?? Number.POSITIVE_INFINITY;
      } else if (id === EXTRA_UNICODE_PATH && size >= 5) {
        names.push(tail.subarray(data + 5, data + size));
      }
      p = data + size;
    }

    // An entry's data must lie before the central directory; a lie here is a malformed archive.
    if (diskStart !== 0 || localHeaderOffset + LOCAL_HEADER_BYTES + nameLength + compressedSize > cdOffset) {
      return malformed('entry data outside the archive');
    }
    if (flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) {
      return refuse('archive_encrypted', 'Encrypted ZIP entries cannot be checked.');
    }
    for (const raw of names) {
      const unsafe = unsafePath(raw);
      if (unsafe) return refuse('archive_unsafe_path', `The archive contains an unsafe entry name (${unsafe}).`);
    }
    if (madeBy >>> 8 === HOST_UNIX && ((externalAttributes >>> 16) & S_IFMT) === S_IFLNK) {
      return refuse('archive_unsafe_path', 'The archive contains a symbolic link.');
    }
    const name = rawName.toString(flags & 0x0800 ? 'utf8' : 'latin1');
    const key = name.toLowerCase();
    if (seen.has(key)) return refuse('archive_unsafe_path', 'The archive contains the same entry name twice.');
    seen.add(key);

    declared += uncompressedSize;
    if (declared > MAX_DECLARED_UNCOMPRESSED_BYTES) {
      return refuse(
        'archive_too_large',
        `The ZIP archive declares more than ${MAX_DECLARED_UNCOMPRESSED_BYTES} bytes of uncompressed content.`,
      );
    }
    entries.push({ name, flags, method, compressedSize, uncompressedSize, localHeaderOffset });
    at = next;
  }
  if (entries.length !== entryCount) return malformed('fewer central directory entries than declared');

  return { ok: true, entries, declaredUncompressedBytes: declared, centralDirectoryOffset: cdOffset, zip64 };
}

/**
 * Why an entry name is unsafe to extract, or undefined. Checked on the raw bytes: every character
 * that matters ('/', '\\', ':', '.', NUL) is ASCII in both CP437 and UTF-8.
 */
export function unsafePath(raw: Buffer): string | undefined {
  if (raw.length === 0) return 'empty name';
  const name = raw.toString('latin1');
  if (name.includes('\0')) return 'NUL byte';
  if (name.includes('\\')) return 'backslash';
  if (name.startsWith('/')) return 'absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'drive letter';
  if (name.split('/').some((segment) => segment === '..')) return "'..' segment";
  return undefined;
}

const OOXML_MAIN_PARTS: ReadonlyArray<[string, ZipKind]> = [
  ['word/document.xml', 'docx'],
  ['xl/workbook.xml', 'xlsx'],
  ['ppt/presentation.xml', 'pptx'],
];

const ODF_MIMETYPES: ReadonlyMap<string, ZipKind> = new Map([
  [ZIP_MEDIA_TYPES.odt, 'odt'],
  [ZIP_MEDIA_TYPES.ods, 'ods'],
  [ZIP_MEDIA_TYPES.odp, 'odp'],
]);

const NOT_ALLOWED = 'ZIP archives are blocked; only Office documents (docx, xlsx, pptx, odt, ods, odp) may use the ZIP format.';

/**
 * Classifies a ZIP container. `head` is the first bytes of the stream (for the ODF `mimetype`
 * entry, which must be the first local file header), `tail` the last bytes (for the directory).
 */
export function classifyZip(head: Buffer, tail: Buffer, totalLength: number): ZipClassification {
  const directory = inspectZipDirectory(tail, totalLength);
  if (!directory.ok) return directory;
  const names = new Set(directory.entries.map((entry) => entry.name.toLowerCase()));

  for (const name of names) {
    // VBA projects (docm/xlsm/pptm, also when renamed), Excel 4.0 macro sheets, ODF Basic/script libraries.
    if (name.endsWith('vbaproject.bin') || name.startsWith('xl/macrosheets/') || name.startsWith('basic/') || name.startsWith('scripts/')) {
      return refuse('macros_not_allowed', 'Documents containing macros are not accepted.');
    }
  }
  // Executable containers are refused even when they also carry Office parts (polyglots).
  if (names.has('meta-inf/manifest.mf') || names.has('androidmanifest.xml') || names.has('classes.dex')) {
    return refuse('archive_not_allowed', `Java and Android packages are not accepted. ${NOT_ALLOWED}`);
  }
  for (const name of names) {
    if (name.endsWith('.class') || name.endsWith('.dex')) {
      return refuse('archive_not_allowed', `Java and Android packages are not accepted. ${NOT_ALLOWED}`);
    }
  }

  if (names.has('[content_types].xml')) {
    for (const [part, kind] of OOXML_MAIN_PARTS) {
      if (names.has(part)) return { ok: true, kind, mediaType: ZIP_MEDIA_TYPES[kind] };
    }
  }

  const odf = odfMimetype(head);
  if (odf !== undefined) {
    const kind = ODF_MIMETYPES.get(odf);
    const first = directory.entries.find((entry) => entry.localHeaderOffset === 0);
    if (kind && first?.name === 'mimetype' && names.has('content.xml')) {
      return { ok: true, kind, mediaType: ZIP_MEDIA_TYPES[kind] };
    }
  }
  return refuse('archive_not_allowed', NOT_ALLOWED);
}

/**
 * The content of the ODF `mimetype` entry when the first local file header is a stored
 * (method 0) entry named exactly `mimetype` whose bytes lie in `head`; otherwise undefined.
 */
export function odfMimetype(head: Buffer): string | undefined {
  if (!hasRecord(head, 0, SIG_LOCAL_HEADER, LOCAL_HEADER_BYTES)) return undefined;
  const flags = head.readUInt16LE(6);
  const method = head.readUInt16LE(8);
  const compressedSize = head.readUInt32LE(18);
  const uncompressedSize = head.readUInt32LE(22);
  const nameLength = head.readUInt16LE(26);
  const extraLength = head.readUInt16LE(28);
  if (method !== 0 || flags & (FLAG_DATA_DESCRIPTOR | FLAG_ENCRYPTED) || compressedSize !== uncompressedSize) return undefined;
  const nameEnd = LOCAL_HEADER_BYTES + nameLength;
  const dataStart = nameEnd + extraLength;
  if (compressedSize > 256 || dataStart + compressedSize > head.length) return undefined;
  if (head.toString('latin1', LOCAL_HEADER_BYTES, nameEnd) !== 'mimetype') return undefined;
  return head.toString('latin1', dataStart, dataStart + compressedSize);
}
