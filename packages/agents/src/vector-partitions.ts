import { AgentsError, AgentsErrorCode } from './errors.js';
import type { Neighbour } from './vector-index.js';

/** Which share of the keys a search holds (its attrs): partition `partition` of `partitions` (0 of 1: all). */
export function partitionOf(attrs: Record<string, string | number | boolean>): {
  partition: number;
  partitions: number;
} {
  const int = (v: unknown, fallback: number) => (typeof v === 'number' ? v : fallback);
  return { partition: int(attrs.partition, 0), partitions: int(attrs.partitions, 1) };
}

/**
 * The partition (0 … partitions − 1) that holds vector `key` in a search with `partitions = P`. A
 * hash of the key, not key mod P, so that keys in strides (every 4th, every 1 000th) still spread.
 */
export function vectorPartition(key: number, partitions: number): number {
  if (partitions <= 1) return 0;
  const hi = Math.floor(key / 2 ** 32) >>> 0;
  let h = Math.imul((key >>> 0) ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return (h >>> 0) % partitions;
}

/**
 * The index file partition `i` of `partitions` loads for a graph's `index` name: `docs.usearch` →
 * `docs.1-of-3.usearch` (the name with `.1-of-3` before its extension, or at its end).
 */
export function partitionIndexName(name: string, i: number, partitions: number): string {
  if (partitions <= 1) return name;
  // The extension of the file's own name, not a dot in a directory above it.
  const base = name.lastIndexOf('/') + 1;
  const dot = name.lastIndexOf('.');
  const tag = `.${i}-of-${partitions}`;
  return dot > base ? `${name.slice(0, dot)}${tag}${name.slice(dot)}` : `${name}${tag}`;
}

/** The field a partition's top-k travels in to the merge (each partition its own, so none overwrites another). */
export const partialField = (i: number) => `neighbours.p${i}`;
export const isPartialField = (k: string) => /^neighbours\.p\d+$/.test(k);

/** The k nearest of the partitions' lists in `ctx` (ties by key, so the order never depends on timing). */
export function mergePartials(ctx: Record<string, unknown>, partitions: number, k: number): Neighbour[] {
  const all: Neighbour[] = [];
  for (let i = 0; i < partitions; i++) {
    const part = ctx[partialField(i)];
    if (!Array.isArray(part))
      throw new AgentsError(
        AgentsErrorCode.VectorInvalid,
        `memory.vector_merge has no answer from partition ${i} of ${partitions}: check that the graph's partitioned search feeds it`,
      );
    all.push(...(part as Neighbour[]));
  }
  return all.sort((a, b) => a.distance - b.distance || a.key - b.key).slice(0, k);
}
