'use strict';
// Finds the tiercache binary the action runs, in this order:
//
//  1. TIERCACHE_BIN, a binary already on the machine, used as it is.
//  2. The release matching the action's own ref (GITHUB_ACTION_REF, a
//     version tag such as v1.2.3) in the action's repository: the archive
//     for this OS and architecture is downloaded with the release's
//     checksums file, its SHA-256 checked against the line naming it, and
//     only then is the binary taken out of it. A mismatch or a missing
//     line is an error naming the asset and the digests; an unverified
//     download is never run. The binary is kept in the runner's tool
//     cache (RUNNER_TOOL_CACHE), so the post step, and later jobs on a
//     self-hosted runner, reuse it.
//  3. Where there is no release (the ref is a branch, a commit or a
//     major tag such as v1, the action is used from a local path, or the
//     release host answers 404), the binary is built from the action's
//     own checkout with the runner's Go toolchain, into RUNNER_TEMP, with
//     Go module and build caches of the action's own there: the job's
//     (~/go/pkg/mod, ~/.cache/go-build) are never touched.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

const lib = require('./lib');
const { fileFromTarGz, fileFromZip } = require('./unpack');

// The repository this file belongs to: the action's checkout.
const SOURCE_ROOT = path.resolve(__dirname, '..');

// A download gives up after this long without progress.
const IDLE_TIMEOUT_MS = 60 * 1000;

// A download, retries included, gives up after this long: a host that
// drips a byte now and then would otherwise hold the step for hours.
const DEADLINE_MS = 5 * 60 * 1000;

// A download larger than this is refused: the release archive is a few
// tens of MiB and is held in memory.
const MAX_BYTES = 256 * 1024 * 1024;

// A transient failure is tried this many times in all, waiting
// BACKOFF_MS, then twice that, between tries, or what a 429 or 503's
// Retry-After asks, up to RETRY_AFTER_CAP_MS.
const ATTEMPTS = 3;
const BACKOFF_MS = 1000;
const RETRY_AFTER_CAP_MS = 60 * 1000;

class NotFoundError extends Error {}

// IntegrityError is a download that failed verification: never retried,
// never fallen back from.
class IntegrityError extends Error {}

// releaseVersion maps a ref to a release version: v1.2.3 → 1.2.3 (with a
// pre-release or build suffix kept). Refs that are not full version tags
// (branches, commit SHAs, v1, v1.2) give null: no release matches them.
function releaseVersion(ref) {
  const m = /^v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$/.exec(ref || '');
  return m ? m[1] : null;
}

// platform maps Node's names onto GoReleaser's; null where no release
// is built.
function platform(nodePlatform = process.platform, nodeArch = process.arch) {
  const goos = { linux: 'linux', darwin: 'darwin', win32: 'windows' }[nodePlatform];
  const goarch = { x64: 'amd64', arm64: 'arm64' }[nodeArch];
  if (!goos || !goarch) return null;
  return { os: goos, arch: goarch, ext: goos === 'windows' ? 'zip' : 'tar.gz', exe: goos === 'windows' ? 'tiercache.exe' : 'tiercache' };
}

function assetNames(version, p) {
  return {
    asset: `tiercache_${version}_${p.os}_${p.arch}.${p.ext}`,
    checksums: `tiercache_${version}_checksums.txt`,
  };
}

// checksumFor finds the digest of asset in a checksums file (lines
// "<sha256hex>  <name>", as sha256sum writes them).
function checksumFor(text, asset) {
  for (const line of text.split(/\r?\n/)) {
    const m = /^([0-9a-fA-F]{64}) [ *]?(.+)$/.exec(line.trim());
    if (m && m[2].trim() === asset) return m[1].toLowerCase();
  }
  return null;
}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

