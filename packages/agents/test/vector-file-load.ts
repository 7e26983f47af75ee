// Child process of vector-file.test.ts: loads each index file of a list with `VectorIndex.load` and
// searches it, printing one JSON line per file as it goes. A file that crashes usearch kills this
// process only: the test reports the signal against that file and goes on with the next in a new child.
//   node --import @stitch/typescript-loader vector-file-load.ts <list JSON: { options, queries, k, paths }>
import { readFileSync } from 'node:fs';
import { VectorIndex, type VectorIndexOptions } from '../src/index.js';

const list = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as {
  options: VectorIndexOptions;
  queries: number[];
  k: number;
  paths: string[];
};
for (const path of list.paths) {
  const index = new VectorIndex(list.options);
  try {
    await index.load(path);
  } catch (e) {
    const err = e as { code?: string; message: string };
    process.stdout.write(
      `${JSON.stringify({ path, loaded: false, code: err.code, message: err.message })}\n`,
    );
    await index.close();
    continue;
  }
  const found = await index.search(Float32Array.from(list.queries), list.k);
  process.stdout.write(
    `${JSON.stringify({ path, loaded: true, keys: found.map((r) => r.map((h) => h.key)) })}\n`,
  );
  await index.close();
}
