import { readFile } from 'node:fs/promises';
import type { ObjectStore } from '@nats-io/obj';
import type { Artifact, KernelManifest } from './artifact.js';
import { defaultCacheDir, storeArtifact } from './artifact.js';
import { ArtifactIntegrity, ArtifactNotFound } from './errors.js';

/** Puts `<hash>.so` and `<hash>.json` into a JetStream object store (the caller owns the connection). */
export async function publishArtifact(store: ObjectStore, artifact: Artifact): Promise<void> {
  const { hash } = artifact.manifest;
  await store.putBlob({ name: `${hash}.so` }, new Uint8Array(await readFile(artifact.soPath)));
  await store.putBlob({ name: `${hash}.json` }, new TextEncoder().encode(JSON.stringify(artifact.manifest)));
}

/**
 * Fetches an artifact by content hash into the local cache, checking the shared object against the
 * manifest's SHA-256. Throws `ArtifactNotFound` or `ArtifactIntegrity`.
 */
export async function fetchArtifact(
  store: ObjectStore,
  hash: string,
  cacheDir = defaultCacheDir(),
): Promise<Artifact> {
  const manifestBytes = await store.getBlob(`${hash}.json`);
  const so = await store.getBlob(`${hash}.so`);
  if (!manifestBytes || !so) throw new ArtifactNotFound(hash);
  let manifest: KernelManifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as KernelManifest;
  } catch (cause) {
    throw new ArtifactIntegrity(`artifact ${hash}: its manifest in the object store is not valid JSON`, {
      cause,
    });
  }
  return storeArtifact(cacheDir, manifest, so);
}
