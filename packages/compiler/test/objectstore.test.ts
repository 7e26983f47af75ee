// publishArtifact / fetchArtifact against an in-memory object store (the real JetStream one is
// covered by test/kernels-objectstore.test.ts): signatures, trusted keys, hash checks, size limits.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { ObjectStore } from '@nats-io/obj';
import {
  type Artifact,
  ArtifactIntegrity,
  ArtifactUntrusted,
  CompilerErrorCode,
  canonicalManifestBytes,
  fetchArtifact,
  generatePublisherKey,
  type KernelManifest,
  MAX_MANIFEST_BYTES,
  publishArtifact,
  publisherKeyId,
  sha256,
} from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'stitch-objstore-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `cache-${dirs++}`);

/** The part of ObjectStore that publish/fetch use, recording every call. */
class MemoryStore {
  readonly objects = new Map<string, Uint8Array>();
  readonly calls: string[] = [];
  async info(name: string) {
    this.calls.push(`info ${name}`);
    const bytes = this.objects.get(name);
    return bytes ? { name, size: bytes.length, deleted: false, options: {} } : null;
  }
  /** As nats.js answers: the info at once, the bytes as a stream (`read <name>` once it is read). */
  async get(name: string) {
    this.calls.push(`get ${name}`);
    const bytes = this.objects.get(name);
    if (!bytes) return null;
    const calls = this.calls;
    return {
      info: { name, size: bytes.length, deleted: false, options: {} },
      error: Promise.resolve(null),
      data: new ReadableStream<Uint8Array>(
        {
          pull(c) {
            calls.push(`read ${name}`);
            c.enqueue(bytes);
            c.close();
          },
        },
        { highWaterMark: 0 },
      ),
    };
  }
  async putBlob(meta: { name: string }, data: Uint8Array | null) {
    this.calls.push(`putBlob ${meta.name}`);
    this.objects.set(meta.name, data ?? new Uint8Array());
    return {};
  }
  async delete(name: string) {
    this.calls.push(`delete ${name}`);
    const had = this.objects.delete(name);
    return { purged: had ? 1 : 0, success: had };
  }
  get store(): ObjectStore {
    return this as unknown as ObjectStore;
  }
  json(name: string): Record<string, unknown> {
    return JSON.parse(new TextDecoder().decode(this.objects.get(name)!)) as Record<string, unknown>;
  }
  setJson(name: string, value: unknown): void {
    this.objects.set(name, new TextEncoder().encode(JSON.stringify(value)));
  }
}

/** A fake artifact (any bytes do: nothing here loads the shared object). */
function fakeArtifact(seed: string): Artifact {
  const bytes = new TextEncoder().encode(`not really a shared object ${seed}`);
  const hash = sha256(`artifact ${seed}`);
  const soPath = join(root, `${hash}.so`);
  writeFileSync(soPath, bytes);
  const manifest: KernelManifest = {
    hash,
    spec: { op: 'nn.matvec', m: 8, k: 128 },
    target: 'x86-64',
    entryPoints: [{ symbol: '_mlir_ciface_matvec', args: [] }],
    soSha256: sha256(bytes),
    soBytes: bytes.length,
    pipeline: 'test',
    toolchain: 'test',
  };
  return { manifest, soPath, cached: false };
}

const publisher = generatePublisherKey();
const other = generatePublisherKey();

async function rejectsUntrusted(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ArtifactUntrusted, String(e));
    assert.equal(e.code, CompilerErrorCode.ArtifactUntrusted);
    assert.equal(e.code, 'ARTIFACT_UNTRUSTED');
    assert.match(e.message, message);
    return true;
  });
}

test('generatePublisherKey: PEM ed25519 keys and the public key id', () => {
  assert.match(publisher.privateKey, /^-----BEGIN PRIVATE KEY-----/);
  assert.match(publisher.publicKey, /^-----BEGIN PUBLIC KEY-----/);
  assert.match(publisher.keyId, /^[0-9a-f]{64}$/);
  assert.equal(publisherKeyId(publisher.publicKey), publisher.keyId);
  assert.equal(publisherKeyId(publisher.privateKey), publisher.keyId);
  assert.notEqual(other.keyId, publisher.keyId);
});

