import t from 'tap';
import {
  classifyZip,
  EOCD_SEARCH_BYTES,
  inspectZipDirectory,
  MAX_DECLARED_UNCOMPRESSED_BYTES,
  MAX_ZIP_ENTRIES,
  odfMimetype,
  unsafePath,
} from '../../../src/lib/content-policy/zip-directory.js';
import * as f from '../../fixtures/files.js';

/** classifyZip on a whole in-memory archive (head = tail = the file). */
const classify = (bytes: Buffer) => classifyZip(bytes.subarray(0, 64 * 1024), bytes, bytes.length);

t.test('reads the central directory of a plain archive', async (t) => {
  const bytes = f.plainZip();
  const directory = inspectZipDirectory(bytes, bytes.length);
  t.ok(directory.ok);
  if (!directory.ok) return;
  t.same(directory.entries.map((e) => [e.name, e.method, e.uncompressedSize]), [['readme.txt', 0, 5], ['dir/notes.txt', 0, 5]]);
  t.equal(directory.entries[0]!.localHeaderOffset, 0);
  t.equal(directory.declaredUncompressedBytes, 10);
  t.equal(directory.zip64, false);
});

t.test('works from a tail slice, given the total length', async (t) => {
  const bytes = f.docx([{ name: 'word/media/big.bin', data: Buffer.alloc(200_000) }]);
  const tail = bytes.subarray(bytes.length - 1000);
  const directory = inspectZipDirectory(tail, bytes.length);
  t.ok(directory.ok, 'the whole directory is in the last 1000 bytes');
  t.match(classifyZip(bytes.subarray(0, 100), tail, bytes.length), { ok: true, kind: 'docx' });
  t.match(inspectZipDirectory(bytes.subarray(bytes.length - 120), bytes.length), { ok: false, reason: 'archive_too_complex' });
  t.throws(() => inspectZipDirectory(bytes, bytes.length - 1), RangeError);
});

t.test('ZIP64 end records and extra fields', async (t) => {
  const bytes = f.docx([], { zip64: true });
  const directory = inspectZipDirectory(bytes, bytes.length);
  t.match(directory, { ok: true, zip64: true });
  if (directory.ok) t.same(directory.entries.map((e) => e.name), ['[Content_Types].xml', '_rels/.rels', 'word/document.xml']);
  t.match(classify(bytes), { ok: true, kind: 'docx' });
  t.match(classify(f.zip64Bomb()), { ok: false, reason: 'archive_too_large' });

  // ZIP64 sizes without a locator are malformed.
  const broken = Buffer.from(f.plainZip());
  broken.writeUInt32LE(0xffffffff, broken.length - 6);
  t.match(inspectZipDirectory(broken, broken.length), { ok: false, reason: 'archive_malformed' });
});

t.test('EOCD search: comments, fake signatures, trailing bytes, truncation', async (t) => {
  const comment = Buffer.alloc(0xffff, 0x20);
  Buffer.from([0x50, 0x4b, 0x05, 0x06]).copy(comment, comment.length - 200); // a stray EOCD signature inside the comment
  const longComment = f.docx([], { comment });
  t.equal(EOCD_SEARCH_BYTES, 22 + 0xffff);
  t.match(classify(longComment), { ok: true, kind: 'docx' }, 'longest comment, stray signature skipped');
  const tooLong = Buffer.concat([f.docx([], { comment }), Buffer.from('x')]);
  tooLong.writeUInt16LE(0, tooLong.length - 0xffff - 3); // comment length field now 0: nothing ends at the end
  t.match(inspectZipDirectory(tooLong, tooLong.length), { ok: false, reason: 'archive_malformed' }, 'EOCD beyond the search window');
  t.match(classify(f.docx([], { trailing: Buffer.from('junk') })), { ok: false, reason: 'archive_malformed' }, 'bytes after the EOCD');
  const plain = f.plainZip();
  t.match(inspectZipDirectory(plain.subarray(0, plain.length - 1), plain.length - 1), { ok: false, reason: 'archive_malformed' }, 'truncated');
  t.match(inspectZipDirectory(Buffer.from('PK\x03\x04'), 4), { ok: false, reason: 'archive_malformed' }, 'no EOCD at all');
});

