'use strict';
// How the action compares keys, as actions/cache does. Local tier only;
// no remote is needed.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const h = require('./helpers');

const restoreYml = path.join(h.REPO, 'restore', 'action.yml');

test('a restore key\'s match that differs from key only in case is a hit, as in actions/cache: cache-hit=true and no save', async () => {
  const m = new h.Machine();
  const files = h.writeTree(path.join(m.workspace, 'dir'), 'lower');
  const pushed = h.cli(m, ['push', 'linux-deps-1', path.join(m.workspace, 'dir')]);
  assert.equal(pushed.code, 0, pushed.stderr);
  fs.rmSync(path.join(m.workspace, 'dir'), { recursive: true });

  // Keys are stored as given, so "Linux-deps-1" itself misses; the
  // restore key finds "linux-deps-1", which actions/cache takes for the
  // same key (it compares them ignoring case, not accents).
  const inputs = { key: 'Linux-deps-1', path: 'dir', 'restore-keys': 'linux-deps-' };
  const main = await h.mainStep(m, { inputs });
  assert.equal(main.code, 0, main.log);
  assert.equal(main.outputs['cache-hit'], 'true', main.log);
  assert.equal(main.outputs['cache-matched-key'], 'linux-deps-1');
  assert.equal(main.outputs['cache-primary-key'], 'Linux-deps-1');
  assert.equal(main.state['exact-hit'], 'true');
  h.assertSameTree(path.join(m.workspace, 'dir'), files);
  const post = await h.postStep(m, main, { inputs });
  assert.equal(post.code, 0, post.log);
  assert.match(post.log, /Cache hit on the primary key "Linux-deps-1": not saving/);
  assert.doesNotMatch(post.log, /\[command\]/, 'the post step ran tiercache');

  const restore = await h.step(m, 'restore.js', { actionYml: restoreYml, inputs });
  assert.equal(restore.code, 0, restore.log);
  assert.equal(restore.outputs['cache-hit'], 'true', restore.log);
  assert.equal(restore.outputs['cache-matched-key'], 'linux-deps-1');

  // An accent is a difference, as in actions/cache: a restore key's
  // match, cache-hit=false, and the post step saves under key.
  const pushedAccent = h.cli(m, ['push', 'dépôt-1', path.join(m.workspace, 'dir')]);
  assert.equal(pushedAccent.code, 0, pushedAccent.stderr);
  const accent = { key: 'depot-1', path: 'dir', 'restore-keys': 'dépôt-' };
  const main2 = await h.mainStep(m, { inputs: accent });
  assert.equal(main2.code, 0, main2.log);
  assert.equal(main2.outputs['cache-hit'], 'false', main2.log);
  assert.equal(main2.outputs['cache-matched-key'], 'dépôt-1');
  assert.equal(main2.state['exact-hit'], 'false');
  const post2 = await h.postStep(m, main2, { inputs: accent });
  assert.equal(post2.code, 0, post2.log);
  assert.match(post2.log, /pushed "depot-1"/);
});

test('key is also a prefix, as in actions/cache: without an exact match the newest entry whose key starts with key is restored, not a hit', async () => {
  const m = new h.Machine();
  const files = h.writeTree(path.join(m.workspace, 'dir'), 'longer');
  const pushed = h.cli(m, ['push', 'npm-abc-linux', path.join(m.workspace, 'dir')]);
  assert.equal(pushed.code, 0, pushed.stderr);
  fs.rmSync(path.join(m.workspace, 'dir'), { recursive: true });

  const inputs = { key: 'npm-abc', path: 'dir', 'restore-keys': 'npm-' };
  const main = await h.mainStep(m, { inputs });
  assert.equal(main.code, 0, main.log);
  assert.equal(main.outputs['cache-hit'], 'false', main.log);
  assert.equal(main.outputs['cache-matched-key'], 'npm-abc-linux');
  h.assertSameTree(path.join(m.workspace, 'dir'), files);
  // key's own prefix comes before the restore keys: a newer entry that
  // only a restore key matches is not taken.
  h.writeTree(path.join(m.workspace, 'other'), 'newer');
  const pushed2 = h.cli(m, ['push', 'npm-zzz', path.join(m.workspace, 'other')]);
  assert.equal(pushed2.code, 0, pushed2.stderr);
  fs.rmSync(path.join(m.workspace, 'dir'), { recursive: true });
  const again = await h.mainStep(m, { inputs });
  assert.equal(again.code, 0, again.log);
  assert.equal(again.outputs['cache-matched-key'], 'npm-abc-linux', again.log);
  h.assertSameTree(path.join(m.workspace, 'dir'), files);
});
