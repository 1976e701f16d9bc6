'use strict';
// Shared by the action's entry points (main.js, post.js, restore.js,
// save.js): reading inputs and state, writing the runner's file commands,
// mapping inputs onto tiercache's flags, and running the CLI. Node's
// built-in modules only: the action ships as plain files, with no
// dependencies to install.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

// --- inputs -----------------------------------------------------------------

// inputEnvName is the variable the runner sets for an input: INPUT_, then
// the name upper-cased with spaces as underscores (hyphens are kept).
function inputEnvName(name) {
  return 'INPUT_' + name.replace(/ /g, '_').toUpperCase();
}

// getInput returns an input, trimmed; '' when not set. A required input
// that is empty is an error naming it.
function getInput(name, { required = false, env = process.env } = {}) {
  const v = (env[inputEnvName(name)] || '').trim();
  if (required && v === '') {
    throw new UsageError(`input "${name}" is required`);
  }
  return v;
}

// getBooleanInput reads true/false (any case); '' gives fallback.
function getBooleanInput(name, { fallback = false, env = process.env } = {}) {
  const v = getInput(name, { env });
  if (v === '') return fallback;
  return parseBoolean(v, `input "${name}"`);
}

function parseBoolean(v, what) {
  switch (v.toLowerCase()) {
    case 'true': return true;
    case 'false': return false;
  }
  throw new UsageError(`${what} must be true or false, got "${v}"`);
}

// getMultilineInput splits an input into its lines, each trimmed, empty
// ones dropped.
function getMultilineInput(name, { required = false, env = process.env } = {}) {
  const lines = splitLines(getInput(name, { env }));
  if (required && lines.length === 0) {
    throw new UsageError(`input "${name}" is required`);
  }
  return lines;
}

function splitLines(s) {
  return s.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
}

// parsePaths turns the path input's lines into PATH arguments and
// --exclude patterns: a line starting with '!' excludes what follows it,
// as actions/cache's negated patterns do; a leading '~' in a PATH is the
// home directory. The CLI matches an exclude below each PATH, while
// actions/cache's negations name paths: see excludePattern. A path given
// twice, however spelled, counts once: actions/cache takes such a list,
// and the CLI refuses it (restore and save drop the same lines).
//
// A glob line (**/node_modules), which actions/cache expands, makes
// every path line a --match pattern instead (match is then true): the
// CLI pushes what the patterns match below the working directory, and a
// pull restores each path the entry records to its place there. The
// lines must then all be relative to the working directory.
function parsePaths(lines, home = os.homedir()) {
  const plain = lines.filter((l) => !l.startsWith('!'));
  if (plain.some(isGlob)) return parsePatterns(lines);
  const paths = [];
  const seen = new Set();
  const negated = [];
  for (const line of lines) {
    if (line.startsWith('!')) {
      negated.push(negation(line));
    } else {
      const p = expandHome(line, home);
      if (!seen.has(path.resolve(p))) {
        seen.add(path.resolve(p));
        paths.push(p);
      }
    }
  }
  if (paths.length === 0) {
    throw new UsageError('input "path" needs at least one path (not only "!" lines)');
  }
  const excludes = negated.map((p) => excludePattern(p, paths, home));
  return { paths, excludes, match: false };
}

// negation returns the pattern of a "!" line, which must have one.
function negation(line) {
  const pattern = line.slice(1).trim();
  if (pattern === '') {
    throw new UsageError('a "!" line in "path" needs a pattern after it');
  }
  return pattern;
}