t.test('central directory consistency', async (t) => {
  const bytes = Buffer.from(f.plainZip());
  const eocd = bytes.length - 22;
  const wrongCount = Buffer.from(bytes);
  wrongCount.writeUInt16LE(3, eocd + 8);
  wrongCount.writeUInt16LE(3, eocd + 10);
  t.match(inspectZipDirectory(wrongCount, wrongCount.length), { ok: false, reason: 'archive_malformed' }, 'count mismatch');
  const wrongOffset = Buffer.from(bytes);
  wrongOffset.writeUInt32LE(wrongOffset.readUInt32LE(eocd + 16) + 1, eocd + 16);
  t.match(inspectZipDirectory(wrongOffset, wrongOffset.length), { ok: false, reason: 'archive_malformed' }, 'offset mismatch');
  const cd = bytes.readUInt32LE(eocd + 16);
  const lyingSize = Buffer.from(bytes);
  lyingSize.writeUInt32LE(1_000_000, cd + 20); // compressed size beyond the central directory
  t.match(inspectZipDirectory(lyingSize, lyingSize.length), { ok: false, reason: 'archive_malformed' }, 'entry data past the directory');
  const multiDisk = Buffer.from(bytes);
  multiDisk.writeUInt16LE(1, eocd + 4);
  t.match(inspectZipDirectory(multiDisk, multiDisk.length), { ok: false, reason: 'archive_malformed' }, 'multi-disk');
});

t.test('entry count limit', async (t) => {
  t.equal(MAX_ZIP_ENTRIES, 10_000);
  const over = f.zipWithEntries(10_001);
  t.match(inspectZipDirectory(over, over.length), { ok: false, reason: 'archive_too_many_entries' });
  const at = f.zipWithEntries(10_000);
  t.match(inspectZipDirectory(at, at.length), { ok: true }, 'exactly 10,000 entries pass the directory check');
  t.match(classify(at), { ok: false, reason: 'archive_not_allowed' }, '...and are then refused as a plain zip');
});

t.test('declared uncompressed size limit (zip bomb guard)', async (t) => {
  t.equal(MAX_DECLARED_UNCOMPRESSED_BYTES, 262_144_000);
  const bomb = f.zipBomb();
  t.ok(bomb.length < 1024, `the bomb is ${bomb.length} bytes`);
  t.match(inspectZipDirectory(bomb, bomb.length), { ok: false, reason: 'archive_too_large' });
  const atLimit = f.buildZip([
    { name: 'a', data: 'x', declaredSize: MAX_DECLARED_UNCOMPRESSED_BYTES - 1 },
    { name: 'b', data: 'x', declaredSize: 1 },
  ]);
  t.match(inspectZipDirectory(atLimit, atLimit.length), { ok: true }, 'exactly the limit is fine');
  const overLimit = f.buildZip([
    { name: 'a', data: 'x', declaredSize: MAX_DECLARED_UNCOMPRESSED_BYTES },
    { name: 'b', data: 'x', declaredSize: 1 },
  ]);
  t.match(inspectZipDirectory(overLimit, overLimit.length), { ok: false, reason: 'archive_too_large' }, 'one byte over');
});

t.test('unsafe entry names', async (t) => {
  const unsafe = ['../evil', 'word/../../evil', 'a/..', '/abs', '\\abs', 'dir\\file', 'C:/Windows/x', 'c:evil', '..'];
  for (const name of unsafe) {
    const bytes = f.zipWithName(name);
    t.match(inspectZipDirectory(bytes, bytes.length), { ok: false, reason: 'archive_unsafe_path' }, name);
  }
  const nul = f.buildZip([{ name: 'x', nameBytes: Buffer.from('ok.txt\0.exe', 'latin1') }]);
  t.match(inspectZipDirectory(nul, nul.length), { ok: false, reason: 'archive_unsafe_path' }, 'NUL in name');
  const unicode = f.docx([{ name: 'word/harmless.xml', unicodePath: '../../etc/cron.d/x' }]);
  t.match(inspectZipDirectory(unicode, unicode.length), { ok: false, reason: 'archive_unsafe_path' }, 'unsafe Unicode Path extra field');
  const link = f.docx([{ name: 'word/link', data: '/etc/passwd', symlink: true }]);
  t.match(inspectZipDirectory(link, link.length), { ok: false, reason: 'archive_unsafe_path' }, 'symlink entry');
  const twice = f.docx([{ name: 'WORD/document.xml', data: '<x/>' }]);
  t.match(inspectZipDirectory(twice, twice.length), { ok: false, reason: 'archive_unsafe_path' }, 'duplicate name');
  for (const name of ['word/document.xml', 'a..b/c', '..x', 'x..', 'dir/', '[Content_Types].xml', 'ünï/cödé.xml']) {
    t.equal(unsafePath(Buffer.from(name)), undefined, `${name} is safe`);
  }
  t.equal(unsafePath(Buffer.alloc(0)), 'empty name');
});

