import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pinMmapThreshold } from '../src/index.js';

const child = fileURLToPath(new URL('./fixtures/freed-memory.ts', import.meta.url));
const retainedMiB = (mode: 'pin' | 'no') => {
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', '--import', '@stitch/typescript-loader', child, mode],
    { encoding: 'utf8' },
  );
  return JSON.parse(out) as { pinned: boolean; retainedMiB: number };
};
const glibc = Boolean(
  (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } })?.header?.glibcVersionRuntime,
);

test('a pinned mmap threshold returns freed megabyte arrays to the OS', {
  skip: !glibc && 'glibc only',
}, () => {
  // Without it, the 16 MiB array freed first raises glibc's threshold and the 1 MiB arrays freed
  // later stay resident (the heap cannot shrink past the 64 KiB arrays kept between them).
  const unpinned = retainedMiB('no');
  assert.equal(unpinned.pinned, false);
  assert.ok(
    unpinned.retainedMiB >= 24,
    `unpinned: ${unpinned.retainedMiB} MiB stayed resident (expected most of 48)`,
  );
  const pinned = retainedMiB('pin');
  assert.equal(pinned.pinned, true);
  assert.ok(pinned.retainedMiB < 12, `pinned: ${pinned.retainedMiB} MiB of 48 stayed resident`);
});

test('pinMmapThreshold refuses a threshold glibc would not take', () => {
  assert.throws(() => pinMmapThreshold(64 * 1024 * 1024), /0 to 32 MiB/);
  assert.throws(() => pinMmapThreshold(-1), /0 to 32 MiB/);
});
