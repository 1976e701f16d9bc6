'use strict';
// The input and state plumbing of action/lib.js, and the action.yml files
// agreeing with what the scripts read.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const h = require('./helpers');
const lib = require('../lib');

test('input names follow the runner: INPUT_, upper case, spaces as underscores, hyphens kept', () => {
  assert.equal(lib.inputEnvName('restore-keys'), 'INPUT_RESTORE-KEYS');
  assert.equal(lib.inputEnvName('fail-on-cache-miss'), 'INPUT_FAIL-ON-CACHE-MISS');
  assert.equal(lib.inputEnvName('a b'), 'INPUT_A_B');
  const env = { 'INPUT_RESTORE-KEYS': ' a-\r\n\n  b-  \n', 'INPUT_LOOKUP-ONLY': 'True', 'INPUT_STRICT': 'yes' };
  assert.deepEqual(lib.getMultilineInput('restore-keys', { env }), ['a-', 'b-']);
  assert.equal(lib.getBooleanInput('lookup-only', { env }), true);
  assert.equal(lib.getBooleanInput('read-only', { env }), false);
  assert.throws(() => lib.getBooleanInput('strict', { env }), /input "strict" must be true or false, got "yes"/);
  assert.throws(() => lib.getInput('key', { required: true, env }), /input "key" is required/);
});

test('path lines: ~ expanded, ! lines become excludes', () => {
  assert.deepEqual(lib.parsePaths(['~', '~/go/pkg/mod', 'rel/dir', '/abs', '!*.log', '! tmp/**', 'a~b'], '/home/u'), {
    paths: ['/home/u', path.join('/home/u', 'go/pkg/mod'), 'rel/dir', '/abs', 'a~b'],
    excludes: ['*.log', 'tmp/**'],
    match: false,
  });
  // A negation naming a place below a path is anchored at that path.
  assert.deepEqual(lib.parsePaths(['~/.npm', '~', '!~/.npm/_logs', 'build', '!build/tmp', '!**/*.o'], '/home/u').excludes,
    ['/_logs', '/tmp', '**/*.o']);
  assert.deepEqual(lib.parsePaths(['~/go', 'a', '/home/u/go/', './a', 'b'], '/home/u').paths, ['/home/u/go', 'a', 'b']);
  assert.throws(() => lib.parsePaths(['!'], '/h'), /needs a pattern/);
  assert.throws(() => lib.parsePaths(['!x'], '/h'), /at least one path/);
  assert.deepEqual(lib.pathArgs('-k', ['-p', 'q'], ['x']), ['--exclude=x', '--', '-k', '-p', 'q']);
  // The home directory goes to the CLI as "~", so every runner records
  // the same names; what is outside it, or home itself, as it is.
  if (process.platform !== 'win32') {
    assert.deepEqual(lib.pathArgs('k', ['/home/u/go/pkg/mod', '/home/u', '/home/user2/x', '/opt/x', 'rel'], [], false, '/home/u'),
      ['--', 'k', '~/go/pkg/mod', '/home/u', '/home/user2/x', '/opt/x', 'rel']);
    // Without HOME, which the CLI would need to expand "~": as is.
    assert.deepEqual(lib.pathArgs('k', ['/home/u/x'], [], false, ''), ['--', 'k', '/home/u/x']);
  }
});

test('a path in the home directory goes to the CLI as "~/" on every OS, so a Windows runner records the names a Linux one gives', () => {
  // Windows paths, with the path module a Windows runner uses.
  assert.equal(lib.tildeOf('C:\\Users\\u\\.cargo\\bin', 'C:\\Users\\u', path.win32), '~/.cargo/bin');
  assert.equal(lib.tildeOf('C:\\Users\\u\\p1', 'c:\\users\\U', path.win32), '~/p1');
  for (const p of ['C:\\Users\\u', 'D:\\Users\\u\\x', 'C:\\Users\\u2\\x', 'rel\\x']) {
    assert.equal(lib.tildeOf(p, 'C:\\Users\\u', path.win32), p);
  }
  assert.equal(lib.tildeOf('/home/u/go/pkg/mod', '/home/u', path.posix), '~/go/pkg/mod');
  // A name holding "\\" on Linux is a name, not two.
  assert.equal(lib.tildeOf('/home/u/a\\b', '/home/u', path.posix), '~/a\\b');
});

