import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { compileKernel, defaultCacheDir } from '@stitch/compiler';
import { KernelRuntime } from '../src/index.js';

// The raw addon's own guards, for callers that bypass the TypeScript checks. A guard that fails
// crashes the process (abort, segfault), so each case runs in a child Node and the test reports its
// signal instead of dying with it.

// Shared with every other test and the demo: a kernel compiled once is not compiled again.
const cacheDir = defaultCacheDir();
const dir = mkdtempSync(join(tmpdir(), 'stitch-addon-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const addon = createRequire(import.meta.url).resolve('@stitch/native');
// out = a + b over rows of 4: memref<?x4xf32> arguments.
const add = await compileKernel({ op: 'nn.add', rows: null, cols: 4 }, { target: 'x86-64', cacheDir });

/**
 * Runs `body` (async JS) in a child Node with the addon as `n` and the add kernel loaded as `h`.
 * `outcome(call)` is what a call did: `ran` (it returned and its promise resolved), the name of
 * the error it threw or rejected with, or `value <v>` for a thrown non-error.
 */
function child(body: string, env: NodeJS.ProcessEnv = {}) {
  const script = `
    const n = require(${JSON.stringify(addon)});
    const r = n.loadKernel(${JSON.stringify(add.soPath)}, ${JSON.stringify(add.manifest.soSha256)}, '_mlir_ciface_add');
    if (!r.ok) throw new Error(r.message);
    const h = r.handle;
    const outcome = async (call) => {
      try {
        await call();
        return 'ran';
      } catch (e) {
        return e instanceof Error ? e.name : 'value ' + String(e);
      }
    };
    (async () => { ${body} })();`;
  const r = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr.slice(-2000) };
}

/** Builds a C source into a shared object with the toolchain the kernels are compiled with. */
function sharedObject(name: string, source: string): string {
  const out = join(dir, name);
  execFileSync('clang-19', ['-shared', '-fPIC', '-O2', '-x', 'c', '-', '-o', out, '-ldl'], { input: source });
  return out;
}

// Each call is refused with the error named (or its getter's own exception passes through), and the
// process lives on: a kernel run afterwards resolves, and so does the event loop's next turn. Calls
// that were once accepted pass the add kernel's three arguments, since the addon cannot know a
// kernel's arity (the TypeScript side checks it against the manifest).
const REFUSED: [string, string, string][] = [
  [
    'a shape of 2^31 - 1 dimensions',
    'const s = []; s.length = 2 ** 31 - 1; n.runKernel(h, [{ data: new Float32Array(1), shape: s }])',
    'RangeError',
  ],
  [
    'a shape of 2^32 - 1 dimensions',
    'const s = []; s.length = 2 ** 32 - 1; n.runKernel(h, [{ data: new Float32Array(1), shape: s }])',
    'RangeError',
  ],
  ['an argument that is null', 'n.runKernel(h, [null])', 'TypeError'],
  ['a size that is a string', "n.runKernel(h, [{ data: new Float32Array(4), shape: ['4'] }])", 'RangeError'],
  ['a size that is a BigInt', 'n.runKernel(h, [{ data: new Float32Array(4), shape: [4n] }])', 'RangeError'],
  [
    'a size whose valueOf throws',
    "n.runKernel(h, [{ data: new Float32Array(4), shape: [{ valueOf() { throw 'boom'; } }] }])",
    'RangeError',
  ],
  [
    'a size read by a getter that throws',
    "const shape = [1]; Object.defineProperty(shape, 0, { get() { throw 'boom'; } }); n.runKernel(h, [{ data: new Float32Array(4), shape }])",
    'value boom',
  ],
  [
    'a shape getter that throws',
    "n.runKernel(h, [{ data: new Float32Array(4), get shape() { throw 'boom'; } }])",
    'value boom',
  ],
  [
    'a part whose handle getter throws',
    "n.runKernelParts([{ get handle() { throw 'boom'; }, args: [] }])",
    'value boom',
  ],
  // Once thrown (TypeError) with its worker still queued, without a promise: settling it crashed.
  [
    'a string size beside an offset',
    "n.runKernel(h, [{ data: new Float32Array(4), shape: ['x'], offset: 0 }])",
    'RangeError',
  ],
  [
    'an offset that is NaN',
    'const a = new Float32Array(4); n.runKernel(h, [a, a, a].map((data) => ({ data, shape: [1, 4], offset: NaN })))',
    'RangeError',
  ],
  [
    'a fractional offset',
    'const a = new Float32Array(8); n.runKernel(h, [a, a, a].map((data) => ({ data, shape: [1, 4], offset: 0.5 })))',
    'RangeError',
  ],
  [
    'a handle that is NaN',
    'const a = new Float32Array(4); n.runKernel(NaN, [a, a, a].map((data) => ({ data, shape: [1, 4] })))',
    'RangeError',
  ],
];

for (const [name, call, expected] of REFUSED) {
  test(`the addon refuses ${name} and lives on`, () => {
    const r = child(`
      console.log(await outcome(() => { ${call}; }));
      const a = new Float32Array(8).fill(1);
      await n.runKernel(h, [a, a, a].map((data) => ({ data, shape: [2, 4] })));
      await new Promise((resolve) => setTimeout(resolve, 20));
      console.log('alive', a[7]);`);
    assert.deepEqual(r, { status: 0, signal: null, stdout: `${expected}\nalive 2\n`, stderr: '' }, name);
  });
}

test('the addon refuses sizes whose element count overflows int64', (t) => {
  // Sizes 2^32 × 2^32 over 2^32 elements: each size fits the array, their product wraps to 0.
  const r = child(`
    let data;
    try {
      data = new Int8Array(2 ** 32); // address space only: its pages are never touched
    } catch {
      console.log('no 4 GiB array');
      return;
    }
    const arg = { data, shape: [2 ** 32, 2 ** 32], offset: 0 };
    console.log(await outcome(() => n.runKernel(h, [arg, arg, arg])));`);
  if (r.stdout === 'no 4 GiB array\n') return t.skip('this host cannot reserve a 4 GiB array');
  assert.deepEqual(r, { status: 0, signal: null, stdout: 'RangeError\n', stderr: '' });
});

test('argument and part lists that a getter grows while they are read keep their first length', () => {
  const r = child(`
    const a = new Float32Array(4).fill(1);
    const arg = { data: a, shape: [1, 4] };
    const args = [];
    Object.defineProperty(args, 0, { get() { for (let i = 0; i < 9; i++) args.push(arg); return arg; } });
    args.push(arg, arg);
    console.log(await outcome(() => n.runKernel(h, args)), a[0]);
    const part = { handle: h, args: [arg, arg, arg] };
    const parts = [];
    Object.defineProperty(parts, 0, { get() { for (let i = 0; i < 300; i++) parts.push(part); return part; } });
    console.log(await outcome(() => n.runKernelParts(parts)), a[0]);`);
  assert.deepEqual(r, { status: 0, signal: null, stdout: 'ran 2\nran 4\n', stderr: '' });
});

test('a split run completes on the calling thread when the OS refuses the pool threads', () => {
  // pthread_create fails with EAGAIN (as under a pids limit) once the variable is set, after the
  // libuv pool has started: every thread the addon's pool asks for is refused.
  const refuse = sharedObject(
    'refuse-threads.so',
    `#define _GNU_SOURCE
    #include <dlfcn.h>
    #include <errno.h>
    #include <pthread.h>
    #include <stdlib.h>
    int pthread_create(pthread_t* t, const pthread_attr_t* attr, void* (*fn)(void*), void* arg) {
      if (getenv("STITCH_TEST_REFUSE_THREADS")) return EAGAIN;
      int (*real)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*) =
          dlsym(RTLD_NEXT, "pthread_create");
      return real(t, attr, fn, arg);
    }`,
  );
  const r = child(
    `
    const a = Float32Array.from({ length: 12 }, (_, i) => i);
    const out = new Float32Array(12);
    const rows = (offset) => [a, a, out].map((data) => ({ data, shape: [1, 4], offset }));
    await n.runKernel(h, rows(0));
    process.env.STITCH_TEST_REFUSE_THREADS = '1';
    console.log(await outcome(() => n.runKernelParts([0, 4, 8].map((offset) => ({ handle: h, args: rows(offset) })))));
    delete process.env.STITCH_TEST_REFUSE_THREADS;
    console.log(out.join(' '));`,
    { LD_PRELOAD: refuse },
  );
  assert.deepEqual(r, {
    status: 0,
    signal: null,
    stdout: `ran\n${Array.from({ length: 12 }, (_, i) => 2 * i).join(' ')}\n`,
    stderr: '',
  });
});

test('the CUDA driver is loaded and initialised once per process, and never unloaded', () => {
  // A stand-in libcuda.so.1 with two devices that reports each cuInit and its own unloading.
  const fake = sharedObject(
    'libcuda.so.1',
    `#include <string.h>
    #include <unistd.h>
    static void say(const char* s) { write(1, s, strlen(s)); }
    int cuInit(unsigned flags) { say("cuInit\\n"); return 0; }
    int cuDeviceGetCount(int* n) { *n = 2; return 0; }
    __attribute__((destructor)) static void unloaded(void) { say("unloaded\\n"); }`,
  );
  const r = child(
    `
    for (let i = 0; i < 3; i++) console.log(JSON.stringify(n.probe().cuda));
    console.log('probed');`,
    { LD_LIBRARY_PATH: join(fake, '..') },
  );
  const cuda = JSON.stringify({ driverLoaded: true, deviceCount: 2, error: null }).replace(
    /[{}[\]]/g,
    '\\$&',
  );
  assert.equal(r.signal, null);
  assert.equal(r.status, 0, r.stderr);
  // The process's exit may unload it after everything else has run.
  assert.match(r.stdout, new RegExp(`^cuInit\\n(${cuda}\\n){3}probed\\n(unloaded\\n)?$`));
});

test('loading a kernel again returns the handle it already has', async () => {
  const runtime = new KernelRuntime();
  const first = runtime.load(add);
  const copy = join(dir, 'add-copy.so');
  copyFileSync(add.soPath, copy);
  assert.equal(runtime.load(add).handle, first.handle);
  assert.equal(runtime.load({ ...add, soPath: copy }).handle, first.handle, 'the same bytes elsewhere');
  assert.equal(new KernelRuntime().load(add).handle, first.handle, 'another runtime');
  const other = await compileKernel({ op: 'nn.add', rows: null, cols: 8 }, { target: 'x86-64', cacheDir });
  assert.notEqual(runtime.load(other).handle, first.handle);
  const a = new Float32Array(8).fill(1);
  await runtime.load(add).run([a, a, a]);
  assert.deepEqual([...a], Array(8).fill(2));
});