test('canonicalManifestBytes: sorted keys at every depth, no whitespace, domain prefix', () => {
  const { manifest } = fakeArtifact('canonical');
  const shuffled = Object.fromEntries(Object.entries(manifest).reverse()) as unknown as KernelManifest;
  shuffled.spec = { k: 128, m: 8, op: 'nn.matvec' } as KernelManifest['spec'];
  assert.deepEqual(canonicalManifestBytes(shuffled), canonicalManifestBytes(manifest));
  const text = new TextDecoder().decode(canonicalManifestBytes(manifest));
  assert.ok(text.startsWith('stitch-kernel-manifest/v1\n{"entryPoints":'));
  assert.match(text, /"spec":\{"k":128,"m":8,"op":"nn\.matvec"\}/);
  assert.doesNotMatch(text.slice(text.indexOf('\n') + 1), /\s/);
  assert.notDeepEqual(canonicalManifestBytes({ ...manifest, soBytes: 1 }), canonicalManifestBytes(manifest));
});

test('a signed artifact round-trips: publish writes <hash>.sig, fetch with the public key verifies it', async () => {
  const m = new MemoryStore();
  const artifact = fakeArtifact('roundtrip');
  const { hash } = artifact.manifest;
  await publishArtifact(m.store, artifact, { signingKey: publisher.privateKey });
  assert.deepEqual([...m.objects.keys()].sort(), [`${hash}.json`, `${hash}.sig`, `${hash}.so`]);
  const sig = m.json(`${hash}.sig`);
  assert.equal(sig.alg, 'ed25519');
  assert.equal(sig.keyId, publisher.keyId);

  const cacheDir = freshDir();
  const fetched = await fetchArtifact(m.store, hash, {
    cacheDir,
    trustedKeys: [other.publicKey, publisher.publicKey],
  });
  assert.deepEqual(fetched.manifest, artifact.manifest);
  assert.equal(fetched.soPath, join(cacheDir, `${hash}.so`));
  assert.deepEqual(readFileSync(fetched.soPath), readFileSync(artifact.soPath));

  // Key order and formatting of the stored manifest do not matter, only its content.
  const reordered = Object.fromEntries(Object.entries(artifact.manifest).reverse());
  m.objects.set(`${hash}.json`, new TextEncoder().encode(JSON.stringify(reordered, null, 4)));
  await fetchArtifact(m.store, hash, { cacheDir: freshDir(), trustedKeys: [publisher.publicKey] });
});

test('a manifest altered in the store (soSha256 and .so bytes replaced) is ARTIFACT_UNTRUSTED, nothing cached', async () => {
  const m = new MemoryStore();
  const artifact = fakeArtifact('tampered');
  const { hash } = artifact.manifest;
  await publishArtifact(m.store, artifact, { signingKey: publisher.privateKey });
  const evil = new TextEncoder().encode('attacker code');
  m.objects.set(`${hash}.so`, evil);
  m.setJson(`${hash}.json`, { ...artifact.manifest, soSha256: sha256(evil), soBytes: evil.length });
  const cacheDir = freshDir();
  await rejectsUntrusted(
    fetchArtifact(m.store, hash, { cacheDir, trustedKeys: [publisher.publicKey] }),
    /does not verify: the manifest or its signature was altered/,
  );
  assert.equal(existsSync(cacheDir), false);
  assert.ok(!m.calls.includes(`read ${hash}.so`), 'the .so is not even downloaded');

  // A signature from another (untrusted) key over the altered manifest does not help either.
  const resigned = new MemoryStore();
  await publishArtifact(
    resigned.store,
    { ...artifact, manifest: { ...artifact.manifest } },
    { signingKey: other.privateKey },
  );
  await rejectsUntrusted(
    fetchArtifact(resigned.store, hash, { cacheDir, trustedKeys: [publisher.publicKey] }),
    new RegExp(`signed by key ${other.keyId}, which is not among the 1 options.trustedKeys`),
  );
});

