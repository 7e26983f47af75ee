// Child process of vector-file.test.ts: loads an index file with `VectorIndex.load` and searches it,
// then prints one JSON line. A file that crashes usearch kills this process only, and the test
// reports the signal.
//   node --import @stitch/typescript-loader vector-file-load.ts <file> <options JSON> <queries JSON> <k>
import { VectorIndex, type VectorIndexOptions } from '../src/index.js';

const [path, options, queries, k] = process.argv.slice(2) as [string, string, string, string];
const index = new VectorIndex(JSON.parse(options) as VectorIndexOptions);
try {
  await index.load(path);
} catch (e) {
  const err = e as { code?: string; message: string };
  process.stdout.write(`${JSON.stringify({ loaded: false, code: err.code, message: err.message })}\n`);
  process.exit(0);
}
const found = await index.search(Float32Array.from(JSON.parse(queries) as number[]), Number(k));
process.stdout.write(`${JSON.stringify({ loaded: true, keys: found.map((r) => r.map((h) => h.key)) })}\n`);
await index.close();
