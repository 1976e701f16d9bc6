'use strict';
// The two halves of the action: restore (tiercache pull) and save
// (tiercache push). main.js and post.js run them as one action with a
// post step, as actions/cache does; restore.js and save.js run each
// alone, as actions/cache/restore and actions/cache/save do.

const fs = require('node:fs');
const path = require('node:path');

const lib = require('./lib');
const { install, IntegrityError } = require('./install');

// The names under which main.js hands its work to post.js.
const State = {
  key: 'key',
  paths: 'paths',
  excludes: 'excludes',
  match: 'match',
  bin: 'bin',
  exactHit: 'exact-hit',
  restoreKeys: 'restore-keys',
  // Why the binary could not be had: the post step then saves nothing
  // rather than trying (and waiting, and warning) again.
  installFailed: 'install-failed',
};

// isExactKeyMatch reports whether matched is key itself as actions/cache
// decides it: ignoring case, not accents. Entries are stored under the
// key as given, so only a restore key can find one spelt in another case;
// actions/cache takes that for a hit on key (cache-hit true, no save),
// and so does this action, for workflows that test cache-hit.
function isExactKeyMatch(key, matched) {
  return Boolean(matched) && matched.localeCompare(key, undefined, { sensitivity: 'accent' }) === 0;
}

// readKeyAndPaths reads the key and path inputs.
function readKeyAndPaths() {
  const key = lib.getInput('key', { required: true });
  const { paths, excludes, match } = lib.parsePaths(lib.getMultilineInput('path', { required: true }));
  return { key, paths, excludes, match };
}

// installOrSkip returns the binary to run, or '' when it cannot be had
// for a reason that is an outage (a download or a build that failed): as
// actions/cache warns when its cache service is unreachable, the step
// then goes on without the cache. With strict it fails instead; so does,
// always, a download that fails verification or a TIERCACHE_BIN that is
// not there. With record, the failure is kept in the state for the post
// step.
async function installOrSkip({ record = false } = {}) {
  try {
    return await install();
  } catch (err) {
    if (record) lib.saveState(State.installFailed, err.message);
    if (lib.strict() || err instanceof IntegrityError || err instanceof lib.UsageError) throw err;
    lib.warning(`${err.message}; the cache is skipped (set strict: true to fail the step instead)`);
    return '';
  }
}

