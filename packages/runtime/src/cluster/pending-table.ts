/**
 * Asks waiting for replies, by sequence number: a ring indexed by `seq & mask`, doubled when half
 * full, with a Map only for an old ask whose slot a newer one needs (a stuck ask with a long timeout).
 *
 * Why not a Map keyed by token: at tens of thousands of asks a second V8 rehashed it constantly, and
 * a retired hash table keeps a link to its successor; once one table had been promoted, each
 * successor, and every ask in it, was kept alive into the old generation (measured: a quarter of the
 * caller's allocations promoted, a mark-compact every second).
 */
export class PendingTable<T extends { readonly seq: number }> {
  #slots: (T | undefined)[] = new Array(256).fill(undefined);
  #mask = 255;
  #size = 0;
  readonly #overflow = new Map<number, T>();

  get size(): number {
    return this.#size;
  }

  add(p: T): void {
    this.#place(p);
    this.#size++;
    if (this.#size > this.#slots.length / 2) this.#grow();
  }

  get(seq: number): T | undefined {
    const p = this.#slots[seq & this.#mask];
    if (p !== undefined && p.seq === seq) return p;
    return this.#overflow.size > 0 ? this.#overflow.get(seq) : undefined;
  }

  /** Removes `p`; false when it was not there (already settled). */
  delete(p: T): boolean {
    const slot = p.seq & this.#mask;
    if (this.#slots[slot] === p) {
      this.#slots[slot] = undefined;
      this.#size--;
      return true;
    }
    if (this.#overflow.get(p.seq) === p) {
      this.#overflow.delete(p.seq);
      this.#size--;
      return true;
    }
    return false;
  }

  values(): T[] {
    const all: T[] = [];
    for (const p of this.#slots) if (p !== undefined) all.push(p);
    for (const p of this.#overflow.values()) all.push(p);
    return all;
  }

  clear(): void {
    this.#slots.fill(undefined);
    this.#overflow.clear();
    this.#size = 0;
  }

  #place(p: T): void {
    const slot = p.seq & this.#mask;
    const older = this.#slots[slot];
    if (older !== undefined) this.#overflow.set(older.seq, older);
    this.#slots[slot] = p;
  }

  #grow(): void {
    const live = this.#slots.filter((p) => p !== undefined) as T[];
    this.#slots = new Array(this.#slots.length * 2).fill(undefined);
    this.#mask = this.#slots.length - 1;
    for (const p of live) this.#place(p);
  }
}
