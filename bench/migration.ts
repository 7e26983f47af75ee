// Live migration as its callers see it. Two node processes on an embedded nats-server host one
// Sequencer actor with a snapshot of `state_bytes`; a serial client (one ask in flight) and a
// pipelined one (64 in flight) ask it without pause, and an open-loop one asks every 5 ms
// without waiting for replies, while it is migrated back and forth. Per
// migration, downtime = the longest gap between two consecutive replies of the serial client that
// overlaps the migration, minus the median gap outside migrations. lost / duplicated / reordered come
// from each sender's sequence numbers as the actor applied them; caller_errors counts every error a
// caller saw and every message the library sent again on its behalf (sent_again: the callers'
// connection's ClusterMetrics.sentAgain over the line). peak_extra_rss_mb: the two node
// processes' resident memory summed, highest during the run minus before the first migration (the
// load's own heap growth included); move_extra_rss_*: the same sum, highest from a move's start until
// the next move starts, minus at its start (p50 and max over the counted moves); quiet_extra_rss_*:
// the same over ten windows as long after the moves, with the load and no move.
// quiet_downtime_*: the same measure as downtime over windows as long as the counted moves, one after
// another in the period after the moves (the load and no move; as many windows as moves, or as fit):
// how much of a move's downtime the load's own gaps would show anyway.
// slowest_move: the slowest counted move, where its worst gap began (ms after the move was asked for)
// and how long it was, beside the move's pre-copy, pause and hand-off.
// One JSON line per (mode, state size). Imports the built runtime (run `pnpm build` first).
// The first `--warmup` moves of each line are not counted (the processes' code is still being
// compiled then); their worst downtime is reported beside the others.
// Usage: pnpm bench migration [--migrations 50] [--warmup 4] [--sizes 1024,65536,...] [--modes fast,durable]
//        [--snapshots on-demand,delta,every-turn] [--node-args "--initial-old-space-size=64"] [--quick]
//        [--grace-ms 30] (the nodes' migrationGraceMs: what a node on a server in a cluster waits around
//        its unsubscribe by default, set here on one server)
//        [--pipelined 64] (the pipelined caller's messages in flight)
//        [--moves] (a `migration.move` line for every counted move: its downtime, gap and phases)
//        [--servers 3] (a JetStream cluster of three nats-servers, each in a network namespace of its
//        own, root only: the source, the target and the callers each on a server of their own, the
//        stream and consumers with 3 replicas; moves between nodes on different servers)
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { connectCluster, type MigrationReport, startEmbeddedNats } from '../packages/runtime/dist/index.js';
import { NatsCluster } from '../test/fixtures/hosts/nats-cluster.js';
import { Hosts } from '../test/fixtures/hosts/netns.js';
import { BigSequencer, DeltaSequencer, Sequencer } from '../test/fixtures/runtime-actors.js';
import { type NodeProc, startNode, stopAll } from '../test/fixtures/runtime-procs.js';
import { countApplied, startLoad, startOpenLoad } from '../test/fixtures/sequencer-load.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const quick = process.argv.includes('--quick');
const KB = 1024;
const MB = 1024 * KB;
const migrations = Number(arg('migrations') ?? (quick ? 2 : 50));
/** Moves before the counted ones, an even number so that the counted ones start from the same node. */
const warmup = 2 * Math.ceil(Number(arg('warmup') ?? (quick ? 0 : 4)) / 2);
const sizes = (arg('sizes') ?? (quick ? `${KB}` : `${KB},${64 * KB},${MB},${16 * MB},${100 * MB}`))
  .split(',')
  .map(Number);
const modes = (arg('modes') ?? 'fast,durable').split(',') as ('fast' | 'durable')[];
const snapshots = (arg('snapshots') ?? 'on-demand,delta,every-turn').split(',');
/** Options for the node processes' node (V8's heap sizing, for one). */
const nodeArgs = (arg('node-args') ?? '').split(' ').filter((a) => a.length > 0);
const graceMs = arg('grace-ms') === undefined ? undefined : Number(arg('grace-ms'));
const servers = Number(arg('servers') ?? 1);
/** A `migration.move` line for every counted move, before its line's summary. */
const perMove = process.argv.includes('--moves');
/** In flight of the pipelined caller: less than 64 leaves the two-vCPU host some room (a control). */
const pipelinedInflight = Number(arg('pipelined') ?? (quick ? 16 : 64));
if (!Number.isSafeInteger(pipelinedInflight) || pipelinedInflight < 1)
  throw new Error("--pipelined takes the pipelined caller's messages in flight, 1 or more");
