'use strict';
// Getting the binary where the network or the machine is awkward: a
// proxy, a shared temp directory, an outage, a host that stalls, loops
// or hangs up, and jobs installing at once.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const zlib = require('node:zlib');
const { test } = require('node:test');

const h = require('./helpers');
const install = require('../install');

function sha(b) {
  return crypto.createHash('sha256').update(b).digest('hex');
}

// tarGz packs one regular file at the root of a .tar.gz.
function tarGz(name, data) {
  const hdr = Buffer.alloc(512);
  hdr.write(name, 0, 100);
  hdr.write('0000755\0', 100);
  hdr.write('0000000\0', 108);
  hdr.write('0000000\0', 116);
  hdr.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
  hdr.write('00000000000\0', 136);
  hdr.write('        ', 148);
  hdr.write('0', 156);
  hdr.write('ustar\0', 257);
  hdr.write('00', 263);
  let sum = 0;
  for (const x of hdr) sum += x;
  hdr.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return zlib.gzipSync(Buffer.concat([hdr, data, Buffer.alloc((512 - (data.length % 512)) % 512), Buffer.alloc(1024)]));
}

// listen starts handler on a loopback port; close() stops it.
async function listen(handler) {
  const srv = http.createServer(handler);
  const sockets = new Set();
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    srv,
    url: `http://127.0.0.1:${srv.address().port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => srv.close(r));
    },
  };
}

const REF = 'v9.9.9';
const p = install.platform();
const { asset, checksums } = install.assetNames('9.9.9', p);
const base = `/tiercache/tiercache/releases/download/${REF}`;

// releaseHost serves a verified release of the real binary, the asset
// through a redirect to a storage path, as GitHub does.
async function releaseHost() {
  const archive = tarGz(p.exe, fs.readFileSync(h.tiercacheBin()));
  const files = {
    [`${base}/${checksums}`]: Buffer.from(`${sha(archive)}  ${asset}\n`),
    [`/storage/${asset}`]: archive,
  };
  const host = await listen((req, res) => {
    if (req.url === `${base}/${asset}`) {
      res.writeHead(302, { Location: `/storage/${asset}` });
      res.end();
    } else if (files[req.url]) {
      res.writeHead(200);
      res.end(files[req.url]);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return host;
}

function actionEnv(host, extra = {}) {
  return { TIERCACHE_BIN: undefined, GITHUB_SERVER_URL: host.url, GITHUB_ACTION_REPOSITORY: 'tiercache/tiercache', GITHUB_ACTION_REF: REF, ...extra };
}

test('the release download goes through HTTP_PROXY/http_proxy as a runner behind a proxy sets them, and not for NO_PROXY hosts', async () => {
  const host = await releaseHost();
  const seen = [];
  // A forward proxy: requests come in absolute form.
  const proxy = await listen((req, res) => {
    seen.push(req.url);
    http
      .get(req.url, (up) => {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
      })
      .on('error', () => {
        res.writeHead(502);
        res.end();
      });
  });
  try {
    for (const name of ['HTTP_PROXY', 'http_proxy']) {
      seen.length = 0;
      const m = new h.Machine();
      const main = await h.mainStep(m, { inputs: { key: 'px-1', path: 'dir' }, extra: actionEnv(host, { [name]: proxy.url }) });
      assert.equal(main.code, 0, main.log);
      assert.match(main.log, /verified /);
      assert.deepEqual(seen, [`${host.url}${base}/${checksums}`, `${host.url}${base}/${asset}`, `${host.url}/storage/${asset}`], `requests through ${name}`);
    }
    seen.length = 0;
    const m = new h.Machine();
    const direct = await h.mainStep(m, { inputs: { key: 'px-2', path: 'dir' }, extra: actionEnv(host, { http_proxy: proxy.url, no_proxy: '127.0.0.1' }) });
    assert.equal(direct.code, 0, direct.log);
    assert.deepEqual(seen, [], 'a NO_PROXY host was fetched through the proxy');
  } finally {
    await proxy.close();
    await host.close();
  }
});

test('without the runner\'s tool cache or temp directory, a binary planted in the shared temp directory is never run', { skip: process.platform === 'win32' }, async () => {
  const host = await releaseHost();
  try {
    const m = new h.Machine();
    const shared = h.tmpDir('tiercache-shared-tmp-');
    const marker = path.join(shared, 'planted-ran');
    const planted = `#!/bin/sh\necho ran > '${marker}'\necho '{"hit":false,"exact":false}'\n`;
    const dir = path.join(shared, 'tiercache', '9.9.9', p.arch);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, p.exe), planted, { mode: 0o755 });
    fs.writeFileSync(`${dir}.complete`, sha(planted));
    const main = await h.mainStep(m, {
      inputs: { key: 'tmp-1', path: 'dir' },
      extra: actionEnv(host, { RUNNER_TOOL_CACHE: undefined, RUNNER_TEMP: undefined, TMPDIR: shared }),
    });
    assert.equal(main.code, 0, main.log);
    assert.equal(fs.existsSync(marker), false, `the planted binary ran:\n${main.log}`);
    assert.match(main.log, /verified /);
    assert.ok(fs.readFileSync(main.state.bin).equals(fs.readFileSync(h.tiercacheBin())), main.state.bin);
    assert.equal(fs.statSync(path.dirname(main.state.bin)).mode & 0o077, 0, 'the binary\'s directory is open to others');
  } finally {
    await host.close();
  }
});

