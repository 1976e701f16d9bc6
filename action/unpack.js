'use strict';
// Reads one file out of a release archive (.tar.gz or .zip) into memory.
// Nothing is ever extracted to disk by name: the caller gets the bytes of
// the member whose name is exactly the one asked for, at the archive's
// root, and writes them where it chooses. So no member name, link or
// '..' in an archive can place a file anywhere.

const zlib = require('node:zlib');

// The most a member may inflate to: the binary is tens of megabytes.
const MAX_OUTPUT = 512 * 1024 * 1024;

// rootName strips leading './' from a member name; a name that still has
// a '/' (or '\') is not at the root.
function rootName(name) {
  let n = name;
  while (n.startsWith('./')) n = n.slice(2);
  return n;
}

function cstring(buf, start, len) {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end === -1 || end > start + len ? start + len : end);
}

function parseOctal(buf, start, len) {
  const s = cstring(buf, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error(`tar: bad number field "${s}"`);
  return parseInt(s, 8);
}

function headerChecksumOK(h) {
  const want = parseOctal(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  return sum === want;
}

// paxPath returns the "path" record of a pax extended header, if any.
function paxPath(data) {
  let off = 0;
  let found = null;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp === -1) break;
    const len = parseInt(data.toString('utf8', off, sp), 10);
    if (!(len > 0) || off + len > data.length) break;
    const rec = data.toString('utf8', sp + 1, off + len - 1); // without the trailing newline
    const eq = rec.indexOf('=');
    if (eq > 0 && rec.slice(0, eq) === 'path') found = rec.slice(eq + 1);
    off += len;
  }
  return found;
}

// fileFromTarGz returns the regular file called want at the root of a
// gzip-compressed tar archive.
function fileFromTarGz(gz, want) {
  const tar = zlib.gunzipSync(gz, { maxOutputLength: MAX_OUTPUT });
  let off = 0;
  let nextName = null; // from a pax 'x' or GNU 'L' header, for the next member
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    if (!headerChecksumOK(h)) throw new Error(`tar: bad header checksum at offset ${off}`);
    const size = parseOctal(h, 124, 12);
    const type = h[156] === 0 ? '0' : String.fromCharCode(h[156]);
    let name = cstring(h, 0, 100);
    if (cstring(h, 257, 6).startsWith('ustar')) {
      const prefix = cstring(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const start = off + 512;
    if (start + size > tar.length) throw new Error('tar: archive is truncated');
    const data = tar.subarray(start, start + size);
    off = start + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      nextName = paxPath(data) ?? nextName;
      continue;
    }
    if (type === 'L') {
      nextName = cstring(data, 0, data.length);
      continue;
    }
    if (type === 'g') continue;
    if (nextName !== null) {
      name = nextName;
      nextName = null;
    }
    if ((type === '0' || type === '7') && rootName(name) === want) {
      return Buffer.from(data);
    }
  }
  throw new Error(`the archive has no file "${want}" at its root`);
}

// fileFromZip returns the file called want at the root of a zip archive
// (stored or deflated; no zip64, which a binary of this size never needs).
function fileFromZip(zip, want) {
  const EOCD = 0x06054b50;
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('zip: no end of central directory');
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < count; n++) {
    if (p + 46 > zip.length || zip.readUInt32LE(p) !== 0x02014b50) throw new Error('zip: bad central directory');
    const method = zip.readUInt16LE(p + 10);
    const compSize = zip.readUInt32LE(p + 20);
    const size = zip.readUInt32LE(p + 24);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    const name = zip.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    if (rootName(name) !== want) continue;
    if (compSize === 0xffffffff || size === 0xffffffff || local === 0xffffffff) throw new Error('zip: zip64 is not supported');
    if (local + 30 > zip.length || zip.readUInt32LE(local) !== 0x04034b50) throw new Error('zip: bad local header');
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    if (start + compSize > zip.length) throw new Error('zip: archive is truncated');
    const data = zip.subarray(start, start + compSize);
    let out;
    if (method === 0) out = Buffer.from(data);
    else if (method === 8) out = zlib.inflateRawSync(data, { maxOutputLength: MAX_OUTPUT });
    else throw new Error(`zip: compression method ${method} is not supported`);
    if (out.length !== size) throw new Error(`zip: "${name}" inflated to ${out.length} bytes, not ${size}`);
    return out;
  }
  throw new Error(`the archive has no file "${want}" at its root`);
}

module.exports = { fileFromTarGz, fileFromZip };
