import { loadNative } from './probe.js';

/** What `pinMmapThreshold` pins by default: glibc's own starting threshold. */
export const DEFAULT_MMAP_THRESHOLD_BYTES = 128 * 1024;

/**
 * Makes freed blocks of `bytes` or more go back to the OS at once, for the rest of this process's
 * life; false where malloc is not glibc's (nothing changed). glibc raises its mmap threshold to the
 * size of each mapped block that is freed, so once a megabytes-large array has been freed, blocks up
 * to that size come from a heap it rarely shrinks: a node process whose actors' states are megabytes
 * (a migrated KV cache, a large snapshot) then keeps what each move allocated resident. `stitch node`
 * calls this at start-up; a process that embeds a node can call it, or set
 * `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072` in its environment, which does the same.
 */
export function pinMmapThreshold(bytes: number = DEFAULT_MMAP_THRESHOLD_BYTES): boolean {
  return (loadNative() as unknown as { setMmapThreshold(bytes: number): boolean }).setMmapThreshold(bytes);
}