// download fetches url into memory, following redirects (release assets
// redirect to a storage host), never from https down to http. Requests
// go through env's HTTPS_PROXY or HTTP_PROXY (either case) unless
// NO_PROXY names the host, as on a runner behind a proxy. A request that
// makes no progress for idleMs fails; so does the whole download, retries
// included, once deadlineMs has passed, and a body over maxBytes. A
// transient failure (HTTP 5xx or 429, a connection refused, reset or
// closed early, no progress) is tried again, attempts times in all; a
// 404 (NotFoundError), any other answer and a refused redirect are not.
async function download(
  url,
  {
    env = process.env,
    redirects = 10,
    idleMs = IDLE_TIMEOUT_MS,
    deadlineMs = DEADLINE_MS,
    maxBytes = MAX_BYTES,
    attempts = ATTEMPTS,
    backoffMs = BACKOFF_MS,
    log = () => {},
  } = {},
) {
  const deadline = Date.now() + deadlineMs;
  const o = { env, idleMs, deadline, deadlineMs, maxBytes };
  for (let n = 1; ; n++) {
    try {
      return await fetchOnce(url, redirects, o);
    } catch (err) {
      if (!err.transient) throw err;
      if (n >= attempts) {
        err.message += ` (${n} attempts)`;
        throw err;
      }
      const wait = err.retryAfterMs ?? backoffMs * 2 ** (n - 1);
      if (Date.now() + wait >= deadline) {
        err.message += ` (a retry would pass the ${seconds(deadlineMs)}s deadline)`;
        throw err;
      }
      log(`${err.message}; trying again in ${seconds(wait)}s (attempt ${n + 1} of ${attempts})`);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

function seconds(ms) {
  return ms / 1000;
}

function byteCap(n) {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : `${n}-byte`;
}

// transient marks err as worth another attempt.
function transient(err, retryAfterMs) {
  err.transient = true;
  if (retryAfterMs !== undefined) err.retryAfterMs = retryAfterMs;
  return err;
}

// retryAfter reads a Retry-After given in seconds (not the date form),
// capped.
function retryAfter(res) {
  const v = String(res.headers['retry-after'] || '').trim();
  return /^\d+$/.test(v) ? Math.min(Number(v) * 1000, RETRY_AFTER_CAP_MS) : undefined;
}

// fetchOnce is one attempt of download: one request and the redirects
// it leads to.
function fetchOnce(url, redirects, o) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const proto = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : null;
    if (!proto) {
      reject(new Error(`cannot download ${url}: not an http(s) URL`));
      return;
    }
    let req;
    let timer;
    let done = false;
    const finish = (err, body) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        reject(err);
        req.destroy();
      } else {
        resolve(body);
      }
    };
    const agent = new proto.Agent({ proxyEnv: o.env });
    req = proto.get(u, { agent, headers: { 'User-Agent': 'tiercache-action', Accept: 'application/octet-stream' } }, (res) => {
      const status = res.statusCode;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects === 0) {
          finish(new Error(`downloading ${url}: too many redirects`));
          return;
        }
        let next;
        try {
          next = new URL(res.headers.location, u);
        } catch {
          finish(new Error(`downloading ${url}: a redirect to an invalid URL ${JSON.stringify(res.headers.location)}`));
          return;
        }
        if (u.protocol === 'https:' && next.protocol !== 'https:') {
          finish(new Error(`downloading ${url}: refusing a redirect from https to ${next.protocol}`));
          return;
        }
        done = true;
        clearTimeout(timer);
        fetchOnce(next.href, redirects - 1, o).then(resolve, reject);
        return;
      }
      if (status === 404) {
        res.resume();
        finish(new NotFoundError(`${url}: 404 Not Found`));
        return;
      }
      if (status !== 200) {
        res.resume();
        const err = new Error(`downloading ${url}: HTTP ${status}`);
        if (status >= 500 || status === 429) transient(err, status === 429 || status === 503 ? retryAfter(res) : undefined);
        finish(err);
        return;
      }
      const length = Number(res.headers['content-length']);
      if (length > o.maxBytes) {
        // Not read: the connection is closed.
        finish(new Error(`downloading ${url}: Content-Length ${length} is over the ${byteCap(o.maxBytes)} cap`));
        return;
      }
      const chunks = [];
      let got = 0;
      res.on('data', (c) => {
        got += c.length;
        if (got > o.maxBytes) finish(new Error(`downloading ${url}: the body passes the ${byteCap(o.maxBytes)} cap`));
        else chunks.push(c);
      });
      res.on('end', () =>
        res.complete ? finish(null, Buffer.concat(chunks)) : finish(transient(new Error(`downloading ${url}: connection closed early`))),
      );
      res.on('error', (err) => finish(transient(new Error(`downloading ${url}: ${err.message}`))));
    });
    timer = setTimeout(
      () => finish(new Error(`downloading ${url}: not finished within the ${seconds(o.deadlineMs)}s deadline`)),
      Math.max(0, o.deadline - Date.now()),
    );
    req.setTimeout(o.idleMs, () => finish(transient(new Error(`downloading ${url}: no progress for ${seconds(o.idleMs)}s`))));
    req.on('error', (err) => finish(transient(new Error(`downloading ${url}: ${err.message}`))));
  });
}

