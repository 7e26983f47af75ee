import { type LatencyStats, latencyStats } from '../latency-stats.js';
import type { MigrationReport } from '../migration/source.js';

/** The live migrations of a node's actors so far (NodeInspection.migrations). */
export interface NodeMigrations {
  /** Actors moved from this node to another (this node the source). */
  out: number;
  /** Actors moved here from another node (this node the target), counted at their commit. */
  in: number;
  /** Moves from this node that failed and left the actor here (MigrationFailed). */
  failed: number;
  /** How long recent moves out paused their actor (MigrationReport.pausedMs), ms. */
  pausedMs: LatencyStats;
  /** Moves out of this node under way now. Absent from a node of an earlier version. */
  underWay?: number;
  /**
   * Moves into this node under way now, each holding one of its places (8), and those waiting for a
   * place. Absent from a node of an earlier version.
   */
  arriving?: number;
  waiting?: number;
}

/** Pauses kept for pausedMs. */
const PAUSES_KEPT = 64;

export class MigrationCounts {
  #out = 0;
  #in = 0;
  #failed = 0;
  readonly #paused = new Float64Array(PAUSES_KEPT);

  movedOut(report: MigrationReport): void {
    this.#paused[this.#out++ % PAUSES_KEPT] = report.pausedMs;
  }

  movedIn(): void {
    this.#in++;
  }

  failedOut(): void {
    this.#failed++;
  }

  metrics(): NodeMigrations {
    return {
      out: this.#out,
      in: this.#in,
      failed: this.#failed,
      pausedMs: latencyStats(this.#paused.subarray(0, Math.min(this.#out, PAUSES_KEPT))),
    };
  }
}