t.test('encrypted entries are refused', async (t) => {
  const bytes = f.docx([{ name: 'word/secret.xml', data: 'x', flags: 1 }]);
  t.match(classify(bytes), { ok: false, reason: 'archive_encrypted' });
});

t.test('OOXML classification', async (t) => {
  t.match(classify(f.docx()), { ok: true, kind: 'docx' });
  t.match(classify(f.xlsx()), { ok: true, kind: 'xlsx' });
  t.match(classify(f.pptx()), { ok: true, kind: 'pptx' });
  const noContentTypes = f.buildZip([{ name: 'word/document.xml', data: '<w/>' }]);
  t.match(classify(noContentTypes), { ok: false, reason: 'archive_not_allowed' }, 'main part without [Content_Types].xml');
  const noMainPart = f.buildZip([{ name: '[Content_Types].xml', data: '<T/>' }, { name: 'word/other.xml', data: '<w/>' }]);
  t.match(classify(noMainPart), { ok: false, reason: 'archive_not_allowed' }, '[Content_Types].xml without a main part');
});

t.test('macros are refused', async (t) => {
  t.match(classify(f.docm()), { ok: false, reason: 'macros_not_allowed' });
  t.match(classify(f.xlsm()), { ok: false, reason: 'macros_not_allowed' });
  t.match(classify(f.pptm()), { ok: false, reason: 'macros_not_allowed' });
  t.match(classify(f.docx([{ name: 'word/VBAPROJECT.BIN', data: 'x' }])), { ok: false, reason: 'macros_not_allowed' }, 'any case');
  t.match(classify(f.xlsx([{ name: 'xl/macrosheets/sheet1.xml', data: '<x/>' }])), { ok: false, reason: 'macros_not_allowed' }, 'Excel 4.0 macro sheet');
  const odfBasic = f.buildZip([
    { name: 'mimetype', data: 'application/vnd.oasis.opendocument.text' },
    { name: 'content.xml', data: '<x/>' },
    { name: 'Basic/Standard/Module1.xml', data: '<x/>' },
  ]);
  t.match(classify(odfBasic), { ok: false, reason: 'macros_not_allowed' }, 'ODF Basic library');
});

t.test('executable packages are refused, even with Office parts', async (t) => {
  t.match(classify(f.jar()), { ok: false, reason: 'archive_not_allowed' });
  t.match(classify(f.apk()), { ok: false, reason: 'archive_not_allowed' });
  t.match(classify(f.docx([{ name: 'META-INF/MANIFEST.MF', data: 'Main-Class: X\n' }])), { ok: false, reason: 'archive_not_allowed' }, 'docx + jar polyglot');
  t.match(classify(f.docx([{ name: 'x/Payload.class', data: 'x' }])), { ok: false, reason: 'archive_not_allowed' }, 'docx with a class file');
});

t.test('ODF classification', async (t) => {
  t.match(classify(f.odt()), { ok: true, kind: 'odt', mediaType: 'application/vnd.oasis.opendocument.text' });
  t.match(classify(f.ods()), { ok: true, kind: 'ods' });
  t.match(classify(f.odp()), { ok: true, kind: 'odp' });
  t.equal(odfMimetype(f.odt()), 'application/vnd.oasis.opendocument.text');
  t.match(classify(f.epub()), { ok: false, reason: 'archive_not_allowed' }, 'epub');
  t.match(classify(f.odfPackage('application/vnd.oasis.opendocument.text-template')), { ok: false, reason: 'archive_not_allowed' }, 'template');
  t.match(classify(f.odfPackage('application/vnd.oasis.opendocument.textx')), { ok: false, reason: 'archive_not_allowed' }, 'near miss');
  t.match(classify(f.odfPackage('application/vnd.oasis.opendocument.text', { mimetypeFirst: false })), { ok: false, reason: 'archive_not_allowed' }, 'mimetype not first');
  const compressed = f.odfPackage('application/vnd.oasis.opendocument.text', { mimetypeMethod: 8 });
  t.equal(odfMimetype(compressed), undefined, 'method 8 is not read');
  t.match(classify(compressed), { ok: false, reason: 'archive_not_allowed' }, 'compressed mimetype');
  const noContent = f.buildZip([{ name: 'mimetype', data: 'application/vnd.oasis.opendocument.text' }]);
  t.match(classify(noContent), { ok: false, reason: 'archive_not_allowed' }, 'mimetype without content.xml');
  t.equal(odfMimetype(Buffer.from('PK\x03\x04')), undefined, 'truncated header');
});