// writeFileAtomic writes data to file through a temporary name beside it,
// which a failure removes. Where file already holds data, a failure to
// replace it is none: Windows refuses to rename over a binary another
// job runs, as one installing the same release at the same time does.
function writeFileAtomic(file, data, mode) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.writeFileSync(tmp, data, { mode });
    fs.chmodSync(tmp, mode); // whatever the umask
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    if (!holds(file, data)) throw err;
  }
}

// holds reports whether file's content is data.
function holds(file, data) {
  try {
    return fs.readFileSync(file).equals(Buffer.from(data));
  } catch {
    return false;
  }
}

// toolCacheDir is where a release's binary is kept, in the tool cache's
// layout: <cache>/tiercache-<owner>-<repo>/<version>/<arch>, with
// <arch>.complete beside it once the binary is in place (it holds the
// binary's SHA-256). The action's repository is in the name so that a
// fork's release of the same version never stands in for this one's. It
// is null without the runner's directories: a shared temp directory is
// no place to reuse a binary from, as anyone may have put one there.
function toolCacheDir(env, version, p) {
  const root = env.RUNNER_TOOL_CACHE || env.RUNNER_TEMP;
  if (!root) return null;
  const repo = String(env.GITHUB_ACTION_REPOSITORY).replace(/[^A-Za-z0-9._-]/g, '-');
  return path.join(root, `tiercache-${repo}`, version, p.arch);
}

// fetchReleaseFile downloads one file of the release; a failure other
// than a 404 (which falls back to a build) says how to do without it.
async function fetchReleaseFile(url, env, log) {
  try {
    return await download(url, { env, log });
  } catch (err) {
    if (err instanceof NotFoundError) throw err;
    throw new Error(`${err.message} (set TIERCACHE_BIN to a tiercache binary on the machine to run without a download)`);
  }
}

// cachedBinary returns the tool cache's binary if it is complete and
// still matches the digest recorded when it was verified.
function cachedBinary(dir, p) {
  const bin = path.join(dir, p.exe);
  let want;
  try {
    want = fs.readFileSync(`${dir}.complete`, 'utf8').trim();
    return sha256(fs.readFileSync(bin)) === want ? bin : null;
  } catch {
    return null;
  }
}

// installRelease downloads, verifies and installs the release binary.
// It throws NotFoundError when the release or its asset does not exist.
async function installRelease({ env, version, p, log }) {
  const server = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '');
  const base = `${server}/${env.GITHUB_ACTION_REPOSITORY}/releases/download/${encodeURIComponent(env.GITHUB_ACTION_REF)}`;
  const { asset, checksums } = assetNames(version, p);
  const dir = toolCacheDir(env, version, p);
  const cached = dir && cachedBinary(dir, p);
  if (cached) {
    log(`tiercache ${version} found in the tool cache: ${cached}`);
    return cached;
  }
  log(`downloading ${base}/${asset}`);
  const sums = (await fetchReleaseFile(`${base}/${checksums}`, env, log)).toString('utf8');
  const want = checksumFor(sums, asset);
  if (!want) {
    throw new IntegrityError(`${checksums} has no line for ${asset}: refusing to install an unverified binary`);
  }
  const archive = await fetchReleaseFile(`${base}/${asset}`, env, log);
  const got = sha256(archive);
  if (got !== want) {
    throw new IntegrityError(
      `checksum mismatch for ${asset}: ${checksums} says sha256 ${want}, the download has sha256 ${got}; refusing to run it`,
    );
  }
  log(`verified ${asset}: sha256 ${got}`);
  const binary = p.ext === 'zip' ? fileFromZip(archive, p.exe) : fileFromTarGz(archive, p.exe);
  if (!dir) {
    const bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tiercache-')), p.exe); // private to this user
    writeFileAtomic(bin, binary, 0o755);
    return bin;
  }
  const bin = path.join(dir, p.exe);
  writeFileAtomic(bin, binary, 0o755);
  writeFileAtomic(`${dir}.complete`, sha256(binary), 0o644);
  return bin;
}

// buildEnv is the environment of the build from source: the job's own,
// with GOMODCACHE and GOCACHE pointed at the action's directories under
// goDir. Left to the job's, tiercache's dependencies would be downloaded
// into the user's module cache and compiled into their build cache (often
// the very paths the job caches, ~/go/pkg/mod and ~/.cache/go-build)
// before the restore, and the post step would save them under the user's
// key. Everything else (GOPROXY, GOFLAGS, GOTOOLCHAIN, proxies...) is kept
// as it is. GOPATH is kept too: with GOMODCACHE set and the binary's place
// given with -o, the build writes nothing under it.
function buildEnv(env, goDir) {
  return { ...env, GOMODCACHE: path.join(goDir, 'mod'), GOCACHE: path.join(goDir, 'build') };
}

