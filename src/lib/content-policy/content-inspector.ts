/**
 * Upload content policy: decides from the bytes alone (never the filename or the declared type)
 * whether a file may be stored. It is fed the plaintext chunks as they stream by and gives its
 * verdict when the stream ends; memory stays bounded whatever the file size. See README.md
 * beside this file for the invariants and the verdict table.
 */
import { fileTypeFromBuffer } from 'file-type';
import { classifyZip } from './zip-directory.js';

export const MAX_FILE_BYTES = 26_214_400; // 25 MiB

export type Verdict =
  | { ok: true; mediaType: string; kind: string }
  | { ok: false; reason: string; detail: string };

/** The kinds an `ok` verdict can carry. */
export type AllowedKind =
  | 'pdf' | 'png' | 'jpeg' | 'gif' | 'webp' | 'tiff' | 'heic'
  | 'docx' | 'xlsx' | 'pptx' | 'odt' | 'ods' | 'odp' | 'doc-ole' | 'rtf' | 'text' | 'csv';

/** Bytes kept from the start of the stream (type detection, the ODF `mimetype` entry, the CFB header). */
export const HEAD_BYTES = 64 * 1024;
/** Bytes kept from the end of a ZIP stream (EOCD and central directory). Only ZIP streams keep a tail. */
export const TAIL_BYTES = 4 * 1024 * 1024;
/** One CFB directory entry: the root entry, whose CLSID marks Windows Installer files. */
const CFB_DIRECTORY_ENTRY_BYTES = 128;

/** Media type used for every legacy OLE/CFB Office file (doc, xls, ppt are not told apart). */
export const OLE_MEDIA_TYPE = 'application/x-ole-storage';

export const ALLOWED_SUMMARY =
  'Allowed: PDF, images (PNG, JPEG, GIF, WebP, TIFF, HEIC), Office documents (docx, xlsx, pptx, odt, ods, odp, doc, xls, ppt), RTF, plain text and CSV.';

const refuse = (reason: string, problem: string): Verdict => ({ ok: false, reason, detail: `${problem} ${ALLOWED_SUMMARY}` });
const allow = (kind: AllowedKind, mediaType: string): Verdict => ({ ok: true, kind, mediaType });

/** Types recognised by file-type that are allowed, by file-type `ext`. */
const ALLOWED_BY_FILE_TYPE: ReadonlyMap<string, { kind: AllowedKind; mediaType: string }> = new Map([
  ['pdf', { kind: 'pdf', mediaType: 'application/pdf' }],
  ['png', { kind: 'png', mediaType: 'image/png' }],
  ['apng', { kind: 'png', mediaType: 'image/png' }],
  ['jpg', { kind: 'jpeg', mediaType: 'image/jpeg' }],
  ['gif', { kind: 'gif', mediaType: 'image/gif' }],
  ['webp', { kind: 'webp', mediaType: 'image/webp' }],
  ['tif', { kind: 'tiff', mediaType: 'image/tiff' }],
  ['rtf', { kind: 'rtf', mediaType: 'application/rtf' }],
]);
/** file-type reports both still-image HEIF brands as ext 'heic'; the sequence mimes are refused. */
const HEIC_MIMES = new Set(['image/heic', 'image/heif']);

const EXECUTABLES = new Set([
  'exe', 'elf', 'macho', 'class', 'dex', 'wasm', 'msi', 'dmg', 'deb', 'rpm', 'apk', 'jar', 'crx', 'xpi', 'lnk', 'swf',
]);
const ARCHIVES = new Set([
  'zip', '7z', 'rar', 'gz', 'bz2', 'xz', 'zst', 'lz', 'lz4', 'lzh', 'Z', 'tar', 'cab', 'ar', 'cpio', 'arj', 'ace', 'alz',
]);

/** C0 controls other than tab, LF, form feed and CR; NUL included. */
const FORBIDDEN_CONTROLS = /[\u0000-\u0008\u000B\u000E-\u001F]/;
const NON_WHITESPACE = /\S/;