// parsePatterns is parsePaths for a list holding a glob line: each path
// line becomes a --match pattern, "/" between its names ("./" and a
// trailing "/" dropped; "./" from "!" lines too). A "!" line that starts
// with one of the patterns and goes below it (!**/node_modules/.cache)
// leaves out what follows, anchored in each match (--exclude /.cache);
// any other is passed as an --exclude as written, matched below each
// match, and as a --match !PATTERN, which leaves out the matches it
// names whole.
function parsePatterns(lines) {
  const patterns = [];
  const negated = [];
  for (const line of lines) {
    if (line.startsWith('!')) {
      // "./" dropped as from a path line, so "!./a/*/x" leaves out below
      // the pattern "./a/*" as "!a/*/x" does below "a/*".
      let n = negation(line).split('\\').join('/');
      while (n.startsWith('./')) n = n.slice(2);
      if (n === '') throw new UsageError(`a "!" line in "path" needs a pattern after it, not only "./" ("${line}")`);
      negated.push(n);
      continue;
    }
    let p = line.split('\\').join('/');
    while (p.startsWith('./')) p = p.slice(2);
    while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
    if (p === '' || p === '.' || p.startsWith('/') || p.startsWith('~') || /^[A-Za-z]:/.test(p) || p.split('/').includes('..')) {
      throw new UsageError(
        `input "path": "${line}" is not below the working directory, and a glob line ("${lines.find((l) => !l.startsWith('!') && isGlob(l))}") ` +
          'makes every path line a pattern matched below it (see the README\'s GitHub Actions section). ' +
          'Cache such paths in a step of their own',
      );
    }
    if (!patterns.includes(p)) patterns.push(p);
  }
  const excludes = [];
  const left = [];
  for (const n of negated) {
    const p = patterns.find((p) => n.startsWith(p + '/') && n.length > p.length + 1);
    if (p) {
      excludes.push(n.slice(p.length));
      continue;
    }
    // Matched below each match, and also the matches it names whole
    // (!packages/legacy/node_modules), as actions/cache drops them; only
    // a relative pattern can name one.
    excludes.push(n);
    if (!(n.startsWith('/') || n.startsWith('~') || /^[A-Za-z]:/.test(n) || n.split('/').includes('..'))) left.push('!' + n);
  }
  return { paths: [...patterns, ...left], excludes, match: true };
}

// excludePattern turns a negated path line into an --exclude pattern. A
// line naming a place below one of the paths ("!~/.npm/_logs", or
// "!build/tmp" for the path "build") becomes a pattern anchored at that
// path's root ("/_logs", "/tmp"); anything else ("!**/*.log", "!*.tmp")
// is passed on as written, matched below every path.
function excludePattern(pattern, paths, home = os.homedir()) {
  const expanded = expandHome(pattern, home);
  if (/[*?[]/.test(expanded.split(/[\\/]/)[0] || '')) return pattern;
  const abs = path.resolve(expanded);
  let best = '';
  for (const p of paths) {
    // The deepest path holding it, when they nest.
    const rel = path.relative(path.resolve(p), abs);
    if (rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) && (best === '' || rel.length < best.length)) {
      best = rel;
    }
  }
  return best === '' ? pattern : '/' + best.split(path.sep).join('/');
}

// isGlob reports whether a path line holds a wildcard that actions/cache's
// glob matching would expand: *, ? or a [...] class.
function isGlob(line) {
  return /[*?]|\[[^\]]*\]/.test(line);
}

function expandHome(p, home = os.homedir()) {
  if (p === '~') return home;
  if (p.startsWith('~/') || (process.platform === 'win32' && p.startsWith('~\\'))) {
    return path.join(home, p.slice(2));
  }
  return p;
}

// --- the CLI's flags ----------------------------------------------------------

// resolveNoLocal decides --no-local. An explicit input wins. Left empty,
// a TIERCACHE_NO_LOCAL in the environment decides (the CLI reads it);
// otherwise it is on for GitHub-hosted runners, which live for one job,
// and off for self-hosted ones, whose local tier outlives the job. It is
// never turned on automatically without a remote, which it needs.
// Returns true, false, or undefined for "pass no flag".
function resolveNoLocal({ input, env, hasRemote }) {
  if (input !== '') return parseBoolean(input, 'input "no-local"');
  if ((env.TIERCACHE_NO_LOCAL || '').trim() !== '') return undefined;
  if (!hasRemote) return undefined;
  return env.RUNNER_ENVIRONMENT === 'github-hosted';
}