test('a download that fails says what failed and that TIERCACHE_BIN avoids the download', async () => {
  const host = await listen((req, res) => {
    res.writeHead(503);
    res.end();
  });
  try {
    const m = new h.Machine();
    const main = await h.mainStep(m, { inputs: { key: 'out-1', path: 'dir' }, extra: actionEnv(host) });
    assert.equal(main.code, 0, main.log);
    assert.match(main.stdout, /::warning title=tiercache::downloading .*tiercache_9\.9\.9_checksums\.txt: HTTP 503.*TIERCACHE_BIN.*the cache is skipped/);
  } finally {
    await host.close();
  }
});

test('download: a redirect loop ends, a stalled or truncated response is an error, never a hang', async () => {
  let stalled;
  const host = await listen((req, res) => {
    if (req.url === '/loop') {
      res.writeHead(302, { Location: '/loop' });
      res.end();
    } else if (req.url === '/stall-headers') {
      stalled = res; // never answered
    } else if (req.url === '/stall-body') {
      res.writeHead(200, { 'Content-Length': '1000' });
      res.write('x'.repeat(10));
    } else if (req.url === '/short') {
      res.writeHead(200, { 'Content-Length': '1000' });
      res.write('x'.repeat(10), () => res.socket.destroy());
    }
  });
  try {
    await assert.rejects(install.download(`${host.url}/loop`, { redirects: 3 }), /\/loop: too many redirects/);
    await assert.rejects(install.download(`${host.url}/stall-headers`, { idleMs: 300, backoffMs: 20 }), /stall-headers: no progress for 0\.3s/);
    await assert.rejects(install.download(`${host.url}/stall-body`, { idleMs: 300, backoffMs: 20 }), /stall-body: no progress for 0\.3s/);
    await assert.rejects(install.download(`${host.url}/short`, { idleMs: 5000, backoffMs: 20 }), /\/short: /);
    await assert.rejects(install.download('file:///release/tiercache.tar.gz'), /not an http\(s\) URL/);
  } finally {
    if (stalled) stalled.destroy();
    await host.close();
  }
});

test('jobs installing the same release at once each get the verified binary', async () => {
  const host = await releaseHost();
  try {
    const m = new h.Machine();
    const env = { ...actionEnv(host), RUNNER_TOOL_CACHE: m.toolcache, RUNNER_TEMP: m.temp };
    const bins = await Promise.all(Array.from({ length: 4 }, () => install.install({ env, log: () => {} })));
    const want = fs.readFileSync(h.tiercacheBin());
    for (const b of bins) {
      assert.equal(b, bins[0]);
      assert.ok(fs.readFileSync(b).equals(want));
    }
    assert.equal(fs.readFileSync(`${path.dirname(bins[0])}.complete`, 'utf8').trim(), sha(want));
    assert.deepEqual(fs.readdirSync(path.dirname(bins[0])), [p.exe], 'temporary files left behind');
  } finally {
    await host.close();
  }
});
