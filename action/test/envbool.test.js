'use strict';
// The Action reads the CLI's variables as the CLI does.

const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');

const h = require('./helpers');

// TIERCACHE_READ_ONLY=t is read-only for the CLI (strconv.ParseBool):
// the post step skips the save instead of running a push the CLI would
// refuse (exit 1), failing the job.
test('TIERCACHE_READ_ONLY=t skips the save as the CLI reads it', async () => {
  const m = new h.Machine();
  const opts = { inputs: { key: 'ro-t', path: 'dir' }, extra: { TIERCACHE_READ_ONLY: 't' } };
  const main = await h.mainStep(m, opts);
  assert.equal(main.code, 0, main.log);
  h.writeTree(path.join(m.workspace, 'dir'), 'rot');
  const post = await h.postStep(m, main, opts);
  assert.equal(post.code, 0, post.log);
  assert.match(post.log, /Not saving "ro-t": read-only is set/);
});
