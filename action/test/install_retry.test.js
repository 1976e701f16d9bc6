'use strict';
// The release download against hosts that misbehave: one that drips
// bytes for hours, one that fails now and then, one that fails for good,
// one that sends far too much. Transient failures are retried, final
// ones are not, and nothing runs past its deadline or its size cap.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');
const { test } = require('node:test');

const h = require('./helpers');
const install = require('../install');

// listen starts handler on a loopback port and counts the requests by
// path; close() stops it, hanging up on whatever is still open.
async function listen(handler) {
  const seen = {};
  const srv = http.createServer((req, res) => {
    seen[req.url] = (seen[req.url] || 0) + 1;
    handler(req, res, seen[req.url]);
  });
  const sockets = new Set();
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    seen,
    url: `http://127.0.0.1:${srv.address().port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => srv.close(r));
    },
  };
}

// fast keeps the retries' waits short.
const fast = { backoffMs: 20 };

test('a host that drips a byte at a time fails at the deadline, not hours later', async () => {
  // 30 bytes at 100 ms apart: never idle, done after 3 s without a deadline.
  const host = await listen((req, res) => {
    res.writeHead(200, { 'Content-Length': '30' });
    let n = 0;
    const t = setInterval(() => {
      res.write('x');
      if (++n === 30) {
        clearInterval(t);
        res.end();
      }
    }, 100);
    res.on('close', () => clearInterval(t));
  });
  try {
    await assert.rejects(install.download(`${host.url}/drip`, { ...fast, idleMs: 5000, deadlineMs: 500 }), (err) => {
      assert.match(err.message, /\/drip: not finished within the 0\.5s deadline/);
      return true;
    });
    assert.equal(host.seen['/drip'], 1, 'a download past its deadline was tried again');
  } finally {
    await host.close();
  }
});

test('a 503 then a 200 succeeds, in exactly two requests', async () => {
  const host = await listen((req, res, n) => {
    res.writeHead(n === 1 ? 503 : 200);
    res.end(n === 1 ? 'busy' : 'the body');
  });
  try {
    const logged = [];
    const body = await install.download(`${host.url}/f`, { ...fast, log: (l) => logged.push(l) });
    assert.equal(body.toString(), 'the body');
    assert.equal(host.seen['/f'], 2);
    assert.equal(logged.length, 1, logged.join('\n'));
    assert.match(logged[0], /\/f: HTTP 503; trying again in 0\.02s \(attempt 2 of 3\)$/);
  } finally {
    await host.close();
  }
});

test('a connection reset, then a 200, succeeds in two requests', async () => {
  const host = await listen((req, res, n) => {
    if (n === 1) {
      req.socket.destroy();
      return;
    }
    res.writeHead(200);
    res.end('ok');
  });
  try {
    assert.equal((await install.download(`${host.url}/r`, fast)).toString(), 'ok');
    assert.equal(host.seen['/r'], 2);
  } finally {
    await host.close();
  }
});

test('a 429 with Retry-After waits that long; one past the deadline is not waited for', async () => {
  const host = await listen((req, res, n) => {
    if (n === 1) {
      res.writeHead(429, { 'Retry-After': req.url === '/soon' ? '1' : '3600' });
      res.end();
      return;
    }
    res.writeHead(200);
    res.end('ok');
  });
  try {
    const start = Date.now();
    assert.equal((await install.download(`${host.url}/soon`, fast)).toString(), 'ok');
    assert.ok(Date.now() - start >= 900, `Retry-After: 1 was not honoured (${Date.now() - start}ms)`);
    assert.equal(host.seen['/soon'], 2);
    // The error says the retry was given up, not waited for.
    await assert.rejects(install.download(`${host.url}/later`, { ...fast, deadlineMs: 2000 }), /\/later: HTTP 429.*a retry would pass the 2s deadline/);
    assert.equal(host.seen['/later'], 1);
  } finally {
    await host.close();
  }
});

test('a 500 every time fails after three requests, naming the status', async () => {
  const host = await listen((req, res) => {
    res.writeHead(500);
    res.end();
  });
  try {
    await assert.rejects(install.download(`${host.url}/f`, fast), /\/f: HTTP 500.*3 attempts/);
    assert.equal(host.seen['/f'], 3);
  } finally {
    await host.close();
  }
});

test('final answers are never retried: 404 (NotFoundError), 403, a redirect loop', async () => {
  const host = await listen((req, res) => {
    if (req.url === '/loop') {
      res.writeHead(302, { Location: '/loop' });
    } else {
      res.writeHead(req.url === '/missing' ? 404 : 403);
    }
    res.end();
  });
  try {
    await assert.rejects(install.download(`${host.url}/missing`, fast), install.NotFoundError);
    assert.equal(host.seen['/missing'], 1);
    await assert.rejects(install.download(`${host.url}/forbidden`, fast), /\/forbidden: HTTP 403/);
    assert.equal(host.seen['/forbidden'], 1);
    await assert.rejects(install.download(`${host.url}/loop`, { ...fast, redirects: 3 }), /too many redirects/);
    assert.equal(host.seen['/loop'], 4);
  } finally {
    await host.close();
  }
});

test('a Content-Length over the cap is refused before the body is read', async () => {
  let hungUp;
  const closed = new Promise((r) => (hungUp = r));
  const host = await listen((req, res) => {
    // Headers only: a client that waits for the body waits for its idle timeout.
    res.writeHead(200, { 'Content-Length': String(1 << 30) });
    res.flushHeaders();
    res.on('close', hungUp);
  });
  try {
    await assert.rejects(
      install.download(`${host.url}/huge`, { ...fast, idleMs: 5000, maxBytes: 1024 }),
      /\/huge: Content-Length 1073741824 is over the 1024-byte cap/,
    );
    await closed; // the client hung up
    assert.equal(host.seen['/huge'], 1);
  } finally {
    await host.close();
  }
});

test('a body without Content-Length that passes the cap is cut off', async () => {
  let sent = 0;
  const host = await listen((req, res) => {
    res.writeHead(200); // chunked
    const chunk = Buffer.alloc(16 * 1024, 'x');
    const t = setInterval(() => {
      res.write(chunk);
      sent += chunk.length;
      if (sent >= 4 << 20) {
        clearInterval(t);
        res.end();
      }
    }, 1);
    res.on('close', () => clearInterval(t));
  });
  try {
    await assert.rejects(install.download(`${host.url}/endless`, { ...fast, maxBytes: 64 * 1024 }), /\/endless: the body passes the 65536-byte cap/);
    assert.ok(sent < 4 << 20, 'the whole body was read');
    assert.equal(host.seen['/endless'], 1);
  } finally {
    await host.close();
  }
});

test('a checksum mismatch downloads each file once and is an IntegrityError', async () => {
  const p = install.platform();
  const { asset, checksums } = install.assetNames('9.9.9', p);
  const base = '/tiercache/tiercache/releases/download/v9.9.9';
  const archive = Buffer.from('not the release');
  const wrong = crypto.createHash('sha256').update('something else').digest('hex');
  const host = await listen((req, res) => {
    if (req.url === `${base}/${checksums}`) {
      res.writeHead(200);
      res.end(`${wrong}  ${asset}\n`);
    } else if (req.url === `${base}/${asset}`) {
      res.writeHead(302, { Location: `/storage/${asset}` });
      res.end();
    } else if (req.url === `/storage/${asset}`) {
      res.writeHead(200);
      res.end(archive);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  try {
    const env = {
      GITHUB_SERVER_URL: host.url,
      GITHUB_ACTION_REPOSITORY: 'tiercache/tiercache',
      GITHUB_ACTION_REF: 'v9.9.9',
      RUNNER_TOOL_CACHE: h.tmpDir(),
    };
    await assert.rejects(install.install({ env, log: () => {} }), (err) => {
      assert.ok(err instanceof install.IntegrityError, err.stack);
      assert.match(err.message, /checksum mismatch/);
      return true;
    });
    assert.deepEqual(host.seen, { [`${base}/${checksums}`]: 1, [`${base}/${asset}`]: 1, [`/storage/${asset}`]: 1 });
  } finally {
    await host.close();
  }
});