// restore pulls key (or a restore key's match) into the paths, and
// writes the step outputs (cache-hit, cache-matched-key,
// cache-primary-key) from the CLI's result, or a miss's without a
// binary: the step, not the CLI, writes them, since cache-hit compares
// keys as actions/cache does (isExactKeyMatch). With withState, it
// records for post.js what to push and whether the key itself was hit.
async function restore({ withState }) {
  const { key, paths, excludes, match } = readKeyAndPaths();
  const restoreKeys = lib.getMultilineInput('restore-keys');
  const failOnMiss = lib.getBooleanInput('fail-on-cache-miss');
  const lookupOnly = lib.getBooleanInput('lookup-only');
  const global = lib.globalArgs();
  if (withState) {
    if (lib.getBooleanInput('save-always')) {
      // Read by action.yml's post-if, which cannot read inputs.
      lib.exportVariable('TIERCACHE_SAVE_ALWAYS', 'true');
    }
    lib.saveState(State.key, key);
    lib.saveState(State.paths, JSON.stringify(paths));
    lib.saveState(State.excludes, JSON.stringify(excludes));
    lib.saveState(State.match, String(match));
    lib.saveState(State.restoreKeys, JSON.stringify(restoreKeys));
  }
  const bin = await installOrSkip({ record: withState });
  let code = 0;
  let out = null;
  if (bin) {
    if (withState) lib.saveState(State.bin, bin);
    const args = ['pull', ...global, '--json'];
    // actions/cache looks for key itself, then for the newest entry whose
    // key starts with key, then the restore keys: key is the first prefix.
    for (const k of [key, ...restoreKeys]) args.push(`--restore-key=${k}`);
    if (failOnMiss) args.push('--fail-on-miss');
    if (lookupOnly) args.push('--lookup-only');
    args.push(...lib.pathArgs(key, paths, [], match)); // excludes matter to a push only
    // Patterns name no path before the pull, which creates none on a miss.
    const absent = match ? [] : paths.filter((p) => !lexists(p)).map(missingFrom);
    const env = { ...process.env };
    delete env.GITHUB_OUTPUT; // written below
    let stdout;
    ({ code, stdout } = await lib.runTiercache(bin, args, { capture: true, env }));
    out = lib.parseJSONOutput(stdout);
    if (code === 1 && !lib.strict()) {
      // The restore failed where it ran (a path it cannot write, a full
      // disk). actions/cache warns "Failed to restore" and goes on as a
      // miss; the CLI left each path as it was, so this can too.
      lib.warning(`Failed to restore "${key}": tiercache pull failed (exit code 1; see its message above); going on as a miss (set strict: true to fail the step instead)`);
      code = failOnMiss ? 3 : 0;
      out = { hit: false };
    }
    if (code === 3 || (code === 0 && out && !out.hit)) removeEmptyDirs(absent);
  } else {
    code = failOnMiss ? 3 : 0;
    out = { hit: false };
  }
  const exact = Boolean(out && out.hit && isExactKeyMatch(key, out.key));
  if (code === 0 || code === 3) {
    lib.appendFileCommand('GITHUB_OUTPUT', 'cache-hit', String(exact));
    lib.appendFileCommand('GITHUB_OUTPUT', 'cache-primary-key', key);
    lib.appendFileCommand('GITHUB_OUTPUT', 'cache-matched-key', (out && out.hit && out.key) || '');
  }
  if (code === 3) {
    lib.setFailed(`no cache entry for key "${key}"${restoreKeys.length ? ' or its restore keys' : ''}, and fail-on-cache-miss is set`);
    return;
  }
  if (code !== 0) {
    lib.setFailed(`tiercache pull failed (exit code ${code}); see its message above`);
    return;
  }
  if (withState) lib.saveState(State.exactHit, String(exact));
  if (!out) {
    lib.info('tiercache pull printed no result');
  } else if (!out.hit) {
    lib.info(`Cache not found for key "${key}"${restoreKeys.length ? ' or its restore keys' : ''}`);
  } else {
    lib.info(`Cache ${lookupOnly ? 'found' : 'restored'} from key "${out.key}"${exact ? '' : ` (a restore key; "${key}" missed)`}`);
  }
}

// lexists reports whether p is there, a dangling link included.
function lexists(p) {
  try {
    fs.lstatSync(p);
    return true;
  } catch (err) {
    return err.code !== 'ENOENT'; // unknown: never removed
  }
}

// missingFrom returns, for a path p that is not there, p and the
// highest of its parents that is not there either: what a pull may
// create and a miss must remove again.
function missingFrom(p) {
  let top = path.resolve(p);
  for (let up = path.dirname(top); up !== top && !lexists(up); up = path.dirname(up)) top = up;
  return { path: path.resolve(p), top };
}

// removeEmptyDirs undoes what a missing pull made: the CLI creates a
// single DIR, with its parents, on a miss, while actions/cache leaves a
// miss's paths as they were, and a path meant for a file (.eslintcache)
// must not be left a directory. Only empty directories go, from each
// path up to the highest parent that was missing; anything else stays.
function removeEmptyDirs(missing) {
  for (const { path: p, top } of missing) {
    for (let d = p; ; d = path.dirname(d)) {
      try {
        fs.rmdirSync(d);
      } catch {
        break; // not made by the pull, or filled since: left alone
      }
      if (d === top) break;
    }
  }
}

