// Where a node's operators get compiled kernels: `--kernel-key` (fetch what a trusted publisher put in
// the cluster's object store, verified), `--kernel-signing-key` (publish what this node compiles, signed),
// `--kernel-unsigned` (fetch unsigned: every writer of the store trusted). None: compile locally only.
import {
  KERNEL_STORE_MAX_BYTES,
  type KernelOrigin,
  KernelSource,
  kernelStoreName,
  onKernelObtained,
  setKernelSource,
} from '@stitch/compiler';
import { type Cluster, InvalidOptions } from '@stitch/runtime';
import type { Command } from 'commander';
import { InputTooLarge, MAX_KEY_FILE_BYTES, readInputText } from './input-file.js';

export interface KernelFlags {
  kernelKey?: string[];
  kernelSigningKey?: string;
  kernelUnsigned?: boolean;
}

export function addKernelOptions(command: Command): Command {
  return command
    .option(
      '--kernel-key <pem...>',
      "trusted kernel publishers' ed25519 public keys: fetch their signed kernels from the cluster's object store instead of compiling",
    )
    .option(
      '--kernel-signing-key <pem>',
      'ed25519 private key: sign and publish to the object store every kernel this node compiles',
    )
    .option(
      '--kernel-unsigned',
      'fetch unsigned kernels too (only if every writer of the object store is trusted: they can run code here)',
    );
}

function readPem(file: string, what: string): string {
  try {
    return readInputText(file, MAX_KEY_FILE_BYTES, what);
  } catch (err) {
    if (err instanceof InputTooLarge) throw err;
    throw new InvalidOptions(`could not read the ${what} ${file}: ${(err as Error).message}`);
  }
}

/**
 * Logs each kernel this process compiles or fetches, with the counts so far: a first compile takes
 * seconds per kernel, and a node should say what it is doing meanwhile (cached ones are only counted).
 */
export function logKernelProgress(log: (line: string) => void): () => void {
  const n: Record<KernelOrigin, number> = { compiled: 0, fetched: 0, cached: 0 };
  return onKernelObtained((e) => {
    n[e.origin]++;
    if (e.origin === 'cached') return;
    log(
      `kernel ${e.spec.op} (${e.target}) ${e.origin} in ${Math.round(e.ms)} ms; so far ${n.compiled} compiled, ${n.fetched} fetched, ${n.cached} from the cache`,
    );
  });
}

/** Sets this process's kernel source from the flags; returns a line saying what it does, or undefined. */
export async function useKernelFlags(
  cluster: Cluster,
  flags: KernelFlags,
  log: (line: string) => void,
): Promise<string | undefined> {
  const keys = (flags.kernelKey ?? []).map((f) => readPem(f, 'kernel publisher key'));
  const signingKey = flags.kernelSigningKey
    ? readPem(flags.kernelSigningKey, 'kernel signing key')
    : undefined;
  if (!keys.length && !signingKey && !flags.kernelUnsigned) return undefined;
  if (keys.length && flags.kernelUnsigned)
    throw new InvalidOptions(
      '--kernel-key and --kernel-unsigned exclude each other: trust keys, or every writer',
    );
  const bucket = kernelStoreName(cluster.name);
  // A publisher creates the store where it may; a fetching node opens it (cluster init makes it).
  const store = await cluster
    .objectStore(bucket, { create: signingKey !== undefined, maxBytes: KERNEL_STORE_MAX_BYTES })
    .catch((err) => {
      throw new InvalidOptions(
        `cannot open the kernel store ${bucket} (${(err as Error).message}); run stitch cluster init first`,
      );
    });
  setKernelSource(
    new KernelSource({
      store,
      ...(keys.length ? { trustedKeys: keys } : {}),
      ...(flags.kernelUnsigned ? { allowUnsigned: true } : {}),
      ...(signingKey ? { signingKey } : {}),
      onRefused: (spec, why) => log(`kernel ${spec.op}: published artifact refused (${why}); compiled here`),
    }),
  );
  const does = [
    keys.length ? `fetches kernels signed by ${keys.length} trusted key(s)` : '',
    flags.kernelUnsigned ? 'fetches unsigned kernels' : '',
    signingKey ? 'publishes the kernels it compiles, signed' : '',
  ].filter(Boolean);
  return `kernel store ${bucket}: this node ${does.join(' and ')}`;
}