if (servers !== 1 && servers !== 3) throw new Error('--servers is 1 or 3');
/**
 * Each mode runs three times: snapshotted on demand (what a large state such as a KV cache uses: only
 * the migration, a stop or a durable commit encodes it) at every size, the same with delta hooks (the
 * pause sends the change since the last round instead of comparing images), and snapshotted after
 * every turn (the default) up to 1 MiB, where encoding per turn starts to dominate each turn (durable
 * at 16 MiB: the per-turn encodings outran the garbage collector, 4.4 GB extra resident). Beyond
 * 256 KiB a durable record keeps its snapshot in chunks.
 */
const VARIANTS = (
  [
    { mode: 'fast', snapshot: 'on-demand', def: BigSequencer, maxState: Number.POSITIVE_INFINITY },
    { mode: 'fast', snapshot: 'delta', def: DeltaSequencer, maxState: Number.POSITIVE_INFINITY },
    { mode: 'fast', snapshot: 'every-turn', def: Sequencer, maxState: MB },
    { mode: 'durable', snapshot: 'on-demand', def: BigSequencer, maxState: Number.POSITIVE_INFINITY },
    { mode: 'durable', snapshot: 'delta', def: DeltaSequencer, maxState: Number.POSITIVE_INFINITY },
    { mode: 'durable', snapshot: 'every-turn', def: Sequencer, maxState: MB },
  ] as const
).filter((v) => snapshots.includes(v.snapshot));
/** Time between migrations, so that the gaps outside them are measured too. */
const BETWEEN_MS = 150;
/**
 * Windows as long as a move and its pause with no move, after the moves (quiet_extra_rss_*; the
 * quiet_downtime_* windows are cut from the same period).
 */
const QUIET_WINDOWS = quick ? 2 : 10;
/**
 * The open-loop caller asks this often, whatever the replies: light enough for a 1 MiB state that is
 * snapshotted after every turn.
 */
const OPEN_LOOP_MS = 5;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
};
const r2 = (x: number) => Math.round(x * 100) / 100;

/**
 * Windows as long as the moves in `moves`, one after another over [from, to] (a period with the load
 * and no move), as many as there are moves at most.
 */
function windowsWithoutMoves(moves: [number, number][], from: number, to: number): [number, number][] {
  const out: [number, number][] = [];
  let t = from;
  for (const [s, e] of moves) {
    if (t + (e - s) > to) break;
    out.push([t, t + (e - s)]);
    t += e - s;
  }
  return out;
}
const rssMb = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
};

