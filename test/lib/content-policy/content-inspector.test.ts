import t from 'tap';
import {
  ALLOWED_SUMMARY,
  ContentInspector,
  HEAD_BYTES,
  MAX_FILE_BYTES,
  OLE_MEDIA_TYPE,
  TAIL_BYTES,
} from '../../../src/lib/content-policy/content-inspector.js';
import * as f from '../../fixtures/files.js';

const TEXT = 'text/plain; charset=utf-8';
const CSV = 'text/csv; charset=utf-8';
const DOCX = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
const PPTX = 'application/vnd.openxmlformats-officedocument.presentationml.presentation';

interface Row {
  name: string;
  bytes: () => Buffer;
  filename?: string;
  kind?: string;
  mediaType?: string;
  reason?: string;
}

const allowed: Row[] = [
  { name: 'PDF', bytes: f.pdf, kind: 'pdf', mediaType: 'application/pdf' },
  { name: 'PNG', bytes: f.png, kind: 'png', mediaType: 'image/png' },
  { name: 'JPEG', bytes: f.jpeg, kind: 'jpeg', mediaType: 'image/jpeg' },
  { name: 'GIF89a', bytes: f.gif, kind: 'gif', mediaType: 'image/gif' },
  { name: 'WebP', bytes: f.webp, kind: 'webp', mediaType: 'image/webp' },
  { name: 'TIFF', bytes: f.tiff, kind: 'tiff', mediaType: 'image/tiff' },
  { name: 'HEIC (heic brand)', bytes: f.heic, kind: 'heic', mediaType: 'image/heic' },
  { name: 'HEIF (mif1 brand)', bytes: () => f.ftyp('mif1'), kind: 'heic', mediaType: 'image/heif' },
  { name: 'OLE Word document', bytes: () => f.cfb(), kind: 'doc-ole', mediaType: OLE_MEDIA_TYPE },
  { name: 'bare 512-byte CFB header', bytes: () => f.cfb({ headerOnly: true }), kind: 'doc-ole', mediaType: OLE_MEDIA_TYPE },
  { name: 'RTF', bytes: f.rtf, kind: 'rtf', mediaType: 'application/rtf' },
  { name: 'UTF-8 text', bytes: () => f.utf8Text(), kind: 'text', mediaType: TEXT },
  { name: 'UTF-8 text with BOM', bytes: () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), f.utf8Text(2)]), kind: 'text', mediaType: TEXT },
  { name: 'text mentioning <html> after the start', bytes: () => Buffer.from('Note: <html> tags\n'), kind: 'text', mediaType: TEXT },
  { name: 'empty file', bytes: () => Buffer.alloc(0), kind: 'text', mediaType: TEXT },
  { name: 'empty file named .csv', bytes: () => Buffer.alloc(0), filename: 'empty.csv', kind: 'text', mediaType: TEXT },
  { name: 'CSV named .csv', bytes: f.csv, filename: 'doses.csv', kind: 'csv', mediaType: CSV },
  { name: 'CSV named .CSV', bytes: f.csv, filename: 'DOSES.CSV', kind: 'csv', mediaType: CSV },
  { name: 'CSV named .txt', bytes: f.csv, filename: 'doses.txt', kind: 'text', mediaType: TEXT },
  { name: 'CSV without a name', bytes: f.csv, kind: 'text', mediaType: TEXT },
  { name: 'text that file-type calls STL', bytes: () => Buffer.from('solid evidence of improvement\n'), kind: 'text', mediaType: TEXT },
  { name: 'docx', bytes: () => f.docx(), kind: 'docx', mediaType: DOCX },
  { name: 'PDF with an unknown extension', bytes: f.pdf, filename: 'scan.bin', kind: 'pdf', mediaType: 'application/pdf' },
  { name: 'PDF with no extension', bytes: f.pdf, filename: 'scan', kind: 'pdf', mediaType: 'application/pdf' },
  { name: 'xlsx', bytes: () => f.xlsx(), kind: 'xlsx', mediaType: XLSX },
  { name: 'pptx', bytes: () => f.pptx(), kind: 'pptx', mediaType: PPTX },
  { name: 'docx with ZIP64 records', bytes: () => f.docx([], { zip64: true }), kind: 'docx', mediaType: DOCX },
  { name: 'docx with an archive comment', bytes: () => f.docx([], { comment: 'PK\x05\x06 fake signature in comment' }), kind: 'docx', mediaType: DOCX },
  { name: 'odt', bytes: f.odt, kind: 'odt', mediaType: 'application/vnd.oasis.opendocument.text' },
  { name: 'ods', bytes: f.ods, kind: 'ods', mediaType: 'application/vnd.oasis.opendocument.spreadsheet' },
  { name: 'odp', bytes: f.odp, kind: 'odp', mediaType: 'application/vnd.oasis.opendocument.presentation' },
];

