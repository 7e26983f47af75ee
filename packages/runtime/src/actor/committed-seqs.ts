import type { Clock } from '../clock.js';

/** Sequences one generation holds at most: a busy actor's generations turn over sooner. */
const MAX_PER_GENERATION = 1 << 16;

/** Where the sequences added after a point begin (see mark). */
export interface CommittedMark {
  generation: number;
  index: number;
}

/**
 * The stream sequences of the durable messages an activation committed lately. An acknowledgement
 * sent while the actor's consumer changes leaders is lost (the old leader no longer reads it, the new
 * one has not started to), and the message comes again after ack_wait, by when a busy actor's record
 * may have forgotten its key (it keeps the last `durable.dedupKeys`).
 *
 * Two generations of numbers, no object per message (a durable actor commits thousands a second):
 * a sequence is kept from one to two `generationMs`, or until MAX_PER_GENERATION newer ones fill a
 * generation. Each generation is a set (to look up) and the same numbers in the order added (what
 * came after a mark, without a scan).
 */
export class CommittedSeqs {
  #current = new Set<number>();
  #previous = new Set<number>();
  #currentList: number[] = [];
  #previousList: number[] = [];
  #generation = 0;
  #since: number;

  constructor(
    private readonly clock: Clock,
    private readonly generationMs: number,
  ) {
    this.#since = clock.now();
  }

  add(seq: number): void {
    if (this.#current.size >= MAX_PER_GENERATION || this.clock.now() - this.#since >= this.generationMs) {
      this.#previous = this.#current;
      this.#previousList = this.#currentList;
      this.#current = new Set();
      this.#currentList = [];
      this.#generation++;
      this.#since = this.clock.now();
    }
    if (this.#current.has(seq)) return;
    this.#current.add(seq);
    this.#currentList.push(seq);
  }

  has(seq: number): boolean {
    return this.#current.has(seq) || this.#previous.has(seq);
  }

  /** Now, for `since`. */
  mark(): CommittedMark {
    return { generation: this.#generation, index: this.#currentList.length };
  }

  /** The sequences kept that are above `floor`, in the order added, from `mark` on (all by default). */
  above(floor: number, mark?: CommittedMark): number[] {
    const lists =
      mark === undefined || mark.generation < this.#generation - 1
        ? [this.#previousList, this.#currentList]
        : mark.generation === this.#generation - 1
          ? [this.#previousList.slice(mark.index), this.#currentList]
          : [this.#currentList.slice(mark.index)];
    const out: number[] = [];
    for (const list of lists) for (const s of list) if (s > floor) out.push(s);
    return out;
  }
}

/** Sequences as runs `[first, count]` of consecutive numbers, ascending, without repeats. */
export function seqRuns(seqs: number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const s of Float64Array.from(seqs).sort()) appendRun(runs, s, 1);
  return runs;
}

/** Two lists of runs (see seqRuns) as one. */
export function mergeRuns(a: [number, number][], b: [number, number][]): [number, number][] {
  if (b.length === 0) return a;
  const runs: [number, number][] = [];
  for (const [first, count] of [...a, ...b].sort((x, y) => x[0] - y[0])) appendRun(runs, first, count);
  return runs;
}

/** Adds a run that starts at or after the last one's start: joined to it where they touch or overlap. */
function appendRun(runs: [number, number][], first: number, count: number): void {
  const last = runs.at(-1);
  if (last && first <= last[0] + last[1]) last[1] = Math.max(last[1], first + count - last[0]);
  else runs.push([first, count]);
}

/**
 * `v` as runs `[first, count]` of positive stream sequences, when it is a list of at most `maxRuns`
 * holding at most `maxSeqs` in all; undefined when it is not.
 */
export function runsOf(v: unknown, maxRuns: number, maxSeqs: number): [number, number][] | undefined {
  if (!Array.isArray(v) || v.length > maxRuns) return undefined;
  let seqs = 0;
  const runs: [number, number][] = [];
  for (const e of v) {
    if (!Array.isArray(e) || e.length !== 2) return undefined;
    const [first, n] = e as unknown[];
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(n)) return undefined;
    seqs += n as number;
    if ((first as number) < 1 || (n as number) < 1 || seqs > maxSeqs) return undefined;
    runs.push([first as number, n as number]);
  }
  return runs;
}