// globalArgs maps the inputs shared by pull and push onto the CLI's
// global flags. Every flag is written --name=value, so a value starting
// with '-' is never read as a flag. Inputs left empty pass nothing, so
// the TIERCACHE_* variables a workflow sets still apply.
function globalArgs(env = process.env) {
  const args = [];
  const remote = getInput('remote', { env });
  if (remote) args.push(`--remote=${remote}`);
  const endpoint = getInput('endpoint', { env });
  if (endpoint) args.push(`--endpoint=${endpoint}`);
  const region = getInput('region', { env });
  if (region) args.push(`--region=${region}`);
  const pathStyle = getInput('path-style', { env });
  if (pathStyle) args.push(`--path-style=${parseBoolean(pathStyle, 'input "path-style"')}`);
  if (getBooleanInput('read-only', { env })) args.push('--read-only');
  if (getBooleanInput('strict', { env })) args.push('--strict');
  const scope = getInput('scope', { env });
  if (scope) args.push(`--scope=${scope}`);
  for (const s of getMultilineInput('read-scopes', { env })) args.push(`--read-scope=${s}`);
  const noLocal = resolveNoLocal({
    input: getInput('no-local', { env }),
    env,
    hasRemote: remote !== '' || (env.TIERCACHE_REMOTE || '').trim() !== '',
  });
  if (noLocal !== undefined) args.push(`--no-local=${noLocal}`);
  return args;
}

// readOnly reports whether pushes are refused: the input, or the
// variable the CLI reads.
function readOnly(env = process.env) {
  return getBooleanInput('read-only', { env }) || envTrue(env.TIERCACHE_READ_ONLY);
}

// strict reports whether a cache failure fails the step: the input, or
// the variable the CLI reads. A strict input of false passes no flag, so
// the variable still applies.
function strict(env = process.env) {
  return getBooleanInput('strict', { env }) || envTrue(env.TIERCACHE_STRICT);
}

// envTrue reads a variable as the CLI's strconv.ParseBool reads true:
// 1, t, T, TRUE, true or True.
function envTrue(v) {
  return ['1', 't', 'T', 'TRUE', 'true', 'True'].includes((v || '').trim());
}

// missingPaths returns the paths (as parsePaths made them: ~ expanded,
// relative ones relative to the current directory, where the CLI runs)
// that do not exist. Symbolic links are followed, as the CLI's push
// follows them, so a dangling link is missing. Only "no such file"
// counts: any other error is left to the push to report.
function missingPaths(paths) {
  return paths.filter((p) => {
    try {
      fs.statSync(p);
      return false;
    } catch (err) {
      return err.code === 'ENOENT';
    }
  });
}

// pathArgs ends a command line: the --exclude patterns (push only), then
// '--' so that neither KEY nor a PATH starting with '-' can be read as a
// flag.
//
// A path in the home directory is passed as "~/...", which the CLI
// expands again: the entry records the name so, the same on every
// runner whatever its home, so that a pull matches the entry's paths by
// name (a path list reordered, or one the save found missing).
function pathArgs(key, paths, excludes, match = false, home = envHome()) {
  if (match) {
    return [...excludes.map((e) => `--exclude=${e}`), ...paths.map((p) => `--match=${p}`), '--', key];
  }
  return [...excludes.map((e) => `--exclude=${e}`), '--', key, ...paths.map((p) => tildeOf(p, home))];
}

// envHome is the home directory the CLI expands "~" to ($HOME, or
// %USERPROFILE% on Windows), "" if unset: os.homedir() would fall back
// on the password database, which the CLI does not.
function envHome(env = process.env) {
  return (process.platform === 'win32' ? env.USERPROFILE : env.HOME) || '';
}

// tildeOf returns p, a path from parsePaths, with the home directory
// that starts it written "~" (expandHome undone), and "/" between the
// names below it: the CLI expands "~/" on Windows too, and the entry
// records the name so, the same as a Linux or macOS runner gives.
// pathMod is the path module of the runner's OS (path.win32 on Windows).
function tildeOf(p, home, pathMod = path) {
  const rel = pathMod.relative(home, p);
  if (!home || !pathMod.isAbsolute(p) || rel === '' || rel.startsWith('..') || pathMod.isAbsolute(rel)) {
    return p;
  }
  return `~/${rel.split(pathMod.sep).join('/')}`;
}