/** Root-storage CLSIDs of Windows Installer package, transform and patch ({000C108x-0000-0000-C000-000000000046}). */
const INSTALLER_CLSIDS = [0x84, 0x82, 0x86].map((b) =>
  Buffer.from([b, 0x10, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46]),
);
const CFB_MAGIC = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);

/**
 * Fixed-capacity rolling buffer of the last `capacity` bytes written. Storage grows by doubling
 * up to the capacity, then wraps; it never holds more than `capacity` bytes.
 */
class TailBuffer {
  private storage = Buffer.alloc(0);
  /** Index of the oldest byte; non-zero only once the buffer is full. */
  private start = 0;
  private length = 0;

  constructor(private readonly capacity: number) {}

  get allocatedBytes(): number {
    return this.storage.length;
  }

  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (chunk.length >= this.capacity) {
      this.ensureStorage(this.capacity);
      chunk.copy(this.storage, 0, chunk.length - this.capacity);
      this.start = 0;
      this.length = this.capacity;
      return;
    }
    if (this.length + chunk.length <= this.capacity) {
      // Not full yet, so the content is linear from index 0.
      this.ensureStorage(Math.min(this.capacity, Math.max(this.length + chunk.length, this.storage.length * 2, 64 * 1024)));
      chunk.copy(this.storage, this.length);
      this.length += chunk.length;
      return;
    }
    this.ensureStorage(this.capacity);
    const end = (this.start + this.length) % this.capacity;
    const first = Math.min(chunk.length, this.capacity - end);
    chunk.copy(this.storage, end, 0, first);
    if (first < chunk.length) chunk.copy(this.storage, 0, first);
    const overflow = this.length + chunk.length - this.capacity;
    this.length = this.capacity;
    this.start = (this.start + overflow) % this.capacity;
  }

  /** The buffered bytes in stream order (a view when not wrapped, else one copy). */
  contents(): Buffer {
    if (this.start === 0) return this.storage.subarray(0, this.length);
    return Buffer.concat([this.storage.subarray(this.start, this.capacity), this.storage.subarray(0, this.start)]);
  }

  /** Grows the storage to `size` bytes, keeping the content linear (only called while start === 0 or size is unchanged). */
  private ensureStorage(size: number): void {
    if (this.storage.length >= size) return;
    const grown = Buffer.allocUnsafe(size);
    this.contents().copy(grown, 0);
    this.storage = grown;
    this.start = 0;
  }
}

/**
 * Streaming content inspector. Call `push` with each plaintext chunk in order, then `finish` once.
 * Holds at most HEAD_BYTES from the start, TAIL_BYTES from the end (ZIP streams only), one CFB
 * directory entry, and the UTF-8 decoder's few pending bytes.
 */
/** Extensions of allowed types, and the detected kinds each may carry. */
const EXTENSION_KINDS: Record<string, readonly AllowedKind[]> = {
  pdf: ['pdf'],
  png: ['png'],
  jpg: ['jpeg'],
  jpeg: ['jpeg'],
  gif: ['gif'],
  webp: ['webp'],
  tif: ['tiff'],
  tiff: ['tiff'],
  heic: ['heic'],
  heif: ['heic'],
  docx: ['docx'],
  xlsx: ['xlsx'],
  pptx: ['pptx'],
  odt: ['odt'],
  ods: ['ods'],
  odp: ['odp'],
  doc: ['doc-ole'],
  xls: ['doc-ole'],
  ppt: ['doc-ole'],
  rtf: ['rtf'],
  txt: ['text', 'csv'],
  csv: ['csv', 'text'],
};

export class ContentInspector {
  private readonly isCsvName: boolean;
  private total = 0;
  private finished = false;
  private tooLarge = false;

  private head: Buffer | undefined;
  private headLength = 0;

  /** undefined until the first 4 bytes are seen. */
  private zip: boolean | undefined;
  private tail: TailBuffer | undefined;

