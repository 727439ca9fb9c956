import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The Go tools the deploy tests run, built once into .tools/bin (git-ignored) from the Go module proxy
 * and cached: later runs only compare a stamp. Concurrent test files wait on a lock directory.
 *   - kustomize (sigs.k8s.io/kustomize/kustomize/v5 at KUSTOMIZE_VERSION): renders deploy/.
 *   - deploycheck (test/deploy/deploycheck): Docker's own libraries for the Dockerfile, the build
 *     context and compose.yaml, no Docker engine needed.
 * A cold build takes about 45 s on two cores; a warm run, milliseconds.
 */

export const root = resolve(import.meta.dirname, '../..');
export const KUSTOMIZE_VERSION = 'v5.7.1';
/** Enough for a cold build of both tools on two cores, with room. */
export const TOOLS_TIMEOUT_MS = 600_000;

const toolsDir = join(root, '.tools');
const binDir = join(toolsDir, 'bin');
const deploycheckSource = join(root, 'test/deploy/deploycheck');

function goEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // GOTOOLCHAIN=local: build with the Go that is installed, never fetch another toolchain.
  return { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '', CGO_ENABLED: '0', ...extra };
}

function withLock<T>(fn: () => T): T {
  mkdirSync(toolsDir, { recursive: true });
  const lock = join(toolsDir, 'lock');
  const deadline = Date.now() + TOOLS_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      let holder = Number.NaN;
      try {
        holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {}
      if (Number.isInteger(holder) && !alive(holder)) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `go` from PATH, else the official installer's location. */
function go(): string {
  for (const candidate of ['go', '/usr/local/go/bin/go']) {
    try {
      execFileSync(candidate, ['version'], { stdio: 'ignore', env: goEnv() });
      return candidate;
    } catch {}
  }
  throw new Error('the deploy tests need Go >= 1.24 (to build kustomize and deploycheck into .tools/); install it from https://go.dev/dl or Debian golang-go');
}

/** Path of the kustomize binary, installing it first if needed. */
export function kustomize(): string {
  const bin = join(binDir, 'kustomize');
  const stamp = join(binDir, 'kustomize.version');
  const ready = () => existsSync(bin) && existsSync(stamp) && readFileSync(stamp, 'utf8') === KUSTOMIZE_VERSION;
  if (ready()) return bin;
  return withLock(() => {
    if (ready()) return bin;
    const staging = join(toolsDir, `staging-${process.pid}`);
    rmSync(staging, { recursive: true, force: true });
    execFileSync(go(), ['install', `sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}`], {
      cwd: toolsDir,
      env: goEnv({ GOBIN: staging }),
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: TOOLS_TIMEOUT_MS,
    });
    mkdirSync(binDir, { recursive: true });
    renameSync(join(staging, 'kustomize'), bin);
    rmSync(staging, { recursive: true, force: true });
    writeFileSync(stamp, KUSTOMIZE_VERSION);
    return bin;
  });
}

/** Path of the deploycheck binary, (re)building it when its sources changed. */
export function deploycheck(): string {
  const bin = join(binDir, 'deploycheck');
  const stamp = join(binDir, 'deploycheck.stamp');
  const hash = createHash('sha256');
  for (const file of ['main.go', 'go.mod', 'go.sum']) hash.update(readFileSync(join(deploycheckSource, file)));
  const digest = hash.digest('hex');
  const ready = () => existsSync(bin) && existsSync(stamp) && readFileSync(stamp, 'utf8') === digest;
  if (ready()) return bin;
  return withLock(() => {
    if (ready()) return bin;
    mkdirSync(binDir, { recursive: true });
    const staging = join(binDir, `deploycheck-${process.pid}`);
    execFileSync(go(), ['build', '-o', staging, '.'], {
      cwd: deploycheckSource,
      env: goEnv(),
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: TOOLS_TIMEOUT_MS,
    });
    renameSync(staging, bin);
    writeFileSync(stamp, digest);
    return bin;
  });
}

/** Runs a tool; answers stdout, or throws with its stderr. */
export function run(bin: string, args: string[]): string {
  try {
    return execFileSync(bin, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${bin} ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}