test('path lines with a glob: every path line a --match pattern, relative to the workspace', () => {
  assert.deepEqual(lib.parsePaths(['**/node_modules', './.eslintcache', 'packages/*/dist/', 'b\\c', '**/node_modules', '!**/node_modules/.cache', '!*.log'], '/h'), {
    paths: ['**/node_modules', '.eslintcache', 'packages/*/dist', 'b/c', '!*.log'],
    excludes: ['/.cache', '*.log'],
    match: true,
  });
  for (const bad of ['~/.npm', '~', '/abs', '../up', 'a/../../b', '.', 'C:/x']) {
    assert.throws(() => lib.parsePaths([bad, '**/x'], '/h'), new RegExp(`"${bad.replace(/[.*?]/g, '\\$&')}" is not below the working directory`));
  }
  assert.throws(() => lib.parsePaths(['**/x', '!'], '/h'), /needs a pattern/);
  assert.deepEqual(lib.pathArgs('-k', ['**/a', 'b'], ['/x'], true), ['--exclude=/x', '--match=**/a', '--match=b', '--', '-k']);
});

test('path lines with a glob: a leading "./" is dropped from "!" lines as from path lines', () => {
  const want = { paths: ['packages/*/dist'], excludes: ['/sub'], match: true };
  assert.deepEqual(lib.parsePaths(['packages/*/dist', '!packages/*/dist/sub'], '/h'), want);
  assert.deepEqual(lib.parsePaths(['./packages/*/dist', '!./packages/*/dist/sub'], '/h'), want);
  assert.deepEqual(lib.parsePaths(['././packages/*/dist', '! ././packages/*/dist/sub'], '/h'), want);
  assert.deepEqual(lib.parsePaths(['packages/*/dist', '!.\\packages\\*\\dist\\sub'], '/h'), want);
  assert.deepEqual(lib.parsePaths(['**/dist', '!./*.log'], '/h').excludes, ['*.log']);
  // A "!" line naming whole matches leaves them out too; one that is not
  // a relative pattern cannot, and is an --exclude alone.
  assert.deepEqual(lib.parsePaths(['**/node_modules', '!packages/legacy/node_modules'], '/h').paths, ['**/node_modules', '!packages/legacy/node_modules']);
  for (const n of ['/tmp/scratch', '~/x', '../x', 'C:/x']) {
    assert.deepEqual(lib.parsePaths(['**/node_modules', `!${n}`], '/h').paths, ['**/node_modules'], n);
  }
  assert.throws(() => lib.parsePaths(['**/x', '!./'], '/h'), /needs a pattern/);
});

test('missing paths: only those that do not exist (a dangling link among them); strict from the input or TIERCACHE_STRICT', () => {
  const dir = h.tmpDir();
  fs.mkdirSync(path.join(dir, 'd'));
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const paths = ['d', 'f', 'gone', 'dangling', 'd/gone'].map((p) => path.join(dir, p));
  try {
    fs.symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
  } catch {
    // Windows without the privilege: then it is simply missing.
  }
  assert.deepEqual(lib.missingPaths(paths), paths.slice(2));
  assert.deepEqual(lib.missingPaths(paths.slice(0, 2)), []);

  assert.equal(lib.strict({}), false);
  assert.equal(lib.strict({ INPUT_STRICT: 'true' }), true);
  assert.equal(lib.strict({ INPUT_STRICT: 'false' }), false);
  for (const v of ['true', 'TRUE', '1', 't']) assert.equal(lib.strict({ INPUT_STRICT: 'false', TIERCACHE_STRICT: v }), true, v);
  for (const v of ['', 'false', '0']) assert.equal(lib.strict({ TIERCACHE_STRICT: v }), false, v);
});

