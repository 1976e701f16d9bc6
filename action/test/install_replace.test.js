'use strict';
// Installing into a tool cache where another job's install of the same
// release is in flight, or where the write fails.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { test } = require('node:test');

const install = require('../install');

// tarGz packs one member into a .tar.gz.
function tarGz(name, data) {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100);
  b.write('0000755\0', 100);
  b.write('0000000\0', 108);
  b.write('0000000\0', 116);
  b.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
  b.write('00000000000\0', 136);
  b.write('        ', 148);
  b.write('0', 156);
  b.write('ustar\0', 257);
  b.write('00', 263);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return zlib.gzipSync(Buffer.concat([b, data, Buffer.alloc((512 - (data.length % 512)) % 512), Buffer.alloc(1024)]));
}

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

// withRelease serves a release holding binary and runs fn(env, bin),
// renameSync failing with EPERM for the binary's final name, as Windows
// fails it over a binary that runs.
async function withRelease(binary, fn) {
  const p = install.platform();
  const { asset, checksums } = install.assetNames('9.9.9', p);
  const archive = p.ext === 'zip' ? null : tarGz(p.exe, binary);
  const files = {
    [`/o/r/releases/download/v9.9.9/${checksums}`]: Buffer.from(`${sha(archive)}  ${asset}\n`),
    [`/o/r/releases/download/v9.9.9/${asset}`]: archive,
  };
  const srv = http.createServer((req, res) => {
    const f = files[req.url];
    res.writeHead(f ? 200 : 404);
    res.end(f || 'Not Found');
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'tc-replace-'));
  const env = {
    GITHUB_SERVER_URL: `http://127.0.0.1:${srv.address().port}`,
    GITHUB_ACTION_REPOSITORY: 'o/r',
    GITHUB_ACTION_REF: 'v9.9.9',
    RUNNER_TOOL_CACHE: cache,
  };
  const dir = path.join(cache, 'tiercache-o-r', '9.9.9', p.arch);
  const bin = path.join(dir, p.exe);
  const rename = fs.renameSync;
  fs.renameSync = (from, to) => {
    if (to === bin) throw Object.assign(new Error(`EPERM: operation not permitted, rename '${from}' -> '${to}'`), { code: 'EPERM' });
    return rename(from, to);
  };
  try {
    await fn(env, dir, bin);
  } finally {
    fs.renameSync = rename;
    await new Promise((r) => srv.close(r));
    fs.rmSync(cache, { recursive: true, force: true });
  }
}

test('a binary that cannot be replaced because it holds the release already is used', { skip: process.platform === 'win32' }, async () => {
  const binary = Buffer.from('#!/bin/sh\necho tiercache\n');
  await withRelease(binary, async (env, dir, bin) => {
    // Another job's install put the binary in place and runs it; its
    // .complete is not written yet.
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(bin, binary, { mode: 0o755 });
    const got = await install.install({ env, log: () => {} });
    assert.equal(got, bin);
    assert.equal(fs.readFileSync(`${dir}.complete`, 'utf8').trim(), sha(binary));
    assert.deepEqual(fs.readdirSync(dir), [path.basename(bin)], 'a temporary file was left');
  });
});

test('a binary that cannot be replaced and holds something else fails the install, leaving no temporary file', { skip: process.platform === 'win32' }, async () => {
  const binary = Buffer.from('#!/bin/sh\necho tiercache\n');
  await withRelease(binary, async (env, dir, bin) => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(bin, 'an older build', { mode: 0o755 });
    await assert.rejects(install.install({ env, log: () => {} }), /EPERM/);
    assert.deepEqual(fs.readdirSync(dir), [path.basename(bin)], 'a temporary file was left');
    assert.equal(fs.existsSync(`${dir}.complete`), false, 'the other binary was marked complete');
  });
});
