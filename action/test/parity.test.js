'use strict';
// Where the action must behave as actions/cache does for a workflow that
// moves from it: what a miss leaves on disk, glob lines in path, an empty
// key given to the save action, the binary's download failing, and
// actions/cache's inputs that have no meaning here. Local tier only; no
// remote is needed.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const h = require('./helpers');

const restoreYml = path.join(h.REPO, 'restore', 'action.yml');
const saveYml = path.join(h.REPO, 'save', 'action.yml');

test('a miss creates nothing at the paths, as in actions/cache: a file path is not made a directory', async () => {
  const m = new h.Machine();
  fs.mkdirSync(path.join(m.workspace, 'kept'));
  const main = await h.mainStep(m, { inputs: { key: 'file-1', path: '.eslintcache' } });
  assert.equal(main.code, 0, main.log);
  assert.equal(main.outputs['cache-hit'], 'false');
  assert.equal(fs.existsSync(path.join(m.workspace, '.eslintcache')), false, 'the miss created .eslintcache');
  const restore = await h.step(m, 'restore.js', { actionYml: restoreYml, inputs: { key: 'file-1', path: 'node_modules' } });
  assert.equal(restore.code, 0, restore.log);
  assert.equal(fs.existsSync(path.join(m.workspace, 'node_modules')), false, 'the miss created node_modules');
  // A directory that was there before the miss stays.
  const kept = await h.mainStep(m, { inputs: { key: 'file-1', path: 'kept' } });
  assert.equal(kept.code, 0, kept.log);
  assert.ok(fs.statSync(path.join(m.workspace, 'kept')).isDirectory(), 'the miss removed a directory it did not make');

  // The job writes the file, the post step saves it, and the next job
  // gets the file back.
  fs.writeFileSync(path.join(m.workspace, '.eslintcache'), '{"v":1}');
  const post = await h.postStep(m, main, { inputs: { key: 'file-1', path: '.eslintcache' } });
  assert.equal(post.code, 0, post.log);
  fs.rmSync(path.join(m.workspace, '.eslintcache'));
  const hit = await h.mainStep(m, { inputs: { key: 'file-1', path: '.eslintcache' } });
  assert.equal(hit.outputs['cache-hit'], 'true', hit.log);
  assert.equal(fs.readFileSync(path.join(m.workspace, '.eslintcache'), 'utf8'), '{"v":1}');
});

test('glob lines: a monorepo\'s node_modules are saved where they match, and restored there', async () => {
  const m = new h.Machine();
  const inputs = { key: 'npm-1', path: '**/node_modules\n!**/node_modules/.cache' };
  const miss = await h.mainStep(m, { inputs });
  assert.equal(miss.code, 0, miss.log);
  assert.equal(miss.outputs['cache-hit'], 'false');
  assert.deepEqual(fs.readdirSync(m.workspace), [], 'the miss created something');
  // The job installs two packages' node_modules, each with a .cache.
  const mods = ['node_modules', 'packages/a/node_modules', 'packages/b/node_modules'];
  for (const d of mods) {
    h.writeTree(path.join(m.workspace, d), d);
    fs.mkdirSync(path.join(m.workspace, d, '.cache'));
    fs.writeFileSync(path.join(m.workspace, d, '.cache', 'tmp'), 'x');
  }
  fs.mkdirSync(path.join(m.workspace, 'packages', 'a', 'src'));
  const post = await h.postStep(m, miss, { inputs });
  assert.equal(post.code, 0, post.log);
  assert.match(post.log, /--match=\*\*\/node_modules/);
  // The next job's checkout has none of them.
  fs.rmSync(path.join(m.workspace, 'node_modules'), { recursive: true });
  fs.rmSync(path.join(m.workspace, 'packages'), { recursive: true });
  const hit = await h.mainStep(m, { inputs });
  assert.equal(hit.code, 0, hit.log);
  assert.equal(hit.outputs['cache-hit'], 'true', hit.log);
  for (const d of mods) {
    const files = h.readTree(path.join(m.workspace, d));
    assert.equal(files['a.txt'].toString(), `hello ${d}\n`, d);
    assert.equal(fs.existsSync(path.join(m.workspace, d, '.cache')), false, `${d}/.cache was saved`);
  }
  assert.equal(fs.existsSync(path.join(m.workspace, 'packages', 'a', 'src')), false, 'packages/a/src was saved');
  // Patterns that match nothing at save time: a warning, nothing saved.
  const none = { key: 'none-1', path: 'nothing/**/here' };
  const main2 = await h.mainStep(m, { inputs: none });
  const post2 = await h.postStep(m, main2, { inputs: none });
  assert.equal(post2.code, 0, post2.log);
  assert.match(post2.stdout, /::warning title=tiercache::tiercache push failed, so nothing was saved for key "none-1"/);
  assert.match(post2.log, /no path below .* matches nothing\/\*\*\/here/);
});