// --- the runner's file commands -----------------------------------------------

// appendFileCommand appends name=value to the file the runner named in
// envVar (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV), in the multi-line
// form with a random delimiter, so no value can inject another entry.
// Without the variable (not under a runner) it does nothing and says so.
function appendFileCommand(envVar, name, value, env = process.env) {
  const file = env[envVar];
  if (!file) {
    debug(`${envVar} is not set: ${name} not recorded`);
    return false;
  }
  const v = String(value);
  const delimiter = `tiercache_${crypto.randomUUID()}`;
  if (name.includes(delimiter) || v.includes(delimiter)) {
    throw new Error(`${envVar}: value of ${name} holds its delimiter`);
  }
  fs.appendFileSync(file, `${name}<<${delimiter}${os.EOL}${v}${os.EOL}${delimiter}${os.EOL}`);
  return true;
}

function saveState(name, value) {
  appendFileCommand('GITHUB_STATE', name, value);
}

// getState reads what the main step saved: the runner hands it to the
// post step as STATE_<name>.
function getState(name, env = process.env) {
  return env[`STATE_${name}`] || '';
}

function exportVariable(name, value) {
  appendFileCommand('GITHUB_ENV', name, value);
  process.env[name] = String(value);
}

// --- logging --------------------------------------------------------------------

function escapeData(s) {
  return String(s).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function info(msg) {
  process.stdout.write(`${msg}${os.EOL}`);
}

function debug(msg) {
  process.stdout.write(`::debug::${escapeData(msg)}${os.EOL}`);
}

function warning(msg) {
  process.stdout.write(`::warning title=tiercache::${escapeData(msg)}${os.EOL}`);
}

function notice(msg) {
  process.stdout.write(`::notice title=tiercache::${escapeData(msg)}${os.EOL}`);
}

// setFailed reports an error and makes the step fail once the script ends.
function setFailed(msg) {
  process.exitCode = 1;
  process.stdout.write(`::error title=tiercache::${escapeData(msg)}${os.EOL}`);
}

function group(name) {
  process.stdout.write(`::group::${escapeData(name)}${os.EOL}`);
}

function endGroup() {
  process.stdout.write(`::endgroup::${os.EOL}`);
}

// --- running the CLI ------------------------------------------------------------

// runTiercache runs the binary with args, stderr passed through (its
// warnings and annotations reach the log as they come) and stdout
// captured when capture is set, otherwise passed through too; env, when
// given, is its environment. It resolves to { code, stdout }; it rejects
// only when the binary cannot be started.
function runTiercache(bin, args, { capture = false, env = process.env } = {}) {
  info(`[command]${bin} ${args.map(quoteForLog).join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'] });
    const chunks = [];
    if (capture) child.stdout.on('data', (c) => chunks.push(c));
    child.on('error', (err) => reject(new Error(`running ${bin}: ${err.message}`)));
    child.on('close', (code, signal) => {
      resolve({ code: code === null ? 128 : code, signal, stdout: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

function quoteForLog(a) {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a);
}

// parseJSONOutput reads the one JSON object a --json command prints on
// stdout; null if there is none.
function parseJSONOutput(stdout) {
  const s = stdout.trim();
  if (s === '') return null;
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

// UsageError is a mistake in the workflow (a missing or invalid input).
class UsageError extends Error {}

// run runs an entry point's body, turning a thrown error into a failed
// step with its message.
function run(fn) {
  Promise.resolve()
    .then(fn)
    .catch((err) => setFailed(err instanceof Error ? err.message : String(err)));
}

module.exports = {
  inputEnvName,
  getInput,
  getBooleanInput,
  getMultilineInput,
  parseBoolean,
  splitLines,
  parsePaths,
  expandHome,
  resolveNoLocal,
  globalArgs,
  readOnly,
  strict,
  missingPaths,
  pathArgs,
  tildeOf,
  appendFileCommand,
  saveState,
  getState,
  exportVariable,
  escapeData,
  info,
  debug,
  warning,
  notice,
  setFailed,
  group,
  endGroup,
  runTiercache,
  parseJSONOutput,
  UsageError,
  run,
};
