import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ArtifactIntegrity, ArtifactUntrusted } from './errors.js';
import { generateKernel } from './generate.js';
import type { ArgSpec, KernelSpec } from './spec.js';
import { entryName, kernelArgs } from './spec.js';
import type { Target } from './targets.js';
import { LOWERING, linker, runTool, SCHEDULE, toolchainVersion } from './toolchain.js';

/**
 * A temporary file name part no other write can share: two compilations of the same kernel in one
 * process within one millisecond (concurrent ops asking for it) once renamed each other's file away.
 */
const tmpSuffix = () => `${process.pid}.${randomUUID()}`;

/**
 * What a compile killed half-way leaves in the cache dir: our own `.tmp` files (the object clang
 * writes among them), and the object older versions had clang link from (`--XXXXXX.o`, in TMPDIR).
 */
const TEMPORARY = /\.tmp(\.(so|json|o))?$|^--[0-9a-f]{6}\.o$/;
/** Older than this, a temporary belongs to no compile still running (one is killed after 2 min). */
const STALE_TEMPORARY_MS = 60 * 60 * 1000;
const swept = new Set<string>();

/** Removes the stale temporaries in `dir`, once per directory and process; never throws. */
async function sweepTemporaries(dir: string): Promise<void> {
  if (swept.has(dir)) return;
  swept.add(dir);
  const names = await readdir(dir).catch(() => [] as string[]);
  const before = Date.now() - STALE_TEMPORARY_MS;
  for (const name of names.filter((n) => TEMPORARY.test(n))) {
    const path = join(dir, name);
    const s = await stat(path).catch(() => undefined);
    if (s?.isFile() && s.mtimeMs < before) await unlink(path).catch(() => undefined);
  }
}

/** What a node needs to run an artifact without the toolchain. Stored as `<hash>.json`. */
export interface KernelManifest {
  /** Content hash: SHA-256 of MLIR text, pipeline, target and toolchain version. */
  hash: string;
  spec: KernelSpec;
  target: Target;
  entryPoints: { symbol: string; args: ArgSpec[] }[];
  /** SHA-256 of the shared object's bytes; the native loader refuses a file that does not match. */
  soSha256: string;
  soBytes: number;
  pipeline: string;
  toolchain: string;
}

export interface Artifact {
  manifest: KernelManifest;
  /** Path of the shared object in the cache dir. */
  soPath: string;
  /** True when it came from the disk cache rather than a fresh compile. */
  cached: boolean;
}

export interface CompileOptions {
  target: Target;
  /** @default $STITCH_KERNEL_CACHE, then ~/.cache/stitch/kernels */
  cacheDir?: string;
}

export function defaultCacheDir(): string {
  return process.env.STITCH_KERNEL_CACHE || join(homedir(), '.cache', 'stitch', 'kernels');
}

/** A content hash as used in file and object names: SHA-256, 64 lowercase hex characters. */
export const CONTENT_HASH = /^[0-9a-f]{64}$/;

