// The layout of an index file `VectorIndex.save` writes, checked before usearch reads it: usearch
// copies the graph without a check and follows it on every search.
import { open } from 'node:fs/promises';
import { AgentsError, AgentsErrorCode } from './errors.js';

const fail = (message: string): never => {
  throw new AgentsError(AgentsErrorCode.VectorInvalid, message);
};

/*
 * The file `save` writes (usearch 2.x, `index_dense_gt<u64 key, u32 slot>::save_to_stream`, in the
 * host's byte order):
 *   u32 rows, u32 cols (bytes per vector); rows × cols bytes of vectors;
 *   a 64-byte head: "usearch", u16 version major, minor, patch; u8 kinds of metric, scalar, key and
 *     slot; u64 vectors present, deleted and dimensions; u8 multi;
 *   the graph (`index_gt::save_to_stream`): u64 size, connectivity, connectivity_base, max_level,
 *     entry_slot; size × i16 levels; then per node: u64 key, i16 level, the base layer's u32 count
 *     and connectivity_base u32 slots, and per level above it a u32 count and connectivity slots.
 */
const HEAD_BYTES = 64;
const GRAPH_HEADER_BYTES = 40;
const NODE_HEAD_BYTES = 10;
const USEARCH_MAJOR = 2;
const METRIC_KIND = { cos: 0x63, ip: 0x69, l2sq: 0x65 } as const; // 'c', 'i', 'e'
const SCALAR_F32 = 11;
const KEY_U64 = 14;
const SLOT_U32 = 15;
/**
 * Highest graph level taken. usearch draws a node's level as -ln(U) / ln(M) with M ≥ 2 and U a
 * double from its 31-bit generator (U ≥ 2^-62 when not 0), so real files stay under 63.
 */
const MAX_LEVEL = 64;
/** Node records are read and checked this many bytes at a time. */
const CHUNK_BYTES = 4 * 2 ** 20;

/**
 * Checks that the file at `path` is an index `VectorIndex.save` could have written for these
 * options, every part that usearch reads without a check included: the vector block's shape, the
 * head (f32 vectors of `dim`, `metric`, one vector per key), the graph header (size = vector count,
 * connectivity, top level, entry point), each node's level and key, and each neighbour slot (a node
 * of the file, present on that level), and the file's length. Throws `VECTOR_INVALID` naming what is
 * wrong.
 */
