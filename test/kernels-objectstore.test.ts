import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import { type ObjectStore, Objm } from '@nats-io/obj';
import {
  type Artifact,
  ArtifactIntegrity,
  ArtifactNotFound,
  ArtifactUntrusted,
  compileKernel,
  fetchArtifact,
  generatePublisherKey,
  KernelSource,
  publishArtifact,
  sha256,
  specRefName,
} from '@stitch/compiler';
import { KernelRuntime, reference } from '@stitch/kernels';
import { natsForTests } from './fixtures/nats-connection.js';

const server = natsForTests();
const root = mkdtempSync(join(tmpdir(), 'stitch-os-'));
let dirs = 0;
const freshDir = () => join(root, `cache-${dirs++}`);
after(() => rmSync(root, { recursive: true, force: true }));

// One process plays both the publisher and the fetching node: one key pair, passed on both sides.
const publisher = generatePublisherKey();
const stranger = generatePublisherKey();
let store: ObjectStore;
let built: Artifact;
let ready: Promise<void> | undefined;
/** Compiles and publishes once, on first use (after the nats fixture's before() hook). */
function setup(): Promise<void> {
  ready ??= (async () => {
    store = await new Objm(server.nc).create('stitch-kernels');
    built = await compileKernel(
      { op: 'nn.matvec', m: 8, k: 128 },
      { target: 'x86-64', cacheDir: freshDir() },
    );
    await publishArtifact(store, built, { signingKey: publisher.privateKey });
  })();
  return ready;
}

const untrusted = (message: RegExp) => (e: unknown) =>
  e instanceof ArtifactUntrusted && e.code === 'ARTIFACT_UNTRUSTED' && message.test(e.message);

test('a signed compiled artifact round-trips through a JetStream object store and runs from the fetched copy', async () => {
  await setup();
  const info = await store.info(`${built.manifest.hash}.sig`);
  assert.ok(info && info.size > 0, 'publish wrote the signature object');

  // A second node with an empty cache and no compile step: fetch by content hash, verify, run.
  const dir = freshDir();
  const fetched = await fetchArtifact(store, built.manifest.hash, {
    cacheDir: dir,
    trustedKeys: [publisher.publicKey],
  });
  assert.deepEqual(fetched.manifest, built.manifest);
  assert.ok(fetched.soPath.startsWith(dir));
  const a = Float32Array.from({ length: 8 * 128 }, (_, i) => Math.sin(i));
  const x = Float32Array.from({ length: 128 }, (_, i) => Math.cos(i));
  const y = new Float32Array(8);
  await new KernelRuntime().load(fetched).run([a, x, y]);
  assert.ok(reference.relativeError(y, reference.matvec(a, x, 8, 128)) <= 1e-4);

  await assert.rejects(
    fetchArtifact(store, 'f'.repeat(64), { cacheDir: freshDir(), trustedKeys: [publisher.publicKey] }),
    ArtifactNotFound,
  );
});

test('a key that is not the publisher’s, or no trustedKeys at all, is rejected', async () => {
  await setup();
  const dir = freshDir();
  await assert.rejects(
    fetchArtifact(store, built.manifest.hash, { cacheDir: dir, trustedKeys: [stranger.publicKey] }),
    untrusted(/not among the 1 options\.trustedKeys/),
  );
  await assert.rejects(
    fetchArtifact(store, built.manifest.hash, { cacheDir: dir }),
    untrusted(/options\.trustedKeys must list/),
  );
  assert.equal(existsSync(dir), false);
});

test('a manifest altered in the store (soSha256 replaced along with the .so bytes) is ARTIFACT_UNTRUSTED', async () => {
  await setup();
  // The attacker's "kernel": another artifact's bytes, with a manifest that matches them.
  const evil = await compileKernel(
    { op: 'nn.matvec', m: 16, k: 128 },
    { target: 'x86-64', cacheDir: freshDir() },
  );
  const hash = built.manifest.hash;
  const tampered = { ...built.manifest, soSha256: evil.manifest.soSha256, soBytes: evil.manifest.soBytes };
  const own = await new Objm(server.nc).create('stitch-kernels-tampered');
  await publishArtifact(own, built, { signingKey: publisher.privateKey });
  await own.putBlob({ name: `${hash}.so` }, new Uint8Array(await readFile(evil.soPath)));
  await own.putBlob({ name: `${hash}.json` }, new TextEncoder().encode(JSON.stringify(tampered)));
  const dir = freshDir();
  await assert.rejects(
    fetchArtifact(own, hash, { cacheDir: dir, trustedKeys: [publisher.publicKey] }),
    untrusted(/altered/),
  );
  assert.equal(existsSync(dir), false);
  assert.equal(sha256(new Uint8Array(await readFile(evil.soPath))), tampered.soSha256);
});

