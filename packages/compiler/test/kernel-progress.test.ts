// obtainKernel tells its listeners what it delivered and from where (a node prints compile progress).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type KernelObtained, type KernelSpec, obtainKernel, onKernelObtained } from '../src/index.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'stitch-progress-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

test('a compiled kernel, then the same from the cache, reach the listener; a stopped listener hears nothing', async () => {
  const seen: KernelObtained[] = [];
  const stop = onKernelObtained((e) => seen.push(e));
  const broken = onKernelObtained(() => {
    throw new Error('a listener that fails does not fail the kernel');
  });
  const spec: KernelSpec = { op: 'nn.softmax', rows: null, cols: 16 };
  await obtainKernel(spec, { target: 'x86-64', cacheDir });
  await obtainKernel(spec, { target: 'x86-64', cacheDir });
  stop();
  broken();
  await obtainKernel(spec, { target: 'x86-64', cacheDir });
  assert.deepEqual(
    seen.map((e) => [e.spec.op, e.target, e.origin]),
    [
      ['nn.softmax', 'x86-64', 'compiled'],
      ['nn.softmax', 'x86-64', 'cached'],
    ],
  );
  assert.ok(seen.every((e) => e.ms >= 0));
});