test('a signature by a key not in trustedKeys is rejected; the message says what to configure', async () => {
  const m = new MemoryStore();
  const artifact = fakeArtifact('wrong-key');
  await publishArtifact(m.store, artifact, { signingKey: other.privateKey });
  await rejectsUntrusted(
    fetchArtifact(m.store, artifact.manifest.hash, {
      cacheDir: freshDir(),
      trustedKeys: [publisher.publicKey],
    }),
    /not among the 1 options\.trustedKeys.*add the publisher's public key.*trustedKeys/,
  );
  // A garbage signature object is rejected too.
  m.setJson(`${artifact.manifest.hash}.sig`, { alg: 'ed25519', keyId: 'x', signature: 'AAAA' });
  await rejectsUntrusted(
    fetchArtifact(m.store, artifact.manifest.hash, { cacheDir: freshDir(), trustedKeys: [other.publicKey] }),
    /is not an ed25519 manifest signature/,
  );
});

test('unsigned artifacts: rejected with trustedKeys, taken only with allowUnsigned: true', async () => {
  const m = new MemoryStore();
  const artifact = fakeArtifact('unsigned');
  const { hash } = artifact.manifest;
  await publishArtifact(m.store, artifact, { signingKey: publisher.privateKey });
  // Republishing unsigned removes the stale signature.
  await publishArtifact(m.store, artifact, { allowUnsigned: true });
  assert.equal(m.objects.has(`${hash}.sig`), false);
  await rejectsUntrusted(
    fetchArtifact(m.store, hash, { cacheDir: freshDir(), trustedKeys: [publisher.publicKey] }),
    /is unsigned .*options\.trustedKeys.*allowUnsigned/,
  );
  const fetched = await fetchArtifact(m.store, hash, { cacheDir: freshDir(), allowUnsigned: true });
  assert.deepEqual(fetched.manifest, artifact.manifest);
});

test('fetch without trustedKeys or allowUnsigned, or with both, is rejected before touching the store', async () => {
  const m = new MemoryStore();
  const hash = fakeArtifact('options').manifest.hash;
  await rejectsUntrusted(fetchArtifact(m.store, hash), /options\.trustedKeys must list/);
  await rejectsUntrusted(fetchArtifact(m.store, hash, { trustedKeys: [] }), /options\.trustedKeys must list/);
  await rejectsUntrusted(
    fetchArtifact(m.store, hash, { trustedKeys: [publisher.publicKey], allowUnsigned: true }),
    /not both/,
  );
  // The pre-signing signature fetchArtifact(store, hash, cacheDir) from an untyped caller.
  await rejectsUntrusted(
    fetchArtifact(m.store, hash, freshDir() as unknown as { cacheDir: string }),
    /options object/,
  );
  await rejectsUntrusted(
    fetchArtifact(m.store, hash, { trustedKeys: [publisher.privateKey] }),
    /trustedKeys\[0\] is a private key/,
  );
  await rejectsUntrusted(fetchArtifact(m.store, hash, { trustedKeys: ['nonsense'] }), /not a PEM public key/);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  await rejectsUntrusted(
    fetchArtifact(m.store, hash, { trustedKeys: [rsa.publicKey] }),
    /must be an ed25519 public key/,
  );
  assert.deepEqual(m.calls, []);
});

test('publish without signingKey or allowUnsigned, or with a non-ed25519 key, writes nothing', async () => {
  const m = new MemoryStore();
  const artifact = fakeArtifact('publish-options');
  await rejectsUntrusted(publishArtifact(m.store, artifact), /pass \{ signingKey \}/);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  await rejectsUntrusted(
    publishArtifact(m.store, artifact, { signingKey: rsa.privateKey }),
    /must be an ed25519 private key/,
  );
  await rejectsUntrusted(
    publishArtifact(m.store, artifact, { signingKey: publisher.publicKey }),
    /not a PEM private key/,
  );
  // A local .so that no longer matches its manifest is not signed.
  const corrupt = fakeArtifact('publish-corrupt');
  writeFileSync(corrupt.soPath, 'changed');
  await assert.rejects(
    publishArtifact(m.store, corrupt, { signingKey: publisher.privateKey }),
    ArtifactIntegrity,
  );
  assert.deepEqual(m.calls, []);
});