  /** Absolute offset of the CFB root directory entry, once the CFB header has been read. */
  private cfbRootOffset: number | undefined;
  private cfbRoot: Buffer | undefined;
  private cfbRootFilled = 0;

  private decoder: TextDecoder | undefined = new TextDecoder('utf-8', { fatal: true });
  private textValid = true;
  private firstVisible: string | undefined;

  /** The filename's extension, lower-case; only ever used to refuse (see EXTENSION_KINDS). */
  private readonly extension: string | undefined;

  constructor(options?: { filename?: string }) {
    this.isCsvName = (options?.filename ?? '').toLowerCase().endsWith('.csv');
    this.extension = /\.([a-z0-9]{1,8})$/i.exec(options?.filename ?? '')?.[1]?.toLowerCase();
  }

  /** Bytes currently held by the inspector's buffers (head, tail and CFB probe). */
  get bufferedBytes(): number {
    return (this.head?.length ?? 0) + (this.tail?.allocatedBytes ?? 0) + (this.cfbRoot?.length ?? 0);
  }

  push(chunk: Buffer): void {
    if (this.finished) throw new Error('ContentInspector.push() called after finish()');
    if (chunk.length === 0 || this.tooLarge) {
      this.total += chunk.length;
      return;
    }
    const start = this.total;
    this.total += chunk.length;
    if (this.total > MAX_FILE_BYTES) {
      this.tooLarge = true;
      this.release();
      return;
    }

    if (this.headLength < HEAD_BYTES) {
      this.head ??= Buffer.allocUnsafe(HEAD_BYTES);
      this.headLength += chunk.copy(this.head, this.headLength, 0, Math.min(chunk.length, HEAD_BYTES - this.headLength));
    }

    if (this.zip === undefined && this.headLength >= 4) {
      const head = this.head!;
      this.zip = head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6));
      if (this.zip) {
        this.tail = new TailBuffer(TAIL_BYTES);
        this.tail.write(head.subarray(0, start)); // bytes of earlier chunks, all still in the head
      }
    }
    this.tail?.write(chunk);

    this.captureCfbRoot(chunk, start);

    if (this.textValid) this.checkText(chunk);
  }

  async finish(): Promise<Verdict> {
    if (this.finished) throw new Error('ContentInspector.finish() called twice');
    this.finished = true;
    try {
      const verdict = await this.decide();
      // A name that claims another allowed type than the content is refused (a docx named
      // .pdf would open in the wrong program). The name never makes anything allowed.
      const claimed = this.extension ? EXTENSION_KINDS[this.extension] : undefined;
      if (verdict.ok && claimed && !claimed.includes(verdict.kind as AllowedKind)) {
        return refuse('extension_mismatch', `The name ends in .${this.extension} but the content is ${verdict.kind}.`);
      }
      return verdict;
    } finally {
      this.release();
    }
  }

  private async decide(): Promise<Verdict> {
    if (this.tooLarge) return refuse('file_too_large', `The file is larger than ${MAX_FILE_BYTES} bytes (25 MiB).`);
    if (this.textValid) this.checkText(undefined);
    if (this.total === 0) return allow('text', 'text/plain; charset=utf-8');

    const head = this.head!.subarray(0, this.headLength);
    if (this.zip) {
      const result = classifyZip(head, this.tail!.contents(), this.total);
      return result.ok ? allow(result.kind, result.mediaType) : refuse(result.reason, result.problem);
    }

    let detected: { ext: string; mime: string } | undefined;
    try {
      detected = await fileTypeFromBuffer(head);
    } catch {
      detected = undefined;
    }
    if (detected) {
      const allowed = ALLOWED_BY_FILE_TYPE.get(detected.ext);
      if (allowed) return allow(allowed.kind, allowed.mediaType);
      if (detected.ext === 'heic' && HEIC_MIMES.has(detected.mime)) return allow('heic', detected.mime);
      if (detected.ext === 'cfb') {
        if (this.isInstaller()) return refuse('executable_not_allowed', 'Windows Installer packages are not accepted.');
        return allow('doc-ole', OLE_MEDIA_TYPE);
      }
    }

    // Valid text wins over file-type's guesses for text-like formats (a note starting "solid " is not an STL model).
    if (this.textValid) {
      if (this.firstVisible === '<') {
        return refuse('markup_not_allowed', 'HTML, XML and SVG files are not accepted.');
      }
      return this.isCsvName ? allow('csv', 'text/csv; charset=utf-8') : allow('text', 'text/plain; charset=utf-8');
    }

    if (detected) {
      if (EXECUTABLES.has(detected.ext)) {
        return refuse('executable_not_allowed', `Executable files and installers (${detected.ext}) are not accepted.`);
      }
      if (ARCHIVES.has(detected.ext)) {
        return refuse('archive_not_allowed', `Archives (${detected.ext}) are blocked.`);
      }
      return refuse('unsupported_type', `This file type (${detected.mime}) is not accepted.`);
    }
    return refuse('unsupported_type', 'The file is neither a recognised document type nor valid UTF-8 text.');
  }

  /** Incremental text check; `chunk` undefined flushes the decoder at the end of the stream. */
  private checkText(chunk: Buffer | undefined): void {
    let text: string;
    try {
      text = chunk ? this.decoder!.decode(chunk, { stream: true }) : this.decoder!.decode();
    } catch {
      this.rejectText();
      return;
    }
    if (FORBIDDEN_CONTROLS.test(text)) {
      this.rejectText();
      return;
    }
    // The decoder drops a leading BOM, so this is the first visible character after it.
    if (this.firstVisible === undefined) this.firstVisible = NON_WHITESPACE.exec(text)?.[0];
  }

  private rejectText(): void {
    this.textValid = false;
    this.decoder = undefined;
  }

  /**
   * Once the CFB header is in the head, remembers where the root directory entry lies and copies
   * its 128 bytes as they stream by (the directory may start anywhere in the file).
   */
  private captureCfbRoot(chunk: Buffer, start: number): void {
    if (this.cfbRootOffset === undefined) {
      if (this.headLength < 0x34) return;
      const head = this.head!;
      if (!head.subarray(0, 8).equals(CFB_MAGIC)) {
        this.cfbRootOffset = Number.POSITIVE_INFINITY; // not CFB: never capture
        return;
      }
      const sectorShift = head.readUInt16LE(0x1e);
      const firstDirectorySector = head.readUInt32LE(0x30);
      this.cfbRootOffset =
        (sectorShift === 9 || sectorShift === 12) && firstDirectorySector < 0xfffffffa
          ? (firstDirectorySector + 1) * 2 ** sectorShift
          : Number.POSITIVE_INFINITY;
      if (this.cfbRootOffset !== Number.POSITIVE_INFINITY) this.cfbRoot = Buffer.alloc(CFB_DIRECTORY_ENTRY_BYTES);
    }
    if (!this.cfbRoot) return;
    const from = Math.max(this.cfbRootOffset, start);
    const to = Math.min(this.cfbRootOffset + CFB_DIRECTORY_ENTRY_BYTES, start + chunk.length);
    if (from < to) {
      chunk.copy(this.cfbRoot, from - this.cfbRootOffset, from - start, to - start);
      this.cfbRootFilled += to - from;
    }
  }

  /** True when the CFB root entry carries a Windows Installer CLSID (msi, mst, msp). */
  private isInstaller(): boolean {
    const root = this.cfbRoot;
    if (!root || this.cfbRootFilled < CFB_DIRECTORY_ENTRY_BYTES) return false;
    if (root[0x42] !== 5) return false; // object type 5 = root storage
    const clsid = root.subarray(0x50, 0x60);
    return INSTALLER_CLSIDS.some((installer) => installer.equals(clsid));
  }

  /** Drops every buffer: after finish(), or once the stream is known to be too large. */
  private release(): void {
    this.head = undefined;
    this.headLength = 0;
    this.tail = undefined;
    this.cfbRoot = undefined;
    this.decoder = undefined;
  }
}
