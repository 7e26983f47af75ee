/**
 * Binary min-heap of events keyed by time, stored in parallel typed arrays (time, request slot,
 * packed kind/task) so that pushing and popping allocates nothing: the simulator's hot loop runs
 * tens of millions of these. Equal times pop in an order fixed by the push sequence, so runs are
 * deterministic.
 */
export class EventHeap {
  size = 0;
  private time: Float64Array;
  private slot: Int32Array;
  private tag: Int32Array;
  /** Fields of the last popped event. */
  topTime = 0;
  topSlot = 0;
  topTag = 0;

  constructor(capacity = 1024) {
    this.time = new Float64Array(capacity);
    this.slot = new Int32Array(capacity);
    this.tag = new Int32Array(capacity);
  }

  push(t: number, slot: number, tag: number): void {
    if (this.size === this.time.length) this.grow();
    const time = this.time;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = time[p]!;
      if (pt <= t) break;
      time[i] = pt;
      this.slot[i] = this.slot[p]!;
      this.tag[i] = this.tag[p]!;
      i = p;
    }
    time[i] = t;
    this.slot[i] = slot;
    this.tag[i] = tag;
  }

  /** Removes the earliest event into topTime/topSlot/topTag; call only when size > 0. */
  pop(): void {
    const time = this.time;
    const slot = this.slot;
    const tag = this.tag;
    this.topTime = time[0]!;
    this.topSlot = slot[0]!;
    this.topTag = tag[0]!;
    const n = --this.size;
    if (n === 0) return;
    const t = time[n]!;
    const s = slot[n]!;
    const g = tag[n]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && time[c + 1]! < time[c]!) c++;
      if (time[c]! >= t) break;
      time[i] = time[c]!;
      slot[i] = slot[c]!;
      tag[i] = tag[c]!;
      i = c;
    }
    time[i] = t;
    slot[i] = s;
    tag[i] = g;
  }

  private grow(): void {
    const cap = this.time.length * 2;
    const time = new Float64Array(cap);
    const slot = new Int32Array(cap);
    const tag = new Int32Array(cap);
    time.set(this.time);
    slot.set(this.slot);
    tag.set(this.tag);
    this.time = time;
    this.slot = slot;
    this.tag = tag;
  }
}