test('chunks added to a stored manifest are refused as they come, not buffered whole before its digest fails', async () => {
  await setup();
  const own = await new Objm(server.nc).create('stitch-kernels-padded');
  await publishArtifact(own, built, { signingKey: publisher.privateKey });
  const hash = built.manifest.hash;
  const info = await own.info(`${hash}.json`);
  assert.ok(info);
  // A writer to the bucket appends chunks under the manifest's nuid; its metadata still says its size.
  const js = jetstream(server.nc);
  for (let i = 0; i < 8; i++)
    await js.publish(`$O.stitch-kernels-padded.C.${info.nuid}`, new Uint8Array(128 * 1024));
  await assert.rejects(
    fetchArtifact(own, hash, { cacheDir: freshDir(), trustedKeys: [publisher.publicKey] }),
    (e: unknown) => e instanceof ArtifactIntegrity && /more bytes than its \d+/.test(e.message),
  );
});

test('hashes: not 64 hex is rejected before any access; a manifest for another hash is rejected', async () => {
  await setup();
  const dir = freshDir();
  for (const hash of ['../../tmp/x', built.manifest.hash.toUpperCase(), `${built.manifest.hash}.so`]) {
    await assert.rejects(
      fetchArtifact(store, hash, { cacheDir: dir, trustedKeys: [publisher.publicKey] }),
      untrusted(/64 lowercase hex characters/),
    );
  }
  // The validly signed objects of `built`, copied under another hash.
  const other = sha256('some other artifact');
  for (const ext of ['so', 'json', 'sig']) {
    const bytes = await store.getBlob(`${built.manifest.hash}.${ext}`);
    await store.putBlob({ name: `${other}.${ext}` }, bytes);
  }
  await assert.rejects(
    fetchArtifact(store, other, { cacheDir: dir, trustedKeys: [publisher.publicKey] }),
    untrusted(/describes artifact .* not the one requested/),
  );
  assert.equal(existsSync(dir), false);
});

test('a node takes a published kernel from the store instead of compiling it, and only the one it asked for', async () => {
  await setup();
  const spec = { op: 'nn.matvec' as const, m: 4, k: 64 };
  const publishing = new KernelSource({ store, signingKey: publisher.privateKey, cacheDir: freshDir() });
  const made = await publishing.obtain(spec, 'x86-64');
  assert.equal(made.origin, 'compiled');
  assert.ok(await store.info(specRefName(spec, 'x86-64')), 'the spec ref is published');

  const refused: string[] = [];
  const node = (keys: string[]) =>
    new KernelSource({
      store,
      trustedKeys: keys,
      cacheDir: freshDir(),
      onRefused: (_s, why) => refused.push(why),
    });
  const fetched = await node([publisher.publicKey]).obtain(spec, 'x86-64');
  assert.equal(fetched.origin, 'fetched');
  assert.deepEqual(fetched.manifest, made.manifest);
  const a = Float32Array.from({ length: 4 * 64 }, (_, i) => Math.sin(i));
  const x = Float32Array.from({ length: 64 }, (_, i) => Math.cos(i));
  const y = new Float32Array(4);
  await new KernelRuntime().load(fetched).run([a, x, y]);
  assert.ok(reference.relativeError(y, reference.matvec(a, x, 4, 64)) <= 1e-4);
  assert.deepEqual(refused, []);

  // A node that does not trust the publisher compiles its own (its toolchain is trusted as its own).
  const own = await node([stranger.publicKey]).obtain(spec, 'x86-64');
  assert.notEqual(own.origin, 'fetched');
  assert.equal(refused.length, 1);
  assert.match(refused[0]!, /trustedKeys/);

  // A ref that points at another (validly signed) kernel is refused: the manifest must describe the spec asked for.
  const other = { op: 'nn.matvec' as const, m: 8, k: 128 };
  await store.putBlob({ name: specRefName(other, 'x86-64') }, new TextEncoder().encode(made.manifest.hash));
  const swapped = await node([publisher.publicKey]).obtain(other, 'x86-64');
  assert.notEqual(swapped.origin, 'fetched');
  assert.deepEqual(swapped.manifest.spec, other);
  assert.match(refused.at(-1)!, /another kernel/);
});