export async function checkIndexFile(
  path: string,
  want: { dim: number; metric: keyof typeof METRIC_KIND; maxVectors: number; maxConnectivity: number },
): Promise<void> {
  const bad = (what: string): never => fail(`${path} is not a valid usearch index file: ${what}`);
  const fh = await open(path, 'r');
  try {
    const { size: fileBytes } = await fh.stat();
    const read = async (bytes: number, at: number): Promise<Buffer> => {
      const buf = Buffer.alloc(bytes);
      let done = 0;
      while (done < bytes) {
        const { bytesRead } = await fh.read(buf, done, bytes - done, at + done);
        if (bytesRead === 0) fail(`${path} is cut short`);
        done += bytesRead;
      }
      return buf;
    };

    // The vector block.
    if (fileBytes < 8)
      fail(`${path} is not a usearch index of ${want.dim}-dimensional f32 vectors (saved with \`save\`)`);
    const dims = await read(8, 0);
    const rows = dims.readUInt32LE(0);
    const cols = dims.readUInt32LE(4);
    if (cols !== want.dim * 4)
      fail(`${path} is not a usearch index of ${want.dim}-dimensional f32 vectors (saved with \`save\`)`);
    if (rows > want.maxVectors) fail(`${path} holds ${rows} vectors, more than ${want.maxVectors}`);
    const headAt = 8 + rows * cols;
    if (fileBytes < headAt + HEAD_BYTES + GRAPH_HEADER_BYTES) fail(`${path} is cut short`);

    // The head.
    const head = await read(HEAD_BYTES + GRAPH_HEADER_BYTES, headAt);
    if (head.toString('latin1', 0, 7) !== 'usearch') fail(`${path} has no usearch header after its vectors`);
    const major = head.readUInt16LE(7);
    const minor = head.readUInt16LE(9);
    if (major !== USEARCH_MAJOR || minor < 10) bad(`saved by usearch ${major}.${minor}, not 2.10 or later`);
    if (head[13] !== METRIC_KIND[want.metric])
      bad(`its metric kind is ${head[13]}, not ${METRIC_KIND[want.metric]} (${want.metric})`);
    if (head[14] !== SCALAR_F32) bad(`its scalar kind is ${head[14]}, not ${SCALAR_F32} (f32)`);
    if (head[15] !== KEY_U64) bad(`its key kind is ${head[15]}, not ${KEY_U64} (u64)`);
    if (head[16] !== SLOT_U32) bad(`its slot kind is ${head[16]}, not ${SLOT_U32} (u32)`);
    const present = head.readBigUInt64LE(17);
    const deleted = head.readBigUInt64LE(25);
    if (present !== BigInt(rows) || deleted !== 0n)
      bad(`its head counts ${present} vectors present and ${deleted} deleted, the file holds ${rows}`);
    const dimensions = head.readBigUInt64LE(33);
    if (dimensions !== BigInt(want.dim)) bad(`its head says ${dimensions} dimensions, not ${want.dim}`);
    if (head[41] !== 0) bad('its head allows several vectors per key');

    // The graph header.
    const g = HEAD_BYTES;
    const count = head.readBigUInt64LE(g);
    if (count !== BigInt(rows)) bad(`its graph has ${count} nodes for ${rows} vectors`);
    const graphAt = headAt + HEAD_BYTES + GRAPH_HEADER_BYTES;
    // usearch reads nothing more of an empty graph.
    if (rows === 0) {
      if (fileBytes !== graphAt) bad(`${fileBytes - graphAt} bytes follow its empty graph`);
      return;
    }
    const m = head.readBigUInt64LE(g + 8);
    const mBase = head.readBigUInt64LE(g + 16);
    const maxLevel = head.readBigUInt64LE(g + 24);
    const entry = head.readBigUInt64LE(g + 32);
    if (m < 2n || m > BigInt(want.maxConnectivity))
      bad(`its connectivity is ${m}, not from 2 to ${want.maxConnectivity}`);
    if (mBase < m || mBase > BigInt(2 * want.maxConnectivity))
      bad(`its base connectivity is ${mBase}, not from ${m} to ${2 * want.maxConnectivity}`);
    if (maxLevel > BigInt(MAX_LEVEL)) bad(`its top level is ${maxLevel}, more than ${MAX_LEVEL}`);
    if (entry >= BigInt(rows)) bad(`its entry slot ${entry} is not one of its ${rows} nodes`);
    const M = Number(m);
    const MBase = Number(mBase);
    const top = Number(maxLevel);
    const entrySlot = Number(entry);

    // The levels, and from them the length of every node record.
    if (fileBytes < graphAt + rows * 2) fail(`${path} is cut short`);
    const levels = new Int16Array(rows);
    {
      const raw = await read(rows * 2, graphAt);
      for (let i = 0; i < rows; i++) levels[i] = raw.readInt16LE(i * 2);
    }
    const baseBytes = NODE_HEAD_BYTES + 4 + 4 * MBase;
    const levelBytes = 4 + 4 * M;
    const nodeBytes = (level: number) => baseBytes + level * levelBytes;
    let total = graphAt + rows * 2;
    for (let i = 0; i < rows; i++) {
      const level = levels[i]!;
      if (level < 0 || level > top) bad(`node ${i} has level ${level}, not from 0 to its top level ${top}`);
      total += nodeBytes(level);
    }
    if (levels[entrySlot] !== top)
      bad(`its entry node ${entrySlot} has level ${levels[entrySlot]}, not its top level ${top}`);
    if (fileBytes < total) fail(`${path} is cut short`);
    if (fileBytes > total) bad(`${fileBytes - total} bytes follow its graph`);

    // The nodes: key, level, and every neighbour list, a chunk of whole records at a time.
    const keys = new Float64Array(rows);
    let at = graphAt + rows * 2;
    for (let first = 0; first < rows; ) {
      let last = first;
      let bytes = 0;
      while (last < rows && (last === first || bytes + nodeBytes(levels[last]!) <= CHUNK_BYTES))
        bytes += nodeBytes(levels[last++]!);
      const chunk = await read(bytes, at);
      const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      let p = 0;
      for (let i = first; i < last; i++) {
        const level = levels[i]!;
        const lo = view.getUint32(p, true);
        const hi = view.getUint32(p + 4, true);
        if (hi >= 2 ** 21) bad(`node ${i} has key ${(BigInt(hi) << 32n) | BigInt(lo)}, more than 2^53`);
        keys[i] = hi * 2 ** 32 + lo;
        if (view.getInt16(p + 8, true) !== level)
          bad(`node ${i} says level ${view.getInt16(p + 8, true)}, its file's level list ${level}`);
        let q = p + NODE_HEAD_BYTES;
        for (let l = 0; l <= level; l++) {
          const cap = l === 0 ? MBase : M;
          const n = view.getUint32(q, true);
          if (n > cap) bad(`node ${i} has ${n} neighbours on level ${l}, more than ${cap}`);
          for (let j = 0; j < n; j++) {
            const slot = view.getUint32(q + 4 + 4 * j, true);
            if (slot >= rows)
              bad(`node ${i} links on level ${l} to slot ${slot}, not one of its ${rows} nodes`);
            if (levels[slot]! < l)
              bad(`node ${i} links on level ${l} to node ${slot}, which has no level ${l}`);
          }
          q += 4 + 4 * cap;
        }
        p += nodeBytes(level);
      }
      at += bytes;
      first = last;
    }
    keys.sort();
    for (let i = 1; i < rows; i++) if (keys[i] === keys[i - 1]) bad(`key ${keys[i]} is on two nodes`);
  } finally {
    await fh.close();
  }
}