// saveWipeRestore saves the workspace's packages/ with save/, removes
// it, and restores it with restore/, which must hit.
async function saveWipeRestore(m, inputs) {
  const save = await h.step(m, 'save.js', { actionYml: saveYml, inputs });
  assert.equal(save.code, 0, save.log);
  fs.rmSync(path.join(m.workspace, 'packages'), { recursive: true });
  const restore = await h.step(m, 'restore.js', { actionYml: restoreYml, inputs });
  assert.equal(restore.code, 0, restore.log);
  assert.equal(restore.outputs['cache-hit'], 'true', restore.log);
}

test('glob lines through save/ and restore/, the split actions', async () => {
  const m = new h.Machine();
  const inputs = { key: 'split-glob-1', path: 'packages/*/dist' };
  for (const p of ['a', 'b']) h.writeTree(path.join(m.workspace, 'packages', p, 'dist'), p);
  await saveWipeRestore(m, inputs);
  for (const p of ['a', 'b']) {
    assert.equal(h.readTree(path.join(m.workspace, 'packages', p, 'dist'))['a.txt'].toString(), `hello ${p}\n`);
  }
});

test('glob lines: a "!" line written with "./" leaves out what it names, as without it', async () => {
  for (const [key, lines] of [
    ['dot-1', 'packages/*/dist\n!packages/*/dist/sub'],
    ['dot-2', './packages/*/dist\n!./packages/*/dist/sub'],
  ]) {
    const m = new h.Machine();
    const inputs = { key, path: lines };
    for (const p of ['a', 'b']) h.writeTree(path.join(m.workspace, 'packages', p, 'dist'), p);
    await saveWipeRestore(m, inputs);
    for (const p of ['a', 'b']) {
      const dist = path.join(m.workspace, 'packages', p, 'dist');
      assert.equal(fs.readFileSync(path.join(dist, 'a.txt'), 'utf8'), `hello ${p}\n`, `${lines}: packages/${p}/dist`);
      assert.equal(fs.existsSync(path.join(dist, 'sub')), false, `${lines}: packages/${p}/dist/sub was saved`);
    }
  }
});

test('glob lines: a "!" line naming a whole match leaves it out, as actions/cache drops it', async () => {
  const m = new h.Machine();
  const inputs = { key: 'neg-1', path: '**/node_modules\n!packages/legacy/node_modules' };
  for (const p of ['a', 'legacy']) h.writeTree(path.join(m.workspace, 'packages', p, 'node_modules'), p);
  await saveWipeRestore(m, inputs);
  assert.equal(fs.readFileSync(path.join(m.workspace, 'packages', 'a', 'node_modules', 'a.txt'), 'utf8'), 'hello a\n');
  assert.equal(fs.existsSync(path.join(m.workspace, 'packages', 'legacy')), false, 'packages/legacy/node_modules was saved');
});

test('a glob line with a path outside the workspace fails the step naming it, and creates nothing', async () => {
  for (const other of ['~/.npm', '/abs/dir', '../up']) {
    const m = new h.Machine();
    const main = await h.mainStep(m, { inputs: { key: 'glob-1', path: `${other}\n**/node_modules` } });
    assert.notEqual(main.code, 0, main.log);
    assert.ok(main.stdout.includes(`::error title=tiercache::input "path": "${other}" is not below the working directory`), main.log);
    assert.doesNotMatch(main.log, /\[command\]/, 'tiercache ran');
    assert.deepEqual(fs.readdirSync(m.workspace), []);
    assert.equal(main.state.key, undefined, 'the post step would save');
    const save = await h.step(m, 'save.js', { actionYml: saveYml, inputs: { key: 'glob-1', path: `**/node_modules\n${other}` } });
    assert.notEqual(save.code, 0, save.log);
    assert.match(save.stdout, /is not below the working directory/);
  }
  // An exclude line alone is a pattern, as before: the paths stay names.
  const m = new h.Machine();
  const ok = await h.mainStep(m, { inputs: { key: 'glob-2', path: 'dir\n!**/*.log' } });
  assert.equal(ok.code, 0, ok.log);
  assert.equal(ok.state.match, 'false');
});

