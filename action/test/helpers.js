'use strict';
// Test helpers: a throwaway MinIO server on loopback, the tiercache
// binary, and a simulated runner (INPUT_* variables, the GITHUB_OUTPUT,
// GITHUB_STATE and GITHUB_ENV files, STATE_* handed from main to post).

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const REPO = path.resolve(__dirname, '..', '..');
const ACTION = path.join(REPO, 'action');

// tmpDir makes a directory removed when the test process exits.
const made = [];
process.on('exit', () => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});
function tmpDir(prefix = 'tiercache-action-test-') {
  const d = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  made.push(d);
  return d;
}

// tiercacheBin returns the CLI to test: $TIERCACHE_TEST_BIN (make
// test-action builds it), else one built here once.
let builtBin;
function tiercacheBin() {
  if (process.env.TIERCACHE_TEST_BIN) return process.env.TIERCACHE_TEST_BIN;
  if (!builtBin) {
    const bin = path.join(tmpDir('tiercache-action-bin-'), 'tiercache');
    const r = spawnSync('go', ['build', '-o', bin, './cmd/tiercache'], { cwd: REPO, stdio: 'inherit' });
    assert.equal(r.status, 0, 'go build ./cmd/tiercache failed');
    builtBin = bin;
  }
  return builtBin;
}

// --- MinIO -----------------------------------------------------------------------

// findMinio looks for the server binary as the Go tests do:
// $TIERCACHE_MINIO_BIN, then bin/minio in the repository, then $PATH.
function findMinio() {
  const candidates = [process.env.TIERCACHE_MINIO_BIN, path.join(REPO, 'bin', 'minio')];
  for (const dir of (process.env.PATH || '').split(path.delimiter)) if (dir) candidates.push(path.join(dir, 'minio'));
  for (const c of candidates) {
    if (!c) continue;
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch {
      // next
    }
  }
  return null;
}

const NO_MINIO = 'minio binary not found (set TIERCACHE_MINIO_BIN or run `make minio`)';

