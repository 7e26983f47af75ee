import type { Clock } from '../clock.js';
import { mergeRuns } from './committed-seqs.js';

/** Runs kept at most, and sequences in them; past either the oldest are kept (see bounded). */
export const MAX_UNCONFIRMED_RUNS = 4096;
export const MAX_UNCONFIRMED_SEQS = 1 << 16;

/**
 * The stream sequences of durable messages an actor committed whose keys its record no longer keeps
 * (it keeps the last `durable.dedupKeys`) and whose acknowledgement no ack floor of its consumer has
 * confirmed yet. Written with the record, so that the activation that follows a node's death knows
 * them: an acknowledgement lost while the consumer changed leaders brings its message back after
 * ack_wait, or at once to a consumer made afresh, and by then a busy actor has forgotten its key.
 *
 * Empty while acknowledgements land (each confirmed within a floor read or two, before its key
 * leaves the record); held as ascending runs `[first, count]` (a busy actor's sequences mostly run
 * on), in two generations of `generationMs` (ack_wait and an election: by then a lost acknowledgement's
 * message has come again), and bounded.
 */
export class UnconfirmedCommits {
  #current: [number, number][] = [];
  #previous: [number, number][] = [];
  #since: number;
  #floor = 0;

  constructor(
    private readonly clock: Clock,
    private readonly generationMs: number,
  ) {
    this.#since = clock.now();
  }

  /** Whether any is held. */
  get pending(): boolean {
    this.#turn();
    return this.#current.length > 0 || this.#previous.length > 0;
  }

  has(seq: number): boolean {
    return seq > this.#floor && (within(this.#current, seq) || within(this.#previous, seq));
  }

  /** How many are held. */
  get count(): number {
    let n = 0;
    for (const [, c] of this.runs()) n += c;
    return n;
  }

  /**
   * Committed messages whose keys the record dropped, or that a record read lists, as runs (see
   * seqRuns): held unless at or below the confirmed floor.
   */
  add(runs: [number, number][]): void {
    const fresh = above(runs, this.#floor);
    if (fresh.length === 0) return;
    this.#turn();
    this.#current = bounded(mergeRuns(this.#current, fresh));
  }

  /** Everything at or below `floor` is acknowledged for good: forgotten. */
  confirm(floor: number): void {
    if (floor <= this.#floor) return;
    this.#floor = floor;
    this.#current = above(this.#current, floor);
    this.#previous = above(this.#previous, floor);
  }

  /** What a record write carries. */
  runs(): [number, number][] {
    this.#turn();
    if (this.#previous.length === 0) return this.#current;
    return bounded(mergeRuns(this.#previous, this.#current));
  }

  /**
   * What a record write that drops the keys of `runs` carries: they are held (add) only once it is
   * stored, as until then their effects may not be committed.
   */
  runsWith(runs: [number, number][]): [number, number][] {
    const fresh = above(runs, this.#floor);
    return fresh.length === 0 ? this.runs() : bounded(mergeRuns(this.runs(), fresh));
  }

  #turn(): void {
    const age = this.clock.now() - this.#since;
    if (age < this.generationMs) return;
    this.#previous = age < 2 * this.generationMs ? this.#current : [];
    this.#current = [];
    this.#since = this.clock.now();
  }
}

/** Whether ascending runs hold `seq`. */
function within(runs: [number, number][], seq: number): boolean {
  let lo = 0;
  let hi = runs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const [first, count] = runs[mid]!;
    if (seq < first) hi = mid - 1;
    else if (seq >= first + count) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Runs above `floor`: those at or below it dropped, the one across it cut. */
function above(runs: [number, number][], floor: number): [number, number][] {
  const out: [number, number][] = [];
  for (const [first, count] of runs) {
    const last = first + count - 1;
    if (last <= floor) continue;
    out.push(first > floor ? [first, count] : [floor + 1, last - floor]);
  }
  return out;
}

/**
 * The oldest runs within the bounds: a lost acknowledgement holds the ack floor just below its
 * message, so what is newest is what the next floor read most likely confirms.
 */
function bounded(runs: [number, number][]): [number, number][] {
  let seqs = 0;
  const out: [number, number][] = [];
  for (const [first, count] of runs) {
    if (out.length === MAX_UNCONFIRMED_RUNS || seqs === MAX_UNCONFIRMED_SEQS) break;
    const take = Math.min(count, MAX_UNCONFIRMED_SEQS - seqs);
    out.push(take === count ? [first, count] : [first, take]);
    seqs += take;
  }
  return out;
}