test('no-local: the input, else TIERCACHE_NO_LOCAL, else on for GitHub-hosted runners with a remote', () => {
  const r = (input, env, hasRemote = true) => lib.resolveNoLocal({ input, env, hasRemote });
  assert.equal(r('', { RUNNER_ENVIRONMENT: 'github-hosted' }), true);
  assert.equal(r('', { RUNNER_ENVIRONMENT: 'self-hosted' }), false);
  assert.equal(r('', {}), false);
  assert.equal(r('', { RUNNER_ENVIRONMENT: 'github-hosted' }, false), undefined, 'no-local without a remote is a usage error');
  assert.equal(r('', { RUNNER_ENVIRONMENT: 'github-hosted', TIERCACHE_NO_LOCAL: 'false' }), undefined);
  assert.equal(r('false', { RUNNER_ENVIRONMENT: 'github-hosted' }), false);
  assert.equal(r('TRUE', { RUNNER_ENVIRONMENT: 'self-hosted' }), true);
  const env = { RUNNER_ENVIRONMENT: 'github-hosted', TIERCACHE_REMOTE: 's3://b/p', 'INPUT_NO-LOCAL': '' };
  assert.deepEqual(lib.globalArgs(env), ['--no-local=true']);
  assert.deepEqual(lib.globalArgs({ ...env, TIERCACHE_REMOTE: '' }), []);
});

test('scopes: scope and read-scopes become --scope and one --read-scope a line', () => {
  const env = { INPUT_SCOPE: 'refs/pull/7/merge', 'INPUT_READ-SCOPES': 'refs/heads/main\n\n  refs/heads/release \n' };
  assert.deepEqual(lib.globalArgs(env), ['--scope=refs/pull/7/merge', '--read-scope=refs/heads/main', '--read-scope=refs/heads/release']);
  assert.deepEqual(lib.globalArgs({}), []);
});

test('file commands: values cannot inject entries', () => {
  const dir = h.tmpDir();
  const file = path.join(dir, 'out');
  const env = { GITHUB_OUTPUT: file };
  lib.appendFileCommand('GITHUB_OUTPUT', 'a', 'one\nb=two', env);
  lib.appendFileCommand('GITHUB_OUTPUT', 'c', '', env);
  assert.deepEqual(h.parseFileCommands(fs.readFileSync(file, 'utf8')), { a: 'one\nb=two', c: '' });
  assert.equal(lib.appendFileCommand('GITHUB_STATE', 'x', 'y', {}), false);
});

test('the action.yml files declare what the scripts read', () => {
  const main = h.actionInputs(path.join(h.REPO, 'action.yml'));
  const restore = h.actionInputs(path.join(h.REPO, 'restore', 'action.yml'));
  const save = h.actionInputs(path.join(h.REPO, 'save', 'action.yml'));
  const shared = ['key', 'path', 'remote', 'endpoint', 'region', 'path-style', 'read-only', 'no-local', 'strict', 'scope'];
  // enableCrossOsArchive and upload-chunk-size: actions/cache's, accepted and ignored.
  assert.deepEqual(Object.keys(main).sort(), [...shared, 'read-scopes', 'restore-keys', 'fail-on-cache-miss', 'lookup-only', 'save-always', 'enableCrossOsArchive', 'upload-chunk-size'].sort());
  assert.deepEqual(Object.keys(restore).sort(), [...shared, 'read-scopes', 'restore-keys', 'fail-on-cache-miss', 'lookup-only', 'enableCrossOsArchive'].sort());
  assert.deepEqual(Object.keys(save).sort(), [...shared, 'enableCrossOsArchive', 'upload-chunk-size'].sort());
  assert.equal(main['no-local'].default, '', 'no-local must default to empty (decided by the runner)');
  for (const [file, script] of [['action.yml', 'main.js'], ['restore/action.yml', 'restore.js'], ['save/action.yml', 'save.js']]) {
    const yml = fs.readFileSync(path.join(h.REPO, file), 'utf8');
    assert.match(yml, /^ {2}using: 'node24'$/m, file);
    const m = /^ {2}main: '(.+)'$/m.exec(yml);
    assert.ok(m, `${file} has no runs.main`);
    assert.equal(path.resolve(h.REPO, path.dirname(file), m[1]), path.join(h.ACTION, script), file);
  }
  assert.match(fs.readFileSync(path.join(h.REPO, 'action.yml'), 'utf8'), /^ {2}post: 'action\/post\.js'$/m);
});