// requireMinio returns the binary, or, without one, skips the test on a
// developer machine and fails it when CI is set: CI never passes by
// skipping.
function requireMinio(t) {
  const bin = findMinio();
  if (bin) return bin;
  if (process.env.CI) assert.fail(`${NO_MINIO}; CI is set, so this fails instead of skipping`);
  t.skip(NO_MINIO);
  return null;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function httpStatus(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

// startMinio starts a server on free loopback ports with random
// credentials and makes bucket. stop() ends it.
async function startMinio(bin, bucket = 'cache') {
  const root = tmpDir('tiercache-action-minio-');
  const data = path.join(root, 'data');
  fs.mkdirSync(data);
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const [port, consolePort] = [await freePort(), await freePort()];
    const s = {
      endpoint: `http://127.0.0.1:${port}`,
      accessKey: 'test' + crypto.randomBytes(4).toString('hex'),
      secretKey: crypto.randomBytes(20).toString('hex'),
      region: 'us-east-1',
      bucket,
    };
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MINIO_')) env[k] = v;
    Object.assign(env, {
      MINIO_ROOT_USER: s.accessKey,
      MINIO_ROOT_PASSWORD: s.secretKey,
      MINIO_REGION: s.region,
      MINIO_BROWSER: 'off',
      MINIO_UPDATE: 'off',
    });
    const child = spawn(bin, ['server', '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, '--quiet', data], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr.on('data', (c) => (log = (log + c).slice(-4000)));
    let exited = false;
    child.on('exit', () => (exited = true));
    const kill = () => {
      if (!exited) child.kill('SIGKILL');
    };
    process.on('exit', kill);
    s.stop = () =>
      new Promise((resolve) => {
        if (exited) return resolve();
        child.on('exit', () => resolve());
        child.kill('SIGTERM');
      });
    const deadline = Date.now() + 60000;
    while (!exited && Date.now() < deadline) {
      if ((await httpStatus(`${s.endpoint}/minio/health/live`)) === 200 && (await httpStatus(`${s.endpoint}/minio/health/cluster`)) === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (exited || Date.now() >= deadline) {
      kill();
      lastErr = new Error(`minio did not start: ${log}`);
      continue;
    }
    const status = await s3Request(s, 'PUT', `/${bucket}`);
    assert.equal(status, 200, `creating bucket ${bucket}`);
    return s;
  }
  throw lastErr;
}

// s3Request sends a body-less request signed with AWS Signature V4 and
// returns the status code.
function s3Request(s, method, pathname) {
  const url = new URL(pathname, s.endpoint);
  const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const hash = (d) => crypto.createHash('sha256').update(d).digest('hex');
  const hmac = (k, d) => crypto.createHmac('sha256', k).update(d).digest();
  const payload = hash('');
  const signed = 'host;x-amz-content-sha256;x-amz-date';
  const canonical = [method, url.pathname, '', `host:${url.host}`, `x-amz-content-sha256:${payload}`, `x-amz-date:${amzDate}`, '', signed, payload].join('\n');
  const scope = `${day}/${s.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, hash(canonical)].join('\n');
  let key = hmac('AWS4' + s.secretKey, day);
  for (const part of [s.region, 's3', 'aws4_request']) key = hmac(key, part);
  const signature = crypto.createHmac('sha256', key).update(toSign).digest('hex');
  const headers = {
    'x-amz-content-sha256': payload,
    'x-amz-date': amzDate,
    Authorization: `AWS4-HMAC-SHA256 Credential=${s.accessKey}/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
  };
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}

// --- the simulated runner -----------------------------------------------------------

// actionInputs reads the inputs and their defaults from an action.yml
// (only the shape these files have: two-space input names, four-space
// keys, single-quoted defaults).
function actionInputs(file) {
  const inputs = {};
  let section = null;
  let current = null;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    let m;
    if ((m = /^(\S[^:]*):/.exec(line))) {
      section = m[1];
      current = null;
    } else if (section === 'inputs' && (m = /^ {2}([\w-]+):\s*$/.exec(line))) {
      current = m[1];
      inputs[current] = { default: undefined };
    } else if (section === 'inputs' && current && (m = /^ {4}default: '(.*)'\s*$/.exec(line))) {
      inputs[current].default = m[1].replace(/''/g, "'");
    }
  }
  return inputs;
}

// parseFileCommands reads a GITHUB_OUTPUT/STATE/ENV file: name=value
// lines and name<<DELIM multi-line entries. Later entries win.
function parseFileCommands(text) {
  const out = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const value = [];
      for (i++; i < lines.length && lines[i] !== heredoc[2]; i++) value.push(lines[i]);
      assert.ok(i < lines.length, `unterminated ${heredoc[1]}<<${heredoc[2]}`);
      out[heredoc[1]] = value.join('\n');
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `not a file command: ${JSON.stringify(line)}`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

// The variables passed through from the test's environment: what finding
// programs and Go builds (the build-from-source fallback) need. Nothing
// else leaks in, so no AWS_* or TIERCACHE_* of the machine's can matter.
const PASS = ['PATH', 'TMPDIR', 'LANG', 'SystemRoot', 'GOROOT', 'GOPATH', 'GOCACHE', 'GOMODCACHE', 'GOFLAGS', 'GOPROXY', 'GONOSUMDB', 'GOPRIVATE', 'GOTOOLCHAIN'];

let goEnv;
function goVars() {
  if (goEnv === undefined) {
    goEnv = {};
    const r = spawnSync('go', ['env', 'GOPATH', 'GOCACHE', 'GOMODCACHE'], { encoding: 'utf8' });
    if (r.status === 0) {
      const [gopath, gocache, gomodcache] = r.stdout.trim().split('\n');
      Object.assign(goEnv, { GOPATH: gopath, GOCACHE: gocache, GOMODCACHE: gomodcache });
    }
  }
  return goEnv;
}

// Machine is one runner machine: its home, workspace, temp and tool cache
// directories, and tiercache's local tier. A new Machine is a fresh
// GitHub-hosted runner; jobs on one Machine share its local tier, as on
// a self-hosted runner.
class Machine {
  constructor() {
    this.root = tmpDir();
    for (const d of ['home', 'workspace', 'temp', 'toolcache']) {
      this[d] = path.join(this.root, d);
      fs.mkdirSync(this[d]);
    }
    this.cacheDir = path.join(this.root, 'tiercache-local');
    this.steps = 0;
  }

  // env builds a step's environment: the runner's variables, INPUT_* for
  // every input of the action.yml (its default where inputs leaves it
  // out), the step's command files, and extra.
  stepEnv({ actionYml, inputs = {}, extra = {} }) {
    const step = this.steps++;
    const files = {
      output: path.join(this.temp, `output-${step}`),
      state: path.join(this.temp, `state-${step}`),
      env: path.join(this.temp, `env-${step}`),
    };
    for (const f of Object.values(files)) fs.writeFileSync(f, '');
    const env = {};
    for (const k of PASS) if (process.env[k] !== undefined) env[k] = process.env[k];
    Object.assign(env, goVars(), {
      HOME: this.home,
      USERPROFILE: this.home,
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: this.workspace,
      RUNNER_TEMP: this.temp,
      RUNNER_TOOL_CACHE: this.toolcache,
      RUNNER_ENVIRONMENT: 'self-hosted',
      GITHUB_OUTPUT: files.output,
      GITHUB_STATE: files.state,
      GITHUB_ENV: files.env,
      TIERCACHE_DIR: this.cacheDir,
      TIERCACHE_BIN: tiercacheBin(),
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    const declared = actionInputs(actionYml);
    for (const name of Object.keys(inputs)) assert.ok(name in declared, `${actionYml} has no input "${name}"`);
    for (const [name, d] of Object.entries(declared)) {
      const v = name in inputs ? inputs[name] : d.default;
      if (v !== undefined) env['INPUT_' + name.replace(/ /g, '_').toUpperCase()] = v;
    }
    for (const [k, v] of Object.entries(extra)) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    return { env, files };
  }
}

// runNode runs an action script as the runner does: node SCRIPT, in the
// workspace.
function runNode(script, env, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ACTION, script)], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      resolve({ code, stdout, stderr, log: stdout + stderr });
    });
  });
}