test('save/ with an empty key warns "Key is not specified" and succeeds, as actions/cache/save does; with strict it fails', async () => {
  const m = new h.Machine();
  h.writeTree(path.join(m.workspace, 'dir'), 'k');
  // As when key is ${{ steps.restore.outputs.cache-primary-key }} of a
  // restore step that did not run.
  const save = await h.step(m, 'save.js', { actionYml: saveYml, inputs: { key: '', path: 'dir' } });
  assert.equal(save.code, 0, save.log);
  assert.match(save.stdout, /::warning title=tiercache::Key is not specified: input "key" is empty, so nothing was saved/);
  assert.doesNotMatch(save.log, /\[command\]/, 'tiercache ran');
  const strict = await h.step(m, 'save.js', { actionYml: saveYml, inputs: { key: '', path: 'dir', strict: 'true' } });
  assert.notEqual(strict.code, 0, strict.log);
  assert.match(strict.stdout, /::error title=tiercache::input "key" is required/);
});

test('the binary cannot be downloaded: a warning and a miss, never a failed step (strict or fail-on-cache-miss: failed)', async () => {
  const host = await h.outageHost();
  try {
    const extra = { TIERCACHE_BIN: undefined, GITHUB_SERVER_URL: host.url, GITHUB_ACTION_REPOSITORY: 'tiercache/tiercache', GITHUB_ACTION_REF: 'v9.9.9' };
    const inputs = { key: 'out-1', path: 'dir' };
    const m = new h.Machine();
    const main = await h.mainStep(m, { inputs, extra });
    assert.equal(main.code, 0, main.log);
    assert.match(main.stdout, /::warning title=tiercache::.*HTTP 503.*the cache is skipped/);
    assert.deepEqual(main.outputs, { 'cache-hit': 'false', 'cache-primary-key': 'out-1', 'cache-matched-key': '' });
    assert.equal(main.state['exact-hit'], 'false');
    h.writeTree(path.join(m.workspace, 'dir'), 'out');
    // The post step does not try the download again, and says so once.
    const before = host.requests;
    const post = await h.postStep(m, main, { inputs, extra });
    assert.equal(post.code, 0, post.log);
    assert.equal(host.requests, before, 'the post step tried to download the binary again');
    assert.doesNotMatch(post.stdout, /::warning/, 'the post step warned a second time');
    assert.match(post.stdout, /::notice title=tiercache::Not saving "out-1": the main step could not get the tiercache binary \(.*HTTP 503.*\)/);
    assert.doesNotMatch(post.log, /\[command\]/);
    const save = await h.step(m, 'save.js', { actionYml: saveYml, inputs, extra });
    assert.equal(save.code, 0, save.log);
    const restore = await h.step(m, 'restore.js', { actionYml: restoreYml, inputs, extra });
    assert.equal(restore.code, 0, restore.log);
    assert.equal(restore.outputs['cache-hit'], 'false');

    const failOnMiss = await h.mainStep(m, { inputs: { ...inputs, 'fail-on-cache-miss': 'true' }, extra });
    assert.notEqual(failOnMiss.code, 0, failOnMiss.log);
    assert.match(failOnMiss.stdout, /::error title=tiercache::no cache entry for key "out-1"/);
    const strict = await h.mainStep(m, { inputs: { ...inputs, strict: 'true' }, extra });
    assert.notEqual(strict.code, 0, strict.log);
    assert.match(strict.stdout, /::error title=tiercache::.*HTTP 503/);
    // With strict set for the post step alone, the same is a failure,
    // still without another download.
    const downloads = host.requests;
    const strictPost = await h.postStep(m, main, { inputs, extra: { ...extra, TIERCACHE_STRICT: 'true' } });
    assert.notEqual(strictPost.code, 0, strictPost.log);
    assert.equal(host.requests, downloads, 'the strict post step tried to download the binary again');
    assert.match(strictPost.stdout, /::error title=tiercache::Not saving "out-1": the main step could not get the tiercache binary/);
  } finally {
    await host.close();
  }
});

