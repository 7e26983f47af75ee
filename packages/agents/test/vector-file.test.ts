// `VectorIndex.load` / `fromBytes` check the whole usearch file before usearch reads it: usearch
// copies the head and the graph (levels, entry point, neighbour slots) without a check and follows
// them on every search, so a wrong value there crashed the process (SIGSEGV, or an abort on
// "Linking to missing level") or silently answered with other neighbours. The corrupted files are
// loaded and searched in a child process, one after another, so a crash shows as the child's signal
// against the file it was loading (and the files after it go to a new child).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { VectorIndex, type VectorIndexOptions, type VectorMetric } from '../src/index.js';
import { gaussianClusters } from './vector-data.js';

const DIM = 8;
const N = 300;
const OPTIONS: VectorIndexOptions = { dim: DIM, metric: 'l2sq', maxVectors: N, connectivity: 4 };
const base = gaussianClusters(DIM, 10, 1, 3).draw(N);
const keys = Array.from({ length: N }, (_, i) => 10 * i + 1);
/** The first 5 indexed vectors: each is its own nearest neighbour. */
const QUERIES = Array.from(base.subarray(0, 5 * DIM));
const SELF = keys.slice(0, 5).map((k) => [k]);
const CHILD = fileURLToPath(new URL('./vector-file-load.ts', import.meta.url));
const LOADER = import.meta.resolve('@stitch/typescript-loader');
let dir: string;
let saved: Buffer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stitch-vector-file-'));
  const index = new VectorIndex(OPTIONS);
  await index.add(keys, base);
  saved = Buffer.from(await index.toBytes());
  await index.close();
  files.set('good.usearch', saved);
  for (const [i, c] of cases.entries()) {
    const b = Buffer.from(saved);
    c.edit(b, layout(b));
    files.set(`bad-${i}.usearch`, b);
  }
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Offsets of the saved file's parts (the layout `checkIndexFile` in vector-index.ts describes). */
function layout(b: Buffer) {
  const rows = b.readUInt32LE(0);
  const head = 8 + rows * b.readUInt32LE(4);
  const graph = head + 64;
  const m = Number(b.readBigUInt64LE(graph + 8));
  const mBase = Number(b.readBigUInt64LE(graph + 16));
  const top = Number(b.readBigUInt64LE(graph + 24));
  const entry = Number(b.readBigUInt64LE(graph + 32));
  const levels = Array.from({ length: rows }, (_, i) => b.readInt16LE(graph + 40 + 2 * i));
  const node: number[] = [];
  let at = graph + 40 + 2 * rows;
  for (const level of levels) {
    node.push(at);
    at += 10 + 4 + 4 * mBase + level * (4 + 4 * m);
  }
  /** Where node i's neighbour list on level l starts (its u32 count, then the slots). */
  const list = (i: number, l: number) =>
    node[i]! + 10 + (l === 0 ? 0 : 4 + 4 * mBase + (l - 1) * (4 + 4 * m));
  return { rows, head, graph, top, entry, levels, node, list, end: at };
}

interface ChildResult {
  /** Where the child died loading this file: its exit status and signal (null for a file it answered). */
  status: number | null;
  signal: NodeJS.Signals | null;
  out?: { loaded: boolean; code?: string; message?: string; keys?: number[][] };
  stderr: string;
}

/** Files for the child, by name, written before the first test asks for any result. */
const files = new Map<string, Buffer>();
let results: Promise<Map<string, ChildResult>> | undefined;

function runChild(
  listPath: string,
): Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', LOADER, CHILD, listPath], { timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/**
 * Every file loaded in child processes: one child takes them in order; where it dies, that file gets
 * its exit, and a new child takes the files after it. One node start for all, not one per file.
 */
function loadAllInChildren(): Promise<Map<string, ChildResult>> {
  results ??= (async () => {
    const out = new Map<string, ChildResult>();
    await Promise.all([...files].map(([name, bytes]) => writeFile(join(dir, name), bytes)));
    let left = [...files.keys()];
    for (let round = 0; left.length > 0; round++) {
      const paths = left.map((name) => join(dir, name));
      const listPath = join(dir, `list-${round}.json`);
      await writeFile(listPath, JSON.stringify({ options: OPTIONS, queries: QUERIES, k: 1, paths }));
      const r = await runChild(listPath);
      for (const line of r.stdout.split('\n').filter((l) => l.startsWith('{'))) {
        const { path, ...answer } = JSON.parse(line) as { path: string } & NonNullable<ChildResult['out']>;
        out.set(basename(path), { status: 0, signal: null, out: answer, stderr: '' });
      }
      const next = left.findIndex((name) => !out.has(name));
      if (next < 0) break;
      if (r.status === 0 && r.signal === null)
        throw new Error(`the child answered no line for ${left[next]}: ${r.stderr}`);
      out.set(left[next]!, { status: r.status, signal: r.signal, stderr: r.stderr.slice(-400) });
      left = left.slice(next + 1);
    }
    return out;
  })();
  return results;
}