// buildFromSource builds the CLI from the action's checkout into a fresh
// directory under RUNNER_TEMP. Go's module and build caches for it are
// the action's own: RUNNER_TEMP/tiercache-go, shared by the action's steps
// in a job and removed with RUNNER_TEMP when the job ends (-modcacherw
// leaves the module cache removable); without RUNNER_TEMP, a directory in
// the private build directory, removed after the build.
async function buildFromSource({ env, ref, why, log }) {
  if (!fs.existsSync(path.join(SOURCE_ROOT, 'go.mod')) || !fs.existsSync(path.join(SOURCE_ROOT, 'cmd', 'tiercache'))) {
    throw new Error(`${why}, and ${SOURCE_ROOT} holds no tiercache source to build; set TIERCACHE_BIN`);
  }
  const tmp = fs.mkdtempSync(path.join(env.RUNNER_TEMP || os.tmpdir(), 'tiercache-build-'));
  const bin = path.join(tmp, process.platform === 'win32' ? 'tiercache.exe' : 'tiercache');
  const goDir = path.resolve(env.RUNNER_TEMP ? path.join(env.RUNNER_TEMP, 'tiercache-go') : path.join(tmp, 'go'));
  fs.mkdirSync(goDir, { recursive: true });
  const args = ['build', '-modcacherw', '-o', bin];
  if (ref) args.push(`-ldflags=-X main.version=${ref}`);
  args.push('./cmd/tiercache');
  log(`${why}: building tiercache from ${SOURCE_ROOT} with go ${args.join(' ')} (Go caches in ${goDir})`);
  let code;
  try {
    code = await new Promise((resolve, reject) => {
      const child = spawn('go', args, { cwd: SOURCE_ROOT, env: buildEnv(env, goDir), stdio: ['ignore', 'inherit', 'inherit'] });
      child.on('error', (err) =>
        reject(
          new Error(
            `${why}, and Go could not be run to build it from the action's source (${err.message}); ` +
              'use a release tag (uses: tiercache/tiercache@vX.Y.Z), set up Go first (actions/setup-go), or set TIERCACHE_BIN',
          ),
        ),
      );
      child.on('close', resolve);
    });
  } finally {
    if (!env.RUNNER_TEMP) fs.rmSync(goDir, { recursive: true, force: true });
  }
  if (code !== 0) throw new Error(`${why}, and building it from the action's source failed (go build exited ${code})`);
  return bin;
}

// plan decides where the binary comes from: { kind: 'override', bin },
// { kind: 'release', version, platform }, or { kind: 'build', why }.
function plan(env = process.env, p = platform()) {
  const override = (env.TIERCACHE_BIN || '').trim();
  if (override) return { kind: 'override', bin: override };
  const ref = env.GITHUB_ACTION_REF || '';
  const version = releaseVersion(ref);
  if (!env.GITHUB_ACTION_REPOSITORY || !ref) {
    return { kind: 'build', why: 'the action is not used from a repository at a ref (a local path?), so there is no release to download' };
  }
  if (!version) return { kind: 'build', why: `the action's ref ${ref} is not a version tag (vX.Y.Z), so no release matches it` };
  if (!p) return { kind: 'build', why: `no release is built for ${process.platform}/${process.arch}` };
  return { kind: 'release', version, platform: p };
}

// install returns the path of a tiercache binary to run (see the top of
// this file).
async function install({ env = process.env, log = lib.info } = {}) {
  const pl = plan(env);
  if (pl.kind === 'override') {
    let st;
    try {
      st = fs.statSync(pl.bin);
    } catch (err) {
      throw new lib.UsageError(`TIERCACHE_BIN=${pl.bin}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    }
    if (!st.isFile()) throw new lib.UsageError(`TIERCACHE_BIN=${pl.bin} is not a file`);
    log(`using TIERCACHE_BIN: ${pl.bin}`);
    return path.resolve(pl.bin);
  }
  const ref = env.GITHUB_ACTION_REF || '';
  let why = pl.why;
  if (pl.kind === 'release') {
    try {
      return await installRelease({ env, version: pl.version, p: pl.platform, log });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      why = `no release asset for ${ref} (${err.message})`;
    }
  }
  return buildFromSource({ env, ref, why, log });
}

module.exports = {
  install,
  plan,
  releaseVersion,
  platform,
  assetNames,
  checksumFor,
  download,
  NotFoundError,
  IntegrityError,
  SOURCE_ROOT,
};
