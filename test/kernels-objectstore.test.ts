import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Objm } from '@nats-io/obj';
import { ArtifactNotFound, compileKernel, fetchArtifact, publishArtifact } from '@stitch/compiler';
import { KernelRuntime, reference } from '@stitch/kernels';
import { natsForTests } from './fixtures/nats-connection.js';

const server = natsForTests();
const dirs = [mkdtempSync(join(tmpdir(), 'stitch-os-a-')), mkdtempSync(join(tmpdir(), 'stitch-os-b-'))];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('a compiled artifact round-trips through a JetStream object store and runs from the fetched copy', async () => {
  const store = await new Objm(server.nc).create('stitch-kernels');
  const spec = { op: 'nn.matvec', m: 8, k: 128 } as const;
  const built = await compileKernel(spec, { target: 'x86-64', cacheDir: dirs[0]! });
  await publishArtifact(store, built);

  // A second node with an empty cache and no compile step: fetch by content hash, verify, run.
  const fetched = await fetchArtifact(store, built.manifest.hash, dirs[1]!);
  assert.deepEqual(fetched.manifest, built.manifest);
  assert.ok(fetched.soPath.startsWith(dirs[1]!));
  const a = Float32Array.from({ length: 8 * 128 }, (_, i) => Math.sin(i));
  const x = Float32Array.from({ length: 128 }, (_, i) => Math.cos(i));
  const y = new Float32Array(8);
  await new KernelRuntime().load(fetched).run([a, x, y]);
  assert.ok(reference.relativeError(y, reference.matvec(a, x, 8, 128)) <= 1e-4);

  await assert.rejects(fetchArtifact(store, 'f'.repeat(64), dirs[1]!), ArtifactNotFound);
});