const refused: Row[] = [
  { name: 'docx named .pdf (the name claims another allowed type)', bytes: () => f.docx(), filename: 'invoice.pdf', reason: 'extension_mismatch' },
  { name: 'PDF named .txt', bytes: f.pdf, filename: 'notes.txt', reason: 'extension_mismatch' },
  { name: 'Windows PE exe', bytes: f.peExe, reason: 'executable_not_allowed' },
  { name: 'PE exe named .pdf', bytes: f.peExe, filename: 'scan.pdf', reason: 'executable_not_allowed' },
  { name: 'ELF', bytes: f.elf, reason: 'executable_not_allowed' },
  { name: 'Mach-O', bytes: f.machO, reason: 'executable_not_allowed' },
  { name: 'MSI installer (CFB with the installer CLSID)', bytes: () => f.cfb({ clsid: f.CLSID_MSI }), reason: 'executable_not_allowed' },
  { name: '7z', bytes: f.sevenZip, reason: 'archive_not_allowed' },
  { name: 'rar', bytes: f.rar, reason: 'archive_not_allowed' },
  { name: 'gzip', bytes: f.gzip, reason: 'archive_not_allowed' },
  { name: 'plain zip', bytes: f.plainZip, reason: 'archive_not_allowed' },
  { name: 'plain zip named .docx', bytes: f.plainZip, filename: 'report.docx', reason: 'archive_not_allowed' },
  { name: 'empty zip archive', bytes: f.emptyZip, reason: 'archive_not_allowed' },
  { name: 'jar', bytes: f.jar, reason: 'archive_not_allowed' },
  { name: 'apk', bytes: f.apk, reason: 'archive_not_allowed' },
  { name: 'epub', bytes: f.epub, reason: 'archive_not_allowed' },
  { name: 'docm', bytes: f.docm, reason: 'macros_not_allowed' },
  { name: 'docm named .docx', bytes: f.docm, filename: 'letter.docx', reason: 'macros_not_allowed' },
  { name: 'xlsm', bytes: f.xlsm, reason: 'macros_not_allowed' },
  { name: 'pptm', bytes: f.pptm, reason: 'macros_not_allowed' },
  { name: 'zip with ../evil', bytes: () => f.zipWithName('../evil'), reason: 'archive_unsafe_path' },
  { name: 'zip with /abs', bytes: () => f.zipWithName('/abs'), reason: 'archive_unsafe_path' },
  { name: 'zip with 10,001 entries', bytes: () => f.zipWithEntries(10_001), reason: 'archive_too_many_entries' },
  { name: 'zip bomb declaring 4 GiB', bytes: f.zipBomb, reason: 'archive_too_large' },
  { name: 'ZIP64 bomb declaring 4 GiB', bytes: f.zip64Bomb, reason: 'archive_too_large' },
  { name: 'HTML', bytes: f.html, reason: 'markup_not_allowed' },
  { name: 'HTML named .txt', bytes: f.html, filename: 'notes.txt', reason: 'markup_not_allowed' },
  { name: 'SVG after BOM and whitespace', bytes: f.svg, reason: 'markup_not_allowed' },
  { name: 'XML', bytes: f.xml, reason: 'markup_not_allowed' },
  { name: 'markup named .csv', bytes: f.html, filename: 'x.csv', reason: 'markup_not_allowed' },
  { name: 'text with a NUL byte', bytes: () => Buffer.from('hello\0world\n'), reason: 'unsupported_type' },
  { name: 'text with an ESC control', bytes: () => Buffer.from('hello \x1b[31mred\n'), reason: 'unsupported_type' },
  { name: 'invalid UTF-8', bytes: () => Buffer.from([0x68, 0x69, 0xc3, 0x28, 0x0a]), reason: 'unsupported_type' },
  { name: 'UTF-8 truncated mid-character at the end', bytes: () => Buffer.from([0x68, 0x69, 0xe6, 0x97]), reason: 'unsupported_type' },
  { name: 'latin1 text', bytes: () => Buffer.from('Gr\xfc\xdfe\n', 'latin1'), reason: 'unsupported_type' },
  { name: 'UTF-16 text', bytes: () => Buffer.from('\uFEFFhello', 'utf16le'), reason: 'unsupported_type' },
  { name: 'HEIC image sequence', bytes: () => f.ftyp('hevc'), reason: 'unsupported_type' },
  { name: 'AVIF', bytes: () => f.ftyp('avif', ['avif', 'mif1']), reason: 'unsupported_type' },
  { name: 'random bytes', bytes: () => Buffer.from([0x00, 0x13, 0x37, 0xfe, 0xed, 0x00, 0x42]), reason: 'unsupported_type' },
];

