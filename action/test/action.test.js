'use strict';
// The action's main and post steps (and the split restore and save
// actions), run as the runner runs them, against a real MinIO server and
// the real CLI.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test, after } = require('node:test');

const h = require('./helpers');

// One MinIO server for this file, started by the first test that needs it.
let server;
async function minio(t) {
  const bin = h.requireMinio(t);
  if (!bin) return null;
  if (!server) server = h.startMinio(bin);
  return server;
}
after(async () => {
  if (server) await (await server).stop();
});

function onMinio(s, prefix, inputs = {}) {
  return { inputs: { ...h.remoteInputs(s, prefix), ...inputs }, extra: h.remoteEnv(s) };
}

test('a miss, then the post step pushes, then another machine hits: byte-identical, and the post step skips the exact hit', async (t) => {
  const s = await minio(t);
  if (!s) return;
  const opts = onMinio(s, 'roundtrip', { key: 'deps-1', path: '~/deps' });

  const m1 = new h.Machine();
  const main1 = await h.mainStep(m1, opts);
  assert.equal(main1.code, 0, main1.log);
  assert.equal(main1.outputs['cache-hit'], 'false');
  assert.equal(main1.outputs['cache-matched-key'], '');
  assert.equal(main1.outputs['cache-primary-key'], 'deps-1');
  assert.equal(main1.state['exact-hit'], 'false');
  assert.deepEqual(JSON.parse(main1.state.paths), [path.join(m1.home, 'deps')], '~ is the home directory');
  const files = h.writeTree(path.join(m1.home, 'deps'), 'one');
  const post1 = await h.postStep(m1, main1, opts);
  assert.equal(post1.code, 0, post1.log);
  assert.match(post1.log, /pushed "deps-1"/);

  const m2 = new h.Machine();
  const main2 = await h.mainStep(m2, opts);
  assert.equal(main2.code, 0, main2.log);
  assert.equal(main2.outputs['cache-hit'], 'true');
  assert.equal(main2.outputs['cache-matched-key'], 'deps-1');
  assert.equal(main2.state['exact-hit'], 'true');
  h.assertSameTree(path.join(m2.home, 'deps'), files);

  // The job changes the tree; the post step must not save it over the
  // entry its key was hit from.
  h.writeTree(path.join(m2.home, 'deps'), 'two');
  const post2 = await h.postStep(m2, main2, opts);
  assert.equal(post2.code, 0, post2.log);
  assert.match(post2.log, /Cache hit on the primary key "deps-1": not saving/);
  assert.doesNotMatch(post2.log, /\[command\]/, 'the post step ran tiercache');

  const m3 = new h.Machine();
  const main3 = await h.mainStep(m3, opts);
  assert.equal(main3.code, 0, main3.log);
  h.assertSameTree(path.join(m3.home, 'deps'), files);
});

test('restore-keys: a prefix match restores with cache-hit=false and cache-matched-key set, and the post step saves the key', async (t) => {
  const s = await minio(t);
  if (!s) return;
  const opts = onMinio(s, 'fallback', { key: 'fb-2', path: 'dir', 'restore-keys': '\n  nomatch-\nfb-\n' });
  const m0 = new h.Machine();
  const files = h.writeTree(path.join(m0.workspace, 'dir'), 'old');
  const pushed = h.cli(m0, ['push', `--remote=${opts.inputs.remote}`, `--endpoint=${s.endpoint}`, 'fb-1', path.join(m0.workspace, 'dir')], opts.extra);
  assert.equal(pushed.code, 0, pushed.stderr);

  const m = new h.Machine();
  const main = await h.mainStep(m, opts);
  assert.equal(main.code, 0, main.log);
  assert.equal(main.outputs['cache-hit'], 'false');
  assert.equal(main.outputs['cache-matched-key'], 'fb-1');
  assert.equal(main.outputs['cache-primary-key'], 'fb-2');
  assert.equal(main.state['exact-hit'], 'false');
  h.assertSameTree(path.join(m.workspace, 'dir'), files);
  const post = await h.postStep(m, main, opts);
  assert.equal(post.code, 0, post.log);
  // The restore keys choose the push's base, as they chose the entry.
  assert.match(post.log, /push .*--restore-key=fb-2 --restore-key=nomatch- --restore-key=fb- /, post.log);
  const look = h.cli(m0, ['pull', `--remote=${opts.inputs.remote}`, `--endpoint=${s.endpoint}`, '--lookup-only', '--fail-on-miss', 'fb-2', path.join(m0.root, 'x')], opts.extra);
  assert.equal(look.code, 0, `fb-2 was not saved: ${look.stderr}`);
});