// Step is one run of a script: its result, and the outputs, state and
// environment it wrote.
async function step(machine, script, { actionYml = path.join(REPO, 'action.yml'), inputs, extra } = {}) {
  const { env, files } = machine.stepEnv({ actionYml, inputs, extra });
  const r = await runNode(script, env, machine.workspace);
  return {
    ...r,
    outputs: parseFileCommands(fs.readFileSync(files.output, 'utf8')),
    state: parseFileCommands(fs.readFileSync(files.state, 'utf8')),
    envFile: parseFileCommands(fs.readFileSync(files.env, 'utf8')),
  };
}

// mainStep runs action.yml's main step; postStep its post step, as the
// runner runs it after the job's other steps: with the main step's state
// as STATE_* and what it wrote to GITHUB_ENV in the environment.
async function mainStep(machine, opts = {}) {
  return step(machine, 'main.js', opts);
}

async function postStep(machine, main, opts = {}) {
  const extra = { ...(opts.extra || {}), ...main.envFile };
  for (const [k, v] of Object.entries(main.state)) extra[`STATE_${k}`] = v;
  return step(machine, 'post.js', { ...opts, extra });
}

// remoteInputs are the inputs that point the action at a MinIO server;
// remoteEnv the credentials.
function remoteInputs(s, prefix) {
  return { remote: `s3://${s.bucket}/${prefix}`, endpoint: s.endpoint, region: s.region };
}
function remoteEnv(s) {
  return { AWS_ACCESS_KEY_ID: s.accessKey, AWS_SECRET_ACCESS_KEY: s.secretKey, AWS_REGION: s.region };
}

// writeTree fills dir with files whose bytes include every byte value.
function writeTree(dir, seed) {
  const files = {
    'a.txt': `hello ${seed}\n`,
    'sub/b.bin': Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), crypto.randomBytes(4096)]),
    'sub/deeper/c.json': JSON.stringify({ seed }),
  };
  for (const [name, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), data);
  }
  return files;
}

// readTree returns every regular file under dir, by relative path.
function readTree(dir) {
  const out = {};
  const walk = (d, rel) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else out[r] = fs.readFileSync(path.join(d, e.name));
    }
  };
  walk(dir, '');
  return out;
}

function assertSameTree(dir, files) {
  const got = readTree(dir);
  assert.deepEqual(Object.keys(got).sort(), Object.keys(files).sort(), `files in ${dir}`);
  for (const [name, data] of Object.entries(files)) {
    assert.ok(got[name].equals(Buffer.from(data)), `${name} differs`);
  }
}

// cli runs the tiercache binary directly (to arrange or inspect a
// cache), with the machine's local tier and the given environment.
function cli(machine, args, env = {}) {
  const r = spawnSync(tiercacheBin(), args, {
    env: { PATH: process.env.PATH, HOME: machine.home, TIERCACHE_DIR: machine.cacheDir, AWS_EC2_METADATA_DISABLED: 'true', ...env },
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// outageHost answers every request with 503, as a release host in an
// outage does, and counts them. Its Retry-After: 0 keeps the download's
// retries from waiting.
async function outageHost() {
  const host = { requests: 0 };
  const srv = http.createServer((req, res) => {
    host.requests++;
    res.writeHead(503, { 'Retry-After': '0' });
    res.end('Service Unavailable');
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  host.url = `http://127.0.0.1:${srv.address().port}`;
  host.close = () => new Promise((r) => srv.close(r));
  return host;
}

module.exports = {
  REPO,
  ACTION,
  tmpDir,
  tiercacheBin,
  findMinio,
  requireMinio,
  startMinio,
  freePort,
  actionInputs,
  parseFileCommands,
  Machine,
  runNode,
  step,
  mainStep,
  postStep,
  remoteInputs,
  remoteEnv,
  writeTree,
  readTree,
  assertSameTree,
  cli,
  outageHost,
};