t.test('verdict table, identical in every chunking', async (t) => {
  for (const row of [...allowed, ...refused]) {
    const bytes = row.bytes();
    for (const chunkSize of f.chunkings(bytes)) {
      for (const reuse of [false, true]) {
        const options = { chunkSize, reuse, ...(row.filename === undefined ? {} : { filename: row.filename }) };
        const { verdict, maxBuffered } = await f.inspect(bytes, options);
        const label = `${row.name} (chunks of ${chunkSize}${reuse ? ', reused buffer' : ''})`;
        if (row.reason === undefined) {
          t.same(verdict, { ok: true, kind: row.kind, mediaType: row.mediaType }, label);
        } else {
          t.match(verdict, { ok: false, reason: row.reason }, label);
          if (!verdict.ok) t.ok(verdict.detail.endsWith(ALLOWED_SUMMARY), `${label}: detail names what is allowed`);
        }
        t.ok(maxBuffered <= HEAD_BYTES + TAIL_BYTES, `${label}: buffer bound`);
      }
    }
  }
});

t.test('refusal details speak to the client', async (t) => {
  const zip = (await f.inspect(f.plainZip())).verdict;
  t.ok(!zip.ok && zip.detail.includes('ZIP archives are blocked'), zip.ok ? '' : zip.detail);
  const exe = (await f.inspect(f.peExe())).verdict;
  t.ok(!exe.ok && exe.detail.includes('Allowed: PDF, images (PNG, JPEG, GIF, WebP, TIFF, HEIC)'));
});

t.test('multibyte characters split at every chunk boundary', async (t) => {
  const bytes = Buffer.from('ü日😀'.repeat(5), 'utf8');
  for (let size = 1; size <= 7; size++) {
    t.same((await f.inspect(bytes, { chunkSize: size })).verdict, { ok: true, kind: 'text', mediaType: TEXT }, `chunks of ${size}`);
  }
  // A BOM split over chunks, then markup.
  const markup = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(' \n\t<html>')]);
  t.match((await f.inspect(markup, { chunkSize: 1 })).verdict, { ok: false, reason: 'markup_not_allowed' });
});