test('fail-on-cache-miss fails the step', async (t) => {
  const s = await minio(t);
  if (!s) return;
  const m = new h.Machine();
  const main = await h.mainStep(m, onMinio(s, 'failmiss', { key: 'nothing', path: 'dir', 'restore-keys': 'nothing-', 'fail-on-cache-miss': 'true' }));
  assert.notEqual(main.code, 0, main.log);
  assert.match(main.stdout, /::error title=tiercache::no cache entry for key "nothing" or its restore keys, and fail-on-cache-miss is set/);
  assert.equal(main.outputs['cache-hit'], 'false');

  const m2 = new h.Machine();
  h.writeTree(path.join(m2.workspace, 'dir'), 'x');
  const pushed = h.cli(m2, ['push', `--remote=s3://${s.bucket}/failmiss`, `--endpoint=${s.endpoint}`, 'there', path.join(m2.workspace, 'dir')], h.remoteEnv(s));
  assert.equal(pushed.code, 0, pushed.stderr);
  const hit = await h.mainStep(new h.Machine(), onMinio(s, 'failmiss', { key: 'there', path: 'dir', 'fail-on-cache-miss': 'true' }));
  assert.equal(hit.code, 0, hit.log);
});

test('lookup-only sets the outputs and restores nothing', async (t) => {
  const s = await minio(t);
  if (!s) return;
  const m0 = new h.Machine();
  h.writeTree(path.join(m0.workspace, 'dir'), 'lookup');
  const pushed = h.cli(m0, ['push', `--remote=s3://${s.bucket}/lookup`, `--endpoint=${s.endpoint}`, 'lo-1', path.join(m0.workspace, 'dir')], h.remoteEnv(s));
  assert.equal(pushed.code, 0, pushed.stderr);

  const m = new h.Machine();
  const hit = await h.mainStep(m, onMinio(s, 'lookup', { key: 'lo-1', path: 'dir', 'lookup-only': 'true' }));
  assert.equal(hit.code, 0, hit.log);
  assert.equal(hit.outputs['cache-hit'], 'true');
  assert.equal(hit.outputs['cache-matched-key'], 'lo-1');
  assert.equal(fs.existsSync(path.join(m.workspace, 'dir')), false, 'lookup-only created the path');

  const miss = await h.mainStep(m, onMinio(s, 'lookup', { key: 'lo-2', path: 'dir', 'lookup-only': 'true' }));
  assert.equal(miss.code, 0, miss.log);
  assert.equal(miss.outputs['cache-hit'], 'false');
  assert.equal(fs.existsSync(path.join(m.workspace, 'dir')), false, 'lookup-only created the path');
});

test('no-local defaults to true on GitHub-hosted runners and false on self-hosted ones', async (t) => {
  const s = await minio(t);
  if (!s) return;
  const cases = [
    { runner: 'github-hosted', input: '', local: false },
    { runner: 'self-hosted', input: '', local: true },
    { runner: 'github-hosted', input: 'false', local: true },
    { runner: 'self-hosted', input: 'true', local: false },
  ];
  for (const [i, c] of cases.entries()) {
    const key = `nl-${i}`;
    const opts = onMinio(s, 'nolocal', { key, path: 'dir', 'no-local': c.input });
    opts.extra.RUNNER_ENVIRONMENT = c.runner;
    const m = new h.Machine();
    const main = await h.mainStep(m, opts);
    assert.equal(main.code, 0, main.log);
    assert.match(main.log, c.local ? /--no-local=false/ : /--no-local=true/);
    h.writeTree(path.join(m.workspace, 'dir'), key);
    const post = await h.postStep(m, main, opts);
    assert.equal(post.code, 0, post.log);
    // Checked before ls, which makes the directory.
    if (!c.local) assert.equal(fs.existsSync(m.cacheDir), false, 'no-local touched the local tier');
    const ls = h.cli(m, ['ls', '--tier', 'local', '--json']);
    const local = ls.code === 0 && JSON.parse(ls.stdout || '[]').some((e) => e.key === key);
    assert.equal(local, c.local, `${c.runner}, no-local "${c.input}": in the local tier: ${local}; ${ls.stderr}`);
    const look = h.cli(new h.Machine(), ['pull', `--remote=${opts.inputs.remote}`, `--endpoint=${s.endpoint}`, '--lookup-only', '--fail-on-miss', key, 'x'], opts.extra);
    assert.equal(look.code, 0, `${key} not in the remote: ${look.stderr}`);
  }
});