/** The servers: one embedded, or three in network namespaces (the nodes on h1 and h2, callers on h3). */
const hosts = servers === 3 ? new Hosts(['h1', 'h2', 'h3']) : undefined;
const natsCluster = hosts ? await NatsCluster.start(hosts) : undefined;
const embedded = natsCluster ? undefined : await startEmbeddedNats();
const urlOf = (server: 'h1' | 'h2' | 'h3') => natsCluster?.url(server) ?? embedded!.url;
const cluster = 'benchmig';
const client = await connectCluster({ nats: urlOf('h3'), name: cluster, askTimeoutMs: 30_000 });
let nodes: NodeProc[] = [];
try {
  nodes = await Promise.all(
    (['h1', 'h2'] as const).map((server, i) =>
      startNode(
        {
          nats: urlOf(server),
          cluster,
          nodeId: `bench-${'ab'[i]}`,
          ...(graceMs !== undefined ? { migrationGraceMs: graceMs } : {}),
        },
        nodeArgs,
      ),
    ),
  );
  const [a, b] = nodes as [NodeProc, NodeProc];
  for (const { mode, snapshot, def, maxState } of VARIANTS.filter((v) => modes.includes(v.mode))) {
    for (const bytes of sizes.filter((n) => n <= maxState)) {
      const ref = await client.spawn(def, { id: `s-${mode}-${snapshot}-${bytes}`, node: a.nodeId });
      await ref.ask({ type: 'resize', bytes }, { timeoutMs: 60_000 });
      const sentAgainBefore = client.metrics().sentAgain;
      const serial = startLoad(ref, 'serial', 1, mode, 30_000);
      const pipelined = startLoad(ref, 'pipelined', pipelinedInflight, mode, 30_000);
      // Its messages are in flight at every instant of a hand-off (the closed loops send nothing while
      // the actor is paused).
      const open = startOpenLoad(ref, 'open', 1, OPEN_LOOP_MS, mode, 30_000);
      const pids = nodes.map((n) => n.child.pid!);
      await delay(300);
      const rssNow = () => pids.reduce((s, p) => s + rssMb(p), 0);
      const baseline = rssNow();
      let peak = baseline;
      /** Resident memory at each move's start, and the highest until the next move starts. */
      const moveRss: { start: number; peak: number }[] = [];
      // A node process that exited (its /proc entry gone) fails the line from the loop below, so that
      // `finally` stops the other processes; a throw in this timer would end the bench without it.
      let sampleError: unknown;
      const sampler = setInterval(() => {
        try {
          const now = rssNow();
          peak = Math.max(peak, now);
          const move = moveRss[moveRss.length - 1];
          if (move) move.peak = Math.max(move.peak, now);
        } catch (err) {
          sampleError ??= err;
        }
      }, 10);
      const windows: [number, number][] = [];
      const reports: MigrationReport[] = [];
      /** Each move's report, by window (undefined where it failed). */
      const byWindow: (MigrationReport | undefined)[] = [];
      const failures: string[] = [];
      for (let i = 0; i < warmup + migrations; i++) {
        if (sampleError) throw sampleError;
        const to = i % 2 === 0 ? b.nodeId : a.nodeId;
        const t0 = performance.now();
        const atStart = rssNow();
        moveRss.push({ start: atStart, peak: atStart });
        try {
          const report = await client.migrate(ref, to, { timeoutMs: 120_000 });
          reports.push(report);
          byWindow.push(report);
        } catch (err) {
          failures.push((err as Error).message);
          byWindow.push(undefined);
        }
        windows.push([t0, performance.now()]);
        await delay(BETWEEN_MS);
      }
      // The same measure over as many windows as long with no move: what the load alone adds.
      const starts = windows.map(([t0]) => t0);
      const windowMs = pct(
        starts.slice(1).map((t, k) => t - starts[k]!),
        50,
      );
      const quiet = moveRss.length;
      const quietFrom = performance.now();
      for (let i = 0; i < QUIET_WINDOWS && Number.isFinite(windowMs); i++) {
        const atStart = rssNow();
        moveRss.push({ start: atStart, peak: atStart });
        await delay(windowMs);
      }
      const quietTo = performance.now();
      clearInterval(sampler);
      await Promise.all([serial.stop(), pipelined.stop(), open.stop()]);
      const counts = await countApplied(ref, [serial, pipelined, open]);
      const blob = (await ref.ask({ type: 'verify' }, { timeoutMs: 60_000 })) as {
        kept: number;
        actual: number;
      };
      await client.stop(ref);

      const r = serial.replies;
      const gaps = r.slice(1).map((t, k) => ({ from: r[k]!, to: t, ms: t - r[k]! }));
      const during = (g: { from: number; to: number }) => windows.some(([s, e]) => g.to > s && g.from < e);
      const outside = gaps.filter((g) => !during(g)).map((g) => g.ms);
      const normal = pct(outside, 50);
      const downtimeOf = ([s, e]: [number, number]) => {
        const worst = Math.max(0, ...gaps.filter((g) => g.to > s && g.from < e).map((g) => g.ms));
        return Math.max(0, worst - normal);
      };
      const warmupDowntimes = windows.slice(0, warmup).map(downtimeOf);
      const movesExtra = moveRss.slice(warmup, quiet).map((m) => m.peak - m.start);
      const quietExtra = moveRss.slice(quiet).map((m) => m.peak - m.start);
      const downtimes = windows.slice(warmup).map(downtimeOf);
      const quietDowntimes = windowsWithoutMoves(windows.slice(warmup), quietFrom, quietTo).map(downtimeOf);
      /** Move `k` (of all, warm-up included): its downtime, where its worst gap fell, and its phases. */
      const moveRow = (k: number) => {
        const [from, to] = windows[k]!;
        const worst = gaps
          .filter((g) => g.to > from && g.from < to)
          .reduce((w, g) => (g.ms > w.ms ? g : w), { from, to: from, ms: 0 });
        const r = byWindow[k];
        return {
          downtime_ms: r2(downtimeOf([from, to])),
          gap_from_ms: r2(worst.from - from),
          gap_ms: r2(worst.ms),
          ...(r
            ? {
                transfer_ms: r2(r.precopyMs),
                paused_ms: r2(r.pausedMs),
                settle_ms: r2(r.settleMs),
                commit_ms: r2(r.commitMs),
                ...(r.targetCommitMs !== undefined ? { target_commit_ms: r2(r.targetCommitMs) } : {}),
                ...(r.directoryMs !== undefined ? { directory_ms: r2(r.directoryMs) } : {}),
                handoff_ms: r2(r.handoffMs),
                stop_receiving_ms: r2(r.stopReceivingMs),
                forward_ms: r2(r.forwardMs),
              }
            : { failed: true }),
        };
      };
      const line = { bench: 'migration', mode, snapshot, state_bytes: bytes };
      if (perMove)
        for (let k = warmup; k < windows.length; k++)
          process.stdout.write(
            `${JSON.stringify({ ...line, bench: 'migration.move', move: k - warmup, ...moveRow(k) })}\n`,
          );
      // Reports and failures of the counted moves only.
      const counted = reports.slice(Math.max(0, reports.length - migrations));
      const sum = (f: (c: (typeof counts)[number]) => number) => counts.reduce((s, c) => s + f(c), 0);
      // Over the moves that report the figure (the target's, where its commit's answer was not lost).
      const median = (f: (m: MigrationReport) => number | undefined) =>
        r2(
          pct(
            counted.map(f).filter((x) => x !== undefined),
            50,
          ),
        );
      const sentAgain = client.metrics().sentAgain - sentAgainBefore;
      process.stdout.write(
        `${JSON.stringify({
          ...line,
          ...(nodeArgs.length > 0 ? { node_args: nodeArgs.join(' ') } : {}),
          ...(graceMs !== undefined ? { grace_ms: graceMs } : {}),
          servers,
          pipelined_inflight: pipelinedInflight,
          migrations: counted.length,
          warmup_migrations: warmup,
          migrations_failed: failures.length,
          downtime_p50_ms: r2(pct(downtimes, 50)),
          downtime_p99_ms: r2(pct(downtimes, 99)),
          downtime_max_ms: r2(Math.max(...downtimes)),
          warmup_downtime_max_ms: r2(Math.max(0, ...warmupDowntimes)),
          normal_gap_ms: r2(normal),
          // The same measure without a migration: how far the serial client's gaps stray anyway.
          gap_outside_p99_ms: r2(pct(outside, 99) - normal),
          quiet_windows: quietDowntimes.length,
          quiet_downtime_p50_ms: r2(pct(quietDowntimes, 50)),
          quiet_downtime_p99_ms: r2(pct(quietDowntimes, 99)),
          paused_p50_ms: median((m) => m.pausedMs),
          settle_p50_ms: median((m) => m.settleMs),
          commit_p50_ms: median((m) => m.commitMs),
          target_commit_p50_ms: median((m) => m.targetCommitMs),
          directory_p50_ms: median((m) => m.directoryMs),
          handoff_p50_ms: median((m) => m.handoffMs),
          stop_receiving_p50_ms: median((m) => m.stopReceivingMs),
          forward_p50_ms: median((m) => m.forwardMs),
          transfer_ms: median((m) => m.precopyMs),
          delta_bytes_p50: median((m) => m.deltaBytes),
          change_rounds_p50: median((m) => m.changeRounds),
          image_from_record: counted.filter((m) => m.imageFromRecord).length,
          // Moves whose target read the durable consumer as it was (the source's pulls handed over).
          pulls_handed_over: counted.filter((m) => m.pullsHandedOver > 0).length,
          pulls_held_p50_ms: median((m) => m.pullsHeldMs),
          forwarded: counted.reduce((s, m) => s + m.forwarded, 0),
          peak_extra_rss_mb: r2(peak - baseline),
          move_extra_rss_p50_mb: r2(pct(movesExtra, 50)),
          move_extra_rss_max_mb: r2(Math.max(0, ...movesExtra)),
          quiet_extra_rss_p50_mb: r2(pct(quietExtra, 50)),
          quiet_extra_rss_max_mb: r2(Math.max(0, ...quietExtra)),
          sent: sum((c) => c.sent),
          lost: sum((c) => c.lost),
          duplicated: sum((c) => c.duplicated),
          reordered: sum((c) => c.outOfOrder),
          state_intact: blob.kept === blob.actual,
          // The slowest counted move: where its worst gap fell against its pre-copy and pause.
          slowest_move: moveRow(warmup + downtimes.indexOf(Math.max(...downtimes))),
          sent_again: sentAgain,
          caller_errors: serial.errors.length + pipelined.errors.length + open.errors.length + sentAgain,
          ...(failures.length > 0 ? { first_failure: failures[0] } : {}),
        })}\n`,
      );
    }
  }
} finally {
  await client.close();
  await stopAll();
  await embedded?.stop();
  await natsCluster?.close();
  await hosts?.close();
}