test('actions/cache inputs with no meaning here are accepted and change nothing', async () => {
  const main = h.actionInputs(path.join(h.REPO, 'action.yml'));
  const restore = h.actionInputs(restoreYml);
  const save = h.actionInputs(saveYml);
  for (const [name, inputs] of [['action.yml', main], ['save/action.yml', save]]) {
    assert.ok('upload-chunk-size' in inputs && 'enableCrossOsArchive' in inputs, `${name} lacks actions/cache's inputs`);
  }
  assert.ok('enableCrossOsArchive' in restore, 'restore/action.yml lacks enableCrossOsArchive');

  const m = new h.Machine();
  const script = path.join(m.root, 'fake-tiercache');
  const argsFile = path.join(m.root, 'args');
  fs.writeFileSync(script, `#!/bin/sh\nprintf '%s\\n' "$@" >> '${argsFile}'\necho '{"hit":false,"exact":false}'\n`, { mode: 0o755 });
  const extra = { TIERCACHE_BIN: script };
  const plain = { key: 'k', path: 'dir' };
  const compat = { ...plain, enableCrossOsArchive: 'true', 'upload-chunk-size': '33554432' };
  const args = async (inputs) => {
    fs.rmSync(argsFile, { force: true });
    const r = await h.mainStep(m, { inputs, extra });
    assert.equal(r.code, 0, r.log);
    fs.mkdirSync(path.join(m.workspace, 'dir'), { recursive: true });
    const post = await h.postStep(m, r, { inputs, extra });
    assert.equal(post.code, 0, post.log);
    return fs.readFileSync(argsFile, 'utf8');
  };
  assert.equal(await args(compat), await args(plain));
});

test('a save that fails at run time warns and saves nothing, as actions/cache; strict fails the step', async () => {
  const m = new h.Machine();
  const dir = path.join(m.workspace, 'dir');
  h.writeTree(dir, 'fifo');
  // A FIFO cannot be archived: the push fails (exit 1), naming it.
  require('node:child_process').execFileSync('mkfifo', [path.join(dir, 'pipe')]);
  const save = await h.step(m, 'save.js', { actionYml: saveYml, inputs: { key: 'fail-1', path: 'dir' } });
  assert.equal(save.code, 0, save.log);
  assert.match(save.stdout, /::warning title=tiercache::tiercache push failed, so nothing was saved for key "fail-1"/);
  assert.match(save.log, /pipe/);
  const strict = await h.step(m, 'save.js', { actionYml: saveYml, inputs: { key: 'fail-1', path: 'dir', strict: 'true' } });
  assert.notEqual(strict.code, 0, strict.log);
  assert.match(strict.stdout, /::error title=tiercache::tiercache push failed \(exit code 1\)/);
});

test('a miss into a path whose parent is missing creates neither the path nor its parent', async () => {
  const m = new h.Machine();
  const main = await h.mainStep(m, { inputs: { key: 'deep-1', path: 'cache/tool' } });
  assert.equal(main.code, 0, main.log);
  assert.equal(main.outputs['cache-hit'], 'false');
  assert.equal(fs.existsSync(path.join(m.workspace, 'cache', 'tool')), false, 'the miss created cache/tool');
  assert.deepEqual(fs.readdirSync(m.workspace), [], 'the miss left something in the workspace');
});

test('a restore that fails where it runs (an unwritable path) warns and goes on as a miss, as actions/cache does; with strict it fails', async () => {
  const m = new h.Machine();
  h.writeTree(path.join(m.workspace, 'src'), 'ro');
  const pushed = h.cli(m, ['push', 'ro-1', path.join(m.workspace, 'src')]);
  assert.equal(pushed.code, 0, pushed.stderr);
  // A path below a regular file cannot be written, whoever runs this.
  fs.writeFileSync(path.join(m.workspace, 'blocker'), 'x');
  const inputs = { key: 'ro-1', path: 'blocker/dir' };
  const main = await h.mainStep(m, { inputs });
  assert.equal(main.code, 0, main.log);
  assert.match(main.stdout, /::warning title=tiercache::Failed to restore "ro-1": tiercache pull failed \(exit code 1/);
  assert.equal(main.outputs['cache-hit'], 'false');
  assert.equal(main.outputs['cache-matched-key'], '');
  assert.equal(main.state['exact-hit'], 'false');
  assert.equal(fs.readFileSync(path.join(m.workspace, 'blocker'), 'utf8'), 'x');

  const m2 = new h.Machine();
  const p2 = h.cli(m2, ['push', 'ro-1', path.join(m.workspace, 'src')]);
  assert.equal(p2.code, 0, p2.stderr);
  fs.writeFileSync(path.join(m2.workspace, 'blocker'), 'x');
  const failed = await h.mainStep(m2, { inputs: { ...inputs, strict: 'true' } });
  assert.notEqual(failed.code, 0, failed.log);
  assert.match(failed.stdout, /::error title=tiercache::tiercache pull failed \(exit code 1\)/);
});