test('the split actions: save/ pushes in its step, restore/ restores and records no state', async (t) => {
  const s = await minio(t);
  if (!s) return;
  const m1 = new h.Machine();
  const files = h.writeTree(path.join(m1.workspace, 'out'), 'split');
  const save = await h.step(m1, 'save.js', { actionYml: path.join(h.REPO, 'save', 'action.yml'), ...onMinio(s, 'split', { key: 'sp-1', path: 'out' }) });
  assert.equal(save.code, 0, save.log);
  assert.match(save.log, /pushed "sp-1"/);

  const m2 = new h.Machine();
  const restore = await h.step(m2, 'restore.js', {
    actionYml: path.join(h.REPO, 'restore', 'action.yml'),
    ...onMinio(s, 'split', { key: 'sp-1', path: 'out' }),
  });
  assert.equal(restore.code, 0, restore.log);
  assert.equal(restore.outputs['cache-hit'], 'true');
  assert.equal(restore.outputs['cache-primary-key'], 'sp-1');
  assert.deepEqual(restore.state, {});
  h.assertSameTree(path.join(m2.workspace, 'out'), files);
});

test('several path lines and a ! line: every path restored, the excluded one left out', async (t) => {
  const s = await minio(t);
  if (!s) return;
  const opts = onMinio(s, 'multi', { key: 'mp-1', path: '~/one\ntwo\n!two/skip\n' });
  const m1 = new h.Machine();
  const main1 = await h.mainStep(m1, opts);
  assert.equal(main1.code, 0, main1.log);
  const one = h.writeTree(path.join(m1.home, 'one'), 'one');
  const two = h.writeTree(path.join(m1.workspace, 'two'), 'two');
  h.writeTree(path.join(m1.workspace, 'two', 'skip'), 'skipped');
  const post1 = await h.postStep(m1, main1, opts);
  assert.equal(post1.code, 0, post1.log);

  const m2 = new h.Machine();
  const main2 = await h.mainStep(m2, opts);
  assert.equal(main2.code, 0, main2.log);
  assert.equal(main2.outputs['cache-hit'], 'true');
  h.assertSameTree(path.join(m2.home, 'one'), one);
  h.assertSameTree(path.join(m2.workspace, 'two'), two);
});