// push stores the paths under key. A remote failure the CLI survives is
// a warning it prints; the step still succeeds unless strict is set. So
// is a path that does not exist (a job that failed before making it), as
// in actions/cache: a warning naming it, and the others saved (nothing
// when none exists); with strict, the push runs and fails on it. The restore keys choose the push's base
// as they chose the restored entry, so only what the job changed is
// uploaded (even with no-local, which keeps no record of the pull).
async function push({ key, paths, excludes, match = false, bin, restoreKeys = [] }) {
  if (lib.readOnly()) {
    lib.info(`Not saving "${key}": read-only is set`);
    return;
  }
  // Patterns that match nothing fail the push (exit 1), which warns below.
  // Of several paths, those missing are left out by the CLI, with a
  // warning, as actions/cache saves the paths that exist; with none
  // there, nothing is saved.
  if (!lib.strict() && !match) {
    const missing = lib.missingPaths(paths);
    if (missing.length === paths.length) {
      lib.warning(missingPathsMessage(key, missing));
      return;
    }
  }
  const global = lib.globalArgs();
  const args = ['push', ...global];
  for (const k of [key, ...restoreKeys]) args.push(`--restore-key=${k}`);
  args.push(...lib.pathArgs(key, paths, excludes, match));
  bin = bin || (await installOrSkip());
  if (!bin) return;
  const { code } = await lib.runTiercache(bin, args);
  if (code === 1 && !lib.strict()) {
    // A save that fails (a file changed while it was read, a path it
    // cannot read, a full disk) loses a cache entry, not the job's
    // work: a warning, as actions/cache gives. A usage error (2) is a
    // mistake in the workflow, and fails the step.
    lib.warning(`tiercache push failed, so nothing was saved for key "${key}"; see its message above (set strict: true to fail the step instead)`);
  } else if (code !== 0) {
    lib.setFailed(`tiercache push failed (exit code ${code}); see its message above`);
  }
}

// missingPathsMessage is the warning for paths that do not exist at
// save time: the words start as actions/cache's do, so a search for its
// message finds this one.
function missingPathsMessage(key, missing) {
  const list = missing.map((p) => `"${p}"`).join(', ');
  const what = missing.length === 1 ? `the path ${list} does not exist` : `the paths ${list} do not exist`;
  return `Path Validation Error: ${what}, so nothing was saved for key "${key}" (set strict: true to fail the step instead)`;
}

// postSave is the post step: push what main.js restored into, unless
// the key itself was hit (its entry is already what the key names, as in
// actions/cache) or the main step did not get far enough to say what.
async function postSave() {
  const key = lib.getState(State.key);
  if (!key) {
    lib.info('Not saving: the main step did not run');
    return;
  }
  if (lib.getState(State.exactHit) === 'true') {
    lib.info(`Cache hit on the primary key "${key}": not saving`);
    return;
  }
  const installFailed = lib.getState(State.installFailed);
  if (installFailed) {
    // The main step warned already; one line says why nothing is saved.
    const msg = `Not saving "${key}": the main step could not get the tiercache binary (${installFailed})`;
    if (lib.strict()) lib.setFailed(msg);
    else lib.notice(msg);
    return;
  }
  const paths = JSON.parse(lib.getState(State.paths) || '[]');
  const excludes = JSON.parse(lib.getState(State.excludes) || '[]');
  const match = lib.getState(State.match) === 'true';
  const restoreKeys = JSON.parse(lib.getState(State.restoreKeys) || '[]');
  let bin = lib.getState(State.bin);
  if (bin && !fs.existsSync(bin)) bin = '';
  await push({ key, paths, excludes, match, bin, restoreKeys });
}

// saveOnly is save/action.yml: push key and path from the inputs. An
// empty key (the cache-primary-key of a restore step that did not run)
// is a warning, as in actions/cache/save, unless strict is set.
async function saveOnly() {
  if (lib.getInput('key') === '' && !lib.strict()) {
    lib.warning('Key is not specified: input "key" is empty, so nothing was saved (set strict: true to fail the step instead)');
    return;
  }
  const { key, paths, excludes, match } = readKeyAndPaths();
  await push({ key, paths, excludes, match, bin: '' });
}

module.exports = { restore, postSave, saveOnly, State };