async function loadInChild(name: string): Promise<ChildResult> {
  const r = (await loadAllInChildren()).get(name);
  assert.ok(r, `${name} was not loaded`);
  return r;
}

test('the file as saved loads in the child and answers each vector with itself', async () => {
  const r = await loadInChild('good.usearch');
  assert.equal(r.signal, null, r.stderr);
  assert.deepEqual(r.out, { loaded: true, keys: SELF });
  const L = layout(saved);
  // The cases below need a graph of several levels.
  assert.ok(L.top >= 1 && L.levels.some((l) => l === 0), `top level ${L.top}`);
  assert.equal(L.end, saved.length);
});

/** Corruptions of one field each; every one must be refused with VECTOR_INVALID naming it. */
const cases: { name: string; edit: (b: Buffer, L: ReturnType<typeof layout>) => void; says: RegExp }[] = [
  {
    name: 'head: scalar kind 0 (unknown)',
    edit: (b, L) => b.writeUInt8(0, L.head + 14),
    says: /scalar kind is 0/,
  },
  { name: 'head: scalar kind 99', edit: (b, L) => b.writeUInt8(99, L.head + 14), says: /scalar kind is 99/ },
  {
    name: 'head: scalar kind 10 (f64)',
    edit: (b, L) => b.writeUInt8(10, L.head + 14),
    says: /scalar kind is 10/,
  },
  {
    name: "head: metric 'z' (unknown)",
    edit: (b, L) => b.writeUInt8(0x7a, L.head + 13),
    says: /metric kind is 122/,
  },
  {
    name: "head: metric 'c' (cos) for an l2sq index",
    edit: (b, L) => b.writeUInt8(0x63, L.head + 13),
    says: /metric kind is 99/,
  },
  { name: 'head: multi = 1', edit: (b, L) => b.writeUInt8(1, L.head + 41), says: /several vectors per key/ },
  {
    name: 'head: 16 dimensions',
    edit: (b, L) => b.writeBigUInt64LE(16n, L.head + 33),
    says: /16 dimensions/,
  },
  {
    name: 'graph: size one more than the vectors',
    edit: (b, L) => b.writeBigUInt64LE(BigInt(L.rows + 1), L.graph),
    says: /301 nodes for 300 vectors/,
  },
  {
    name: 'graph: connectivity 5 (saved with 4)',
    edit: (b, L) => b.writeBigUInt64LE(5n, L.graph + 8),
    says: /cut short|follow its graph|level/,
  },
  {
    name: 'graph: connectivity 1000',
    edit: (b, L) => b.writeBigUInt64LE(1000n, L.graph + 8),
    says: /connectivity is 1000/,
  },
  {
    name: 'graph: max_level 30000',
    edit: (b, L) => b.writeBigUInt64LE(30000n, L.graph + 24),
    says: /top level is 30000/,
  },
  {
    name: 'graph: max_level one above the entry node',
    edit: (b, L) => b.writeBigUInt64LE(BigInt(L.top + 1), L.graph + 24),
    says: /entry node \d+ has level/,
  },
  {
    name: 'graph: entry_slot 0xfffffff0',
    edit: (b, L) => b.writeBigUInt64LE(0xfffffff0n, L.graph + 32),
    says: /entry slot 4294967280/,
  },
  {
    name: 'graph: entry_slot on a level-0 node',
    edit: (b, L) => b.writeBigUInt64LE(BigInt(L.levels.indexOf(0)), L.graph + 32),
    says: /entry node \d+ has level 0/,
  },
  {
    name: "node: a level-0 node's record says level 3",
    edit: (b, L) => b.writeInt16LE(3, L.node[L.levels.indexOf(0)]! + 8),
    says: /says level 3/,
  },
  {
    name: 'node: 1000 neighbours on level 0',
    edit: (b, L) => b.writeUInt32LE(1000, L.list(L.entry, 0)),
    says: /1000 neighbours on level 0/,
  },
  {
    name: 'node: a neighbour slot 0xfffffff0',
    edit: (b, L) => b.writeUInt32LE(0xfffffff0, L.list(L.entry, 0) + 4),
    says: /slot 4294967280/,
  },
  {
    name: 'node: a level-1 neighbour that has no level 1',
    edit: (b, L) => {
      const from = L.levels.findIndex((l, i) => l >= 1 && b.readUInt32LE(L.list(i, 1)) > 0);
      assert.ok(from >= 0);
      b.writeUInt32LE(L.levels.indexOf(0), L.list(from, 1) + 4);
    },
    says: /which has no level 1/,
  },
  {
    name: 'node: key 2^60',
    edit: (b, L) => b.writeBigUInt64LE(2n ** 60n, L.node[0]!),
    says: /more than 2\^53/,
  },
  {
    name: 'node: a key on two nodes',
    edit: (b, L) => b.writeBigUInt64LE(b.readBigUInt64LE(L.node[0]!), L.node[1]!),
    says: /key 1 is on two nodes/,
  },
];

