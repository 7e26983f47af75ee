import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { InputTooLarge, readInputFile, readInputText } from '../src/input-file.js';

const dir = mkdtempSync(join(tmpdir(), 'stitch-input-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a file of up to maxBytes is read whole, across chunks', () => {
  const path = join(dir, 'fits.txt');
  const text = 'é'.repeat(100_000); // 200 000 bytes: several chunks, a character split between two
  writeFileSync(path, text);
  assert.equal(readInputText(path, 200_000, 'graph'), text);
  assert.equal(readInputFile(join(dir, 'fits.txt'), 200_000, 'graph').length, 200_000);
});

test('one byte more is refused, naming the file and the limit, with an exit status for bad input', () => {
  const path = join(dir, 'over.txt');
  writeFileSync(path, 'x'.repeat(1001));
  assert.throws(
    () => readInputText(path, 1000, 'catalog'),
    (e: unknown) =>
      e instanceof InputTooLarge &&
      e.code === 'CLI_INPUT_TOO_LARGE' &&
      e.exitCode === 2 &&
      e.message === `the catalog ${path} is larger than 1000 bytes, the most this command reads`,
  );
});

test('a device that never ends is refused after maxBytes, not read until memory runs out', () => {
  assert.throws(() => readInputFile('/dev/zero', 1 << 20, 'graph'), InputTooLarge);
});

test("a missing file fails with Node's own error", () => {
  assert.throws(
    () => readInputText(join(dir, 'missing'), 10, 'graph'),
    (e: { code?: string }) => e.code === 'ENOENT',
  );
});
