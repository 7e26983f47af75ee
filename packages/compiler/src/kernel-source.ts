// Where a node gets a kernel: from the cluster's object store when a trusted publisher has put one
// there for this spec and target, else from its own toolchain. A published artifact is found through
// `spec-<key>.ref` (the artifact's content hash), then fetched and verified as fetchArtifact does, and
// must describe exactly the spec and target asked for: a signed artifact of another kernel is refused.
import type { KeyObject } from 'node:crypto';
import type { ObjectStore } from '@nats-io/obj';
import { type Artifact, assertContentHash, compileKernel, sha256 } from './artifact.js';
import { ArtifactNotFound, ArtifactUntrusted } from './errors.js';
import { fetchArtifact, getBounded, publishArtifact } from './objectstore.js';
import { sortKeys } from './signing.js';
import type { KernelSpec } from './spec.js';
import type { Target } from './targets.js';

export interface KernelSourceOptions {
  /** The cluster's artifact store (`stitch_<cluster>_kernels`). */
  store: ObjectStore;
  /** ed25519 public keys of trusted publishers (PEM or KeyObject); see fetchArtifact. */
  trustedKeys?: readonly (string | KeyObject)[];
  /** Take unsigned artifacts: only where every writer of the store is trusted. */
  allowUnsigned?: boolean;
  /** Sign and publish what this process compiles itself (a coordinator or a build step holds it). */
  signingKey?: string | KeyObject;
  /** @default $STITCH_KERNEL_CACHE, then ~/.cache/stitch/kernels */
  cacheDir?: string;
  /** Told when a published artifact was refused and the kernel compiled here instead. */
  onRefused?: (spec: KernelSpec, reason: string) => void;
}

export type KernelOrigin = 'fetched' | 'compiled' | 'cached';

/** The object store of a cluster's published kernels. */
export function kernelStoreName(cluster: string): string {
  return `stitch_${cluster}_kernels`;
}

/**
 * Bytes the kernel store holds at most (`stitch cluster init` makes it so): far above the artifacts
 * of every kernel a cluster compiles (a few MiB each), and a bound on what a publisher can fill.
 */
export const KERNEL_STORE_MAX_BYTES = 4 * 1024 ** 3;

/** The object naming a spec's published artifact: SHA-256 of the target and the spec's canonical JSON. */
export function specRefName(spec: KernelSpec, target: Target): string {
  return `spec-${sha256(`${target}\0${JSON.stringify(sortKeys(spec))}`)}.ref`;
}

const sameSpec = (a: unknown, b: unknown) => JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));

export class KernelSource {
  readonly #o: KernelSourceOptions;

  constructor(options: KernelSourceOptions) {
    if (!options.signingKey && !options.allowUnsigned && !options.trustedKeys?.length)
      throw new ArtifactUntrusted(
        'a KernelSource needs trustedKeys (the publishers it takes artifacts from), a signingKey (it ' +
          'publishes), or allowUnsigned: true',
      );
    this.#o = options;
  }

  /** The kernel for `spec` on `target`, and where it came from. */
  async obtain(spec: KernelSpec, target: Target): Promise<Artifact & { origin: KernelOrigin }> {
    const o = this.#o;
    if (o.trustedKeys?.length || o.allowUnsigned) {
      try {
        const fetched = await this.#fetch(spec, target);
        if (fetched) return { ...fetched, origin: 'fetched' };
      } catch (err) {
        // Refused (bad signature, other spec, corrupt bytes): this node's own compile is trusted instead.
        o.onRefused?.(spec, (err as Error).message);
      }
    }
    const built = await compileKernel(spec, { target, ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}) });
    // Published once per content hash: a coordinator that compiles from its cache does not re-upload.
    const refName = specRefName(spec, target);
    const published = o.signingKey ? await getBounded(o.store, refName, 64) : null;
    if (o.signingKey && new TextDecoder().decode(published ?? new Uint8Array()) !== built.manifest.hash) {
      await publishArtifact(o.store, built, { signingKey: o.signingKey });
      await o.store.putBlob({ name: refName }, new TextEncoder().encode(built.manifest.hash));
    }
    return { ...built, origin: built.cached ? 'cached' : 'compiled' };
  }

  async #fetch(spec: KernelSpec, target: Target): Promise<Artifact | undefined> {
    const ref = await getBounded(this.#o.store, specRefName(spec, target), 64);
    if (!ref) return undefined;
    const hash = new TextDecoder().decode(ref);
    assertContentHash(hash, `the object store's ${specRefName(spec, target)}`);
    const o = this.#o;
    let artifact: Artifact;
    try {
      artifact = await fetchArtifact(o.store, hash, {
        ...(o.allowUnsigned ? { allowUnsigned: true } : { trustedKeys: o.trustedKeys ?? [] }),
        ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
      });
    } catch (err) {
      if (err instanceof ArtifactNotFound) return undefined;
      throw err;
    }
    if (artifact.manifest.target !== target || !sameSpec(artifact.manifest.spec, spec))
      throw new ArtifactUntrusted(
        `artifact ${hash} is signed but describes another kernel than ${specRefName(spec, target)} asks for; ` +
          'republish it from the publisher',
      );
    return artifact;
  }
}

let processSource: KernelSource | undefined;

/** Makes `obtainKernel` use `source` in this process (a node sets it once it has joined its cluster). */
export function setKernelSource(source: KernelSource | undefined): void {
  processSource = source;
}

/**
 * The kernel for `spec`: through this process's KernelSource when one is set (published artifacts
 * first), else compiled (or taken from the disk cache) by the local toolchain.
 */
export async function obtainKernel(
  spec: KernelSpec,
  options: { target: Target; cacheDir?: string },
): Promise<Artifact & { origin: KernelOrigin }> {
  const t0 = performance.now();
  const got = processSource
    ? await processSource.obtain(spec, options.target)
    : await compileKernel(spec, options).then((built) => ({
        ...built,
        origin: (built.cached ? 'cached' : 'compiled') as KernelOrigin,
      }));
  const event = { spec, target: options.target, origin: got.origin, ms: performance.now() - t0 };
  for (const listener of obtained) {
    try {
      listener(event);
    } catch {
      // A listener reports progress; its failure is not the kernel's.
    }
  }
  return got;
}

/** One kernel obtainKernel delivered: which, for what target, from where, and how long it took. */
export interface KernelObtained {
  spec: KernelSpec;
  target: Target;
  origin: KernelOrigin;
  ms: number;
}

const obtained = new Set<(e: KernelObtained) => void>();

/**
 * Calls `listener` for every kernel this process obtains (progress of a long compile: a node prints
 * it); returns the function that stops it.
 */
export function onKernelObtained(listener: (e: KernelObtained) => void): () => void {
  obtained.add(listener);
  return () => obtained.delete(listener);
}