/** Throws `ArtifactUntrusted` unless `hash` is 64 lowercase hex characters; call before any use as a name. */
export function assertContentHash(hash: unknown, what: string): asserts hash is string {
  if (typeof hash !== 'string' || !CONTENT_HASH.test(hash)) {
    const shown = typeof hash === 'string' ? JSON.stringify(hash.slice(0, 80)) : typeof hash;
    throw new ArtifactUntrusted(
      `${what} must be a SHA-256 content hash (64 lowercase hex characters), got ${shown}; ` +
        'it names files and object-store entries, so nothing else is accepted',
    );
  }
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Compiles a kernel spec for a target, or returns the cached artifact with the same content hash. */
export async function compileKernel(spec: KernelSpec, options: CompileOptions): Promise<Artifact> {
  const { target } = options;
  const dir = options.cacheDir ?? defaultCacheDir();
  const { mlir, scheduled } = generateKernel(spec, target);
  const optArgs = [...(scheduled ? SCHEDULE : []), ...LOWERING];
  // glibc's libmvec gives the loop vectoriser SIMD exp/sin/cos (softmax, SwiGLU, RoPE).
  const clangArgs = [
    '-O3',
    '-c',
    '-fPIC',
    `-march=${target}`,
    '-fveclib=libmvec',
    '-Wno-override-module',
    '-x',
    'ir',
    '-',
  ];
  // clang compiles, and the linker its driver would run links, called directly: the driver starting
  // again to link cost more than the link (0.28 against 0.17 s a kernel). libgcc: builtins code may call.
  const ldArgs = ['-shared', '--hash-style=gnu', '--build-id'];
  const libs = ['-lmvec', '-lm'];
  const pipeline = `mlir-opt-19 ${optArgs.join(' ')} | mlir-translate-19 --mlir-to-llvmir | clang-19 ${clangArgs.join(' ')} && ld ${[...ldArgs, ...libs].join(' ')} libgcc.a`;
  const toolchain = await toolchainVersion();
  const hash = sha256([mlir, pipeline, target, toolchain].join('\0'));
  const soPath = join(dir, `${hash}.so`);
  const cached = await readCached(dir, hash);
  if (cached) return { manifest: cached, soPath, cached: true };

  const name = entryName(spec);
  const llvmDialect = await runTool('mlir-opt-19', optArgs, mlir, 'mlir-opt-19', name);
  const llvmIr = await runTool(
    'mlir-translate-19',
    ['--mlir-to-llvmir'],
    llvmDialect,
    'mlir-translate-19',
    name,
  );
  await mkdir(dir, { recursive: true });
  await sweepTemporaries(dir);
  // Write under unique names and rename: a concurrent compile of the same kernel never sees half a file.
  const suffix = tmpSuffix();
  const tmpObject = join(dir, `${hash}.${suffix}.tmp.o`);
  const tmp = join(dir, `${hash}.${suffix}.tmp.so`);
  const { ld, libgcc } = await linker();
  try {
    await runTool('clang-19', [...clangArgs, '-o', tmpObject], llvmIr, 'clang-19', name, dir);
    // Objects before libraries: ld resolves an archive (libgcc.a) only for symbols already wanted.
    await runTool(ld, [...ldArgs, '-o', tmp, tmpObject, ...libs, libgcc], '', 'ld', name, dir);
  } finally {
    await unlink(tmpObject).catch(() => undefined);
  }
  const bytes = await readFile(tmp);
  const manifest: KernelManifest = {
    hash,
    spec,
    target,
    entryPoints: [{ symbol: `_mlir_ciface_${name}`, args: kernelArgs(spec) }],
    soSha256: sha256(bytes),
    soBytes: bytes.length,
    pipeline,
    toolchain,
  };
  await rename(tmp, soPath);
  await writeManifest(dir, manifest);
  return { manifest, soPath, cached: false };
}

/** The manifest of a cached artifact whose shared object still matches it; null otherwise. */
async function readCached(dir: string, hash: string): Promise<KernelManifest | null> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, `${hash}.json`), 'utf8')) as KernelManifest;
    const bytes = await readFile(join(dir, `${hash}.so`));
    return sha256(bytes) === manifest.soSha256 ? manifest : null;
  } catch {
    return null;
  }
}

export async function writeManifest(dir: string, manifest: KernelManifest): Promise<void> {
  assertContentHash(manifest.hash, 'manifest.hash');
  const tmp = join(dir, `${manifest.hash}.${tmpSuffix()}.tmp.json`);
  await writeFile(tmp, JSON.stringify(manifest, null, 2));
  await rename(tmp, join(dir, `${manifest.hash}.json`));
}

/** Stores fetched bytes in the cache after checking them against the manifest. */
export async function storeArtifact(
  dir: string,
  manifest: KernelManifest,
  so: Uint8Array,
): Promise<Artifact> {
  assertContentHash(manifest.hash, 'manifest.hash');
  if (sha256(so) !== manifest.soSha256) {
    throw new ArtifactIntegrity(
      `artifact ${manifest.hash}: shared object bytes do not match the manifest SHA-256`,
    );
  }
  await mkdir(dir, { recursive: true });
  const soPath = join(dir, `${manifest.hash}.so`);
  const tmp = `${soPath}.${tmpSuffix()}.tmp`;
  await writeFile(tmp, so);
  await rename(tmp, soPath);
  await writeManifest(dir, manifest);
  return { manifest, soPath, cached: false };
}