test('a hash that is not 64 lowercase hex is rejected before any object or file access', async () => {
  const m = new MemoryStore();
  const cacheDir = freshDir();
  const good = fakeArtifact('hashes').manifest.hash;
  const bad = [
    '../../etc/passwd',
    good.toUpperCase(),
    good.slice(1),
    `${good}.so`,
    `${good}/`,
    '',
    ` ${good}`,
  ];
  for (const hash of bad) {
    await rejectsUntrusted(
      fetchArtifact(m.store, hash, { cacheDir, trustedKeys: [publisher.publicKey] }),
      /must be a SHA-256 content hash \(64 lowercase hex characters\)/,
    );
  }
  await rejectsUntrusted(
    fetchArtifact(m.store, 42 as unknown as string, { cacheDir, trustedKeys: [publisher.publicKey] }),
    /got number/,
  );
  const artifact = fakeArtifact('bad-publish');
  await rejectsUntrusted(
    publishArtifact(
      m.store,
      { ...artifact, manifest: { ...artifact.manifest, hash: '../x' } },
      { signingKey: publisher.privateKey },
    ),
    /artifact\.manifest\.hash must be a SHA-256 content hash/,
  );
  assert.deepEqual(m.calls, []);
  assert.equal(existsSync(cacheDir), false);
});

test('a manifest served for another hash than the one requested is rejected, even when signed', async () => {
  const m = new MemoryStore();
  const a = fakeArtifact('replay-a');
  const b = fakeArtifact('replay-b');
  await publishArtifact(m.store, a, { signingKey: publisher.privateKey });
  // Copy A's (validly signed) objects under B's name.
  for (const ext of ['so', 'json', 'sig']) {
    m.objects.set(`${b.manifest.hash}.${ext}`, m.objects.get(`${a.manifest.hash}.${ext}`)!);
  }
  const cacheDir = freshDir();
  await rejectsUntrusted(
    fetchArtifact(m.store, b.manifest.hash, { cacheDir, trustedKeys: [publisher.publicKey] }),
    new RegExp(`describes artifact "${a.manifest.hash}", not the one requested`),
  );
  // Also with allowUnsigned, and when the manifest's hash is a path.
  m.setJson(`${b.manifest.hash}.json`, { ...a.manifest, hash: '../../evil' });
  await rejectsUntrusted(
    fetchArtifact(m.store, b.manifest.hash, { cacheDir, allowUnsigned: true }),
    /describes artifact "\.\.\/\.\.\/evil"/,
  );
  assert.equal(existsSync(cacheDir), false);
});

test('oversized objects are refused before download: a .so of another size than soBytes, a huge manifest', async () => {
  const m = new MemoryStore();
  const artifact = fakeArtifact('sizes');
  const { hash } = artifact.manifest;
  await publishArtifact(m.store, artifact, { signingKey: publisher.privateKey });
  m.objects.set(`${hash}.so`, new Uint8Array(artifact.manifest.soBytes + 1));
  await assert.rejects(
    fetchArtifact(m.store, hash, { cacheDir: freshDir(), trustedKeys: [publisher.publicKey] }),
    (e: unknown) => e instanceof ArtifactIntegrity && /not the manifest’s/.test(e.message),
  );
  assert.ok(!m.calls.includes(`read ${hash}.so`));
  m.objects.set(`${hash}.json`, new Uint8Array(MAX_MANIFEST_BYTES + 1));
  m.calls.length = 0;
  await assert.rejects(
    fetchArtifact(m.store, hash, { cacheDir: freshDir(), trustedKeys: [publisher.publicKey] }),
    (e: unknown) => e instanceof ArtifactIntegrity && /more than/.test(e.message),
  );
  assert.ok(!m.calls.includes(`read ${hash}.json`));
});