t.test('a 20 MiB text stream keeps at most the head buffered', async (t) => {
  // About 64 KiB of whole characters, so repeating it stays valid text.
  const piece = Buffer.from(f.TEXT_SAMPLE.repeat(Math.floor((64 * 1024) / Buffer.byteLength(f.TEXT_SAMPLE))), 'utf8');
  const inspector = new ContentInspector();
  let fed = 0;
  let max = 0;
  while (fed < 20 * 1024 * 1024) {
    inspector.push(piece);
    fed += piece.length;
    max = Math.max(max, inspector.bufferedBytes);
  }
  t.ok(max <= HEAD_BYTES, `buffered at most ${max} bytes`);
  t.same(await inspector.finish(), { ok: true, kind: 'text', mediaType: TEXT });
  t.equal(inspector.bufferedBytes, 0, 'buffers released after finish');
});

t.test('a 20 MiB docx keeps at most head + tail buffered', async (t) => {
  const media = Buffer.alloc(20 * 1024 * 1024, 0x5a);
  const bytes = f.docx([{ name: 'word/media/image1.png', data: media }]);
  for (const chunkSize of [64 * 1024, 1_000_003, bytes.length]) {
    const { verdict, maxBuffered } = await f.inspect(bytes, { chunkSize });
    t.same(verdict, { ok: true, kind: 'docx', mediaType: DOCX }, `chunks of ${chunkSize}`);
    t.ok(maxBuffered <= HEAD_BYTES + TAIL_BYTES, `buffered at most ${maxBuffered} bytes`);
  }
});

t.test('a central directory larger than the tail buffer is refused', async (t) => {
  const long = 'd/'.repeat(230);
  const entries = Array.from({ length: 9_500 }, (_, i) => ({ name: `${long}${i}.txt` }));
  const bytes = f.buildZip([{ name: '[Content_Types].xml', data: 'x' }, { name: 'word/document.xml', data: 'x' }, ...entries]);
  const { verdict, maxBuffered } = await f.inspect(bytes, { chunkSize: 64 * 1024 });
  t.match(verdict, { ok: false, reason: 'archive_too_complex' });
  t.ok(maxBuffered <= HEAD_BYTES + TAIL_BYTES, `buffered at most ${maxBuffered} bytes`);
});

t.test('the MSI check finds the root entry beyond the head buffer', async (t) => {
  const farSector = Math.ceil((HEAD_BYTES * 2) / 512);
  const msi = f.cfb({ clsid: f.CLSID_MSI, directorySector: farSector });
  const doc = f.cfb({ directorySector: farSector });
  for (const chunkSize of [1, 511, 4096, 64 * 1024, msi.length]) {
    t.match((await f.inspect(msi, { chunkSize })).verdict, { ok: false, reason: 'executable_not_allowed' }, `msi, chunks of ${chunkSize}`);
    t.same((await f.inspect(doc, { chunkSize })).verdict, { ok: true, kind: 'doc-ole', mediaType: OLE_MEDIA_TYPE }, `doc, chunks of ${chunkSize}`);
  }
});

t.test('files over 25 MiB are refused and nothing stays buffered', async (t) => {
  const inspector = new ContentInspector({ filename: 'big.csv' });
  const piece = Buffer.alloc(1024 * 1024, 0x61);
  for (let i = 0; i < 25; i++) inspector.push(piece);
  inspector.push(Buffer.alloc(0));
  t.ok(inspector.bufferedBytes <= HEAD_BYTES, 'text keeps only the head');
  inspector.push(Buffer.from('a'));
  t.equal(inspector.bufferedBytes, 0, 'one byte over the limit drops every buffer');
  t.match(await inspector.finish(), { ok: false, reason: 'file_too_large' });

  const exact = new ContentInspector();
  for (let i = 0; i < 25; i++) exact.push(piece);
  t.equal(25 * piece.length, MAX_FILE_BYTES);
  t.same(await exact.finish(), { ok: true, kind: 'text', mediaType: TEXT }, 'exactly 25 MiB is fine');
});

t.test('misuse throws', async (t) => {
  const inspector = new ContentInspector();
  inspector.push(Buffer.from('hi'));
  await inspector.finish();
  t.throws(() => inspector.push(Buffer.from('more')));
  await t.rejects(inspector.finish());
});