test('a dead remote is a warning and a miss, the push a warning; with strict both fail', async () => {
  const port = await h.freePort(); // nothing listens on it
  const inputs = { key: 'dead-1', path: 'dir', remote: 's3://cache/dead', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1' };
  const extra = { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_MAX_ATTEMPTS: '1' };
  const m = new h.Machine();
  const main = await h.mainStep(m, { inputs, extra });
  assert.equal(main.code, 0, main.log);
  assert.match(main.log, /::warning title=tiercache::/);
  assert.equal(main.outputs['cache-hit'], 'false');
  h.writeTree(path.join(m.workspace, 'dir'), 'dead');
  const post = await h.postStep(m, main, { inputs, extra });
  assert.equal(post.code, 0, post.log);
  assert.match(post.log, /::warning title=tiercache::push "dead-1": nothing was saved remotely/);

  const strict = { ...inputs, strict: 'true' };
  const m2 = new h.Machine();
  const main2 = await h.mainStep(m2, { inputs: strict, extra });
  assert.notEqual(main2.code, 0, main2.log);
  assert.match(main2.stdout, /::error title=tiercache::tiercache pull failed/);
  fs.mkdirSync(path.join(m2.workspace, 'dir'));
  const post2 = await h.postStep(m2, { ...main2, state: { ...main2.state, 'exact-hit': 'false' } }, { inputs: strict, extra });
  assert.notEqual(post2.code, 0, post2.log);
  assert.match(post2.stdout, /::error title=tiercache::tiercache push failed/);
});

// remoteHas reports whether key is in the remote under prefix.
function remoteHas(s, prefix, key) {
  const ls = h.cli(new h.Machine(), ['ls', `--remote=s3://${s.bucket}/${prefix}`, `--endpoint=${s.endpoint}`, '--tier', 'remote', '--json'], h.remoteEnv(s));
  assert.equal(ls.code, 0, `ls of ${prefix}: ${ls.stderr}`);
  return JSON.parse(ls.stdout || '[]').some((e) => e.key === key);
}

test('a path missing at save time: the post step saves the others, warning; none there: nothing saved', async (t) => {
  const s = await minio(t);
  if (!s) return;
  // As for Go: the module cache is made, the build cache is not (the
  // job failed before building); a ! line naming nothing does not count.
  const opts = onMinio(s, 'missing', { key: 'miss-1', path: '~/go/pkg/mod\n~/.cache/go-build\n!~/.cache/go-build/trim.txt\n!absent/**' });
  const m = new h.Machine();
  const main = await h.mainStep(m, opts);
  assert.equal(main.code, 0, main.log);

  // Both missing: both named, in one warning, and nothing run.
  const post0 = await h.postStep(m, main, opts);
  assert.equal(post0.code, 0, post0.log);
  assert.match(post0.stdout, /::warning title=tiercache::Path Validation Error: the paths ".*mod", ".*go-build" do not exist, so nothing was saved/);
  assert.doesNotMatch(post0.log, /\[command\]/, 'the post step ran tiercache');
  assert.equal(remoteHas(s, 'missing', 'miss-1'), false, 'miss-1 was pushed');

  // One missing: the other is saved, the missing one named in a warning.
  const mod = h.writeTree(path.join(m.home, 'go', 'pkg', 'mod'), 'mod');
  const post = await h.postStep(m, main, opts);
  assert.equal(post.code, 0, post.log);
  assert.ok(post.log.includes(`::warning title=tiercache::push "miss-1": not saved, as it does not exist: ~/.cache/go-build`), post.log);
  assert.doesNotMatch(post.log, /::error/);
  assert.equal(remoteHas(s, 'missing', 'miss-1'), true, 'miss-1 was not pushed');

  // Restored on a fresh machine: the module cache; the build cache is
  // left as it is (not created), and the key is a hit.
  const m2 = new h.Machine();
  const main2 = await h.mainStep(m2, opts);
  assert.equal(main2.code, 0, main2.log);
  assert.equal(main2.outputs['cache-hit'], 'true', main2.log);
  h.assertSameTree(path.join(m2.home, 'go', 'pkg', 'mod'), mod);
  assert.equal(fs.existsSync(path.join(m2.home, '.cache', 'go-build')), false, 'the build cache was created');
});

test('a path missing at save time, save/: warns, pushes nothing and succeeds; with strict (input or TIERCACHE_STRICT) it fails', async (t) => {
  const s = await minio(t);
  if (!s) return;
  const saveYml = path.join(h.REPO, 'save', 'action.yml');
  const m = new h.Machine();
  h.writeTree(path.join(m.workspace, 'here'), 'here');
  const opts = onMinio(s, 'missing-save', { key: 'ms-1', path: 'here\ngone' });
  const save = await h.step(m, 'save.js', { actionYml: saveYml, ...opts });
  assert.equal(save.code, 0, save.log);
  assert.match(save.log, /::warning title=tiercache::push "ms-1": not saved, as it does not exist: gone/);
  assert.equal(remoteHas(s, 'missing-save', 'ms-1'), true, 'ms-1 was not pushed');
  const none = await h.step(m, 'save.js', { actionYml: saveYml, ...onMinio(s, 'missing-save', { key: 'ms-2', path: 'gone' }) });
  assert.equal(none.code, 0, none.log);
  assert.match(none.stdout, /::warning title=tiercache::Path Validation Error: the path "gone" does not exist, so nothing was saved for key "ms-2"/);
  assert.doesNotMatch(none.log, /\[command\]/, 'the save step ran tiercache');

  // strict: the push runs and fails on the path, as it always did.
  const strict = await h.step(m, 'save.js', { actionYml: saveYml, ...onMinio(s, 'missing-save', { key: 'ms-3', path: 'here\ngone', strict: 'true' }) });
  assert.notEqual(strict.code, 0, strict.log);
  assert.match(strict.log, /path gone does not exist/);
  assert.match(strict.stdout, /::error title=tiercache::tiercache push failed/);
  assert.doesNotMatch(strict.stdout, /Path Validation Error/);
  const envStrict = onMinio(s, 'missing-save', { key: 'ms-3', path: 'here\ngone' });
  envStrict.extra.TIERCACHE_STRICT = 'true';
  const viaEnv = await h.step(m, 'save.js', { actionYml: saveYml, ...envStrict });
  assert.notEqual(viaEnv.code, 0, viaEnv.log);
  assert.match(viaEnv.stdout, /::error title=tiercache::tiercache push failed/);
  assert.equal(remoteHas(s, 'missing-save', 'ms-3'), false, 'ms-3 was pushed');

  // read-only still wins: no warning about the path, nothing to save anyway.
  const ro = await h.step(m, 'save.js', { actionYml: saveYml, ...onMinio(s, 'missing-save', { key: 'ms-1', path: 'here\ngone', 'read-only': 'true' }) });
  assert.equal(ro.code, 0, ro.log);
  assert.match(ro.log, /Not saving "ms-1": read-only is set/);
  assert.doesNotMatch(ro.log, /Path Validation Error/);
});

test('a path and a key starting with "-" are not read as flags', async () => {
  const m = new h.Machine();
  const opts = { inputs: { key: '--key-like', path: '-dir' } };
  const main1 = await h.mainStep(m, opts);
  assert.equal(main1.code, 0, main1.log);
  assert.equal(main1.outputs['cache-primary-key'], '--key-like');
  const files = h.writeTree(path.join(m.workspace, '-dir'), 'dash');
  const post = await h.postStep(m, main1, opts);
  assert.equal(post.code, 0, post.log);
  fs.rmSync(path.join(m.workspace, '-dir'), { recursive: true });
  const main2 = await h.mainStep(m, opts);
  assert.equal(main2.code, 0, main2.log);
  assert.equal(main2.outputs['cache-hit'], 'true');
  h.assertSameTree(path.join(m.workspace, '-dir'), files);
});

test('read-only skips the save', async () => {
  const m = new h.Machine();
  const opts = { inputs: { key: 'ro-1', path: 'dir', 'read-only': 'true' } };
  const main = await h.mainStep(m, opts);
  assert.equal(main.code, 0, main.log);
  h.writeTree(path.join(m.workspace, 'dir'), 'ro');
  const post = await h.postStep(m, main, opts);
  assert.equal(post.code, 0, post.log);
  assert.match(post.log, /Not saving "ro-1": read-only is set/);
  const again = await h.mainStep(m, { inputs: { key: 'ro-1', path: 'other' } });
  assert.equal(again.outputs['cache-hit'], 'false', 'the read-only job saved');
});

test('save-always exports TIERCACHE_SAVE_ALWAYS, which action.yml post-if reads', async () => {
  const yml = fs.readFileSync(path.join(h.REPO, 'action.yml'), 'utf8');
  assert.match(yml, /^ {2}post-if: "success\(\) \|\| env\.TIERCACHE_SAVE_ALWAYS == 'true'"$/m);
  const m = new h.Machine();
  const on = await h.mainStep(m, { inputs: { key: 'sa-1', path: 'dir', 'save-always': 'true' } });
  assert.equal(on.code, 0, on.log);
  assert.equal(on.envFile.TIERCACHE_SAVE_ALWAYS, 'true');
  const off = await h.mainStep(m, { inputs: { key: 'sa-1', path: 'dir' } });
  assert.equal(off.code, 0, off.log);
  assert.equal(off.envFile.TIERCACHE_SAVE_ALWAYS, undefined);
});

test('a missing key or path input fails the step, naming it', async () => {
  const m = new h.Machine();
  const noKey = await h.mainStep(m, { inputs: { path: 'dir' } });
  assert.notEqual(noKey.code, 0);
  assert.match(noKey.stdout, /::error title=tiercache::input "key" is required/);
  const noPath = await h.mainStep(m, { inputs: { key: 'k', path: '!only-an-exclude' } });
  assert.notEqual(noPath.code, 0);
  assert.match(noPath.stdout, /input "path" needs at least one path/);
});