for (const [i, c] of cases.entries())
  test(`a file with ${c.name} is refused with VECTOR_INVALID, not loaded`, async () => {
    const r = await loadInChild(`bad-${i}.usearch`);
    assert.equal(r.signal, null, `the child was killed by ${r.signal} (rc ${r.status}): ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.out?.loaded,
      false,
      `loaded, and answered ${JSON.stringify(r.out?.keys)} (want ${JSON.stringify(SELF)})`,
    );
    assert.equal(r.out?.code, 'VECTOR_INVALID');
    assert.match(r.out?.message ?? '', c.says);
  });

test('bytes after the graph, or a graph cut short, are refused; fromBytes checks the same', async () => {
  const code = (e: { code?: string }) => e.code === 'VECTOR_INVALID';
  const index = new VectorIndex(OPTIONS);
  await assert.rejects(index.fromBytes(Buffer.concat([saved, Buffer.alloc(8)])), /8 bytes follow/);
  await assert.rejects(index.fromBytes(saved.subarray(0, saved.length - 100)), /cut short/);
  const b = Buffer.from(saved);
  b.writeBigUInt64LE(0xfffffff0n, layout(b).graph + 32);
  await assert.rejects(index.fromBytes(b), code);
  assert.equal(index.size, 0);
  await index.close();
});

test('files saved with other settings load and answer as the index they were saved from', async () => {
  const settings: [number, VectorMetric, number][] = [
    [2, 'l2sq', 3000], // M = 2: the most levels
    [64, 'cos', 1500], // the largest connectivity taken
    [16, 'ip', 1],
    [16, 'cos', 0],
  ];
  for (const [connectivity, metric, n] of settings) {
    const options = { dim: DIM, metric, maxVectors: n + 1, connectivity, threads: 2 };
    const data = gaussianClusters(DIM, 20, 0.5, connectivity).draw(n + 1);
    const ks = Array.from({ length: n }, (_, i) => i * 2 ** 40 + 7); // keys up to 2^52
    const index = new VectorIndex(options);
    for (let i = 0; i < n; i += 4096)
      await index.add(ks.slice(i, i + 4096), data.subarray(i * DIM, Math.min(n, i + 4096) * DIM));
    const copy = new VectorIndex(options);
    await copy.fromBytes(await index.toBytes());
    assert.equal(copy.size, n);
    if (n > 0) {
      const q = data.subarray(0, 20 * DIM);
      assert.deepEqual(await copy.search(q, 5), await index.search(q, 5), `M ${connectivity} ${metric}`);
    }
    // It takes inserts after loading, and saves a file that loads again.
    await copy.add([1], data.subarray(n * DIM));
    const again = new VectorIndex(options);
    await again.fromBytes(await copy.toBytes());
    assert.equal(again.size, n + 1);
    // The graph it was saved from, so its answers: compared, not guessed (a graph of M = 2 built on
    // two threads differs run to run, and its search missed the vector just added in one run of many).
    const probe = data.subarray(n * DIM);
    assert.deepEqual(
      await again.search(probe, 3),
      await copy.search(probe, 3),
      `M ${connectivity} ${metric}`,
    );
    await Promise.all([index.close(), copy.close(), again.close()]);
  }
});
