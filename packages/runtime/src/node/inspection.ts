import type { ActorInspection } from '../actor/definition.js';
import type { ReminderCounts } from '../reminders/scheduler.js';
import type { NodeShedding } from './load-shedder.js';
import type { NodeMigrations } from './migration-counts.js';
import type { SlotsInUse } from './slots.js';

/** What a node hosts, as `cluster.inspectNode` returns it, and the live migrations of its actors. */
export interface NodeInspection {
  nodeId: string;
  actors: ActorInspection[];
  /** Absent from a node of an earlier version. */
  migrations?: NodeMigrations;
  /** Whether the node sheds load now, and how many messages it shed (NodeOptions.shedding). Absent from a node of an earlier version. */
  shedding?: NodeShedding;
  /**
   * Per actor type with a `concurrencyPerNode` bound, its turns on this node: the bound, those running
   * and those waiting. Absent from a node of an earlier version.
   */
  typeSlots?: Record<string, SlotsInUse>;
  /** The node's reminder scheduler; absent where it runs none (no reminders bucket) and from older nodes. */
  reminders?: ReminderCounts;
}

/** Types a node can have registered are its code's, but an answer is input: at most this many read. */
const MAX_TYPE_SLOTS = 1024;

const COUNTERS = ['depth', 'running', 'accepted', 'processed', 'rejected', 'busyMs'] as const;

/** A count or a duration: a finite number, not negative. */
const count = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/**
 * Whether a reply on a node's query subject is an inspection of node `nodeId`: anyone allowed to
 * answer there could send something else, and a control loop would act on its numbers.
 */
export function isNodeInspection(v: unknown, nodeId: string): v is NodeInspection {
  const r = v as Partial<NodeInspection> | null;
  if (typeof r !== 'object' || r === null || r.nodeId !== nodeId || !Array.isArray(r.actors)) return false;
  if (r.migrations !== undefined && !isNodeMigrations(r.migrations)) return false;
  if (r.shedding !== undefined && !isNodeShedding(r.shedding)) return false;
  if (r.typeSlots !== undefined && !areTypeSlots(r.typeSlots)) return false;
  if (r.reminders !== undefined && !areReminderCounts(r.reminders)) return false;
  return r.actors.every((a) => {
    const m = (a as Partial<ActorInspection> | null)?.mailbox as Record<string, unknown> | undefined;
    const wait = (a as Partial<ActorInspection> | null)?.slotWaitMs;
    return (
      typeof a?.type === 'string' &&
      typeof a.id === 'string' &&
      (wait === undefined || count(wait)) &&
      typeof m === 'object' &&
      m !== null &&
      COUNTERS.every((k) => count(m[k])) &&
      (m.shed === undefined || count(m.shed))
    );
  });
}

function areTypeSlots(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const all = Object.values(v as Record<string, unknown>);
  return (
    all.length <= MAX_TYPE_SLOTS &&
    all.every((s) => {
      const t = s as Partial<SlotsInUse> | null;
      return typeof t === 'object' && t !== null && count(t.slots) && count(t.busy) && count(t.queued);
    })
  );
}

function areReminderCounts(v: unknown): boolean {
  const c = v as Partial<ReminderCounts> | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    count(c.tracked) &&
    count(c.owned) &&
    count(c.fired) &&
    count(c.retried)
  );
}

function isNodeShedding(v: unknown): boolean {
  const s = v as Partial<NodeShedding> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    count(s.shed) &&
    (s.reason === undefined || (typeof s.reason === 'string' && s.reason.length <= 256))
  );
}

function isNodeMigrations(v: unknown): boolean {
  const m = v as Partial<NodeMigrations> | null;
  const p = m?.pausedMs as Record<string, unknown> | undefined;
  return (
    typeof m === 'object' &&
    m !== null &&
    count(m.out) &&
    count(m.in) &&
    count(m.failed) &&
    (m.underWay === undefined || count(m.underWay)) &&
    (m.arriving === undefined || count(m.arriving)) &&
    (m.waiting === undefined || count(m.waiting)) &&
    typeof p === 'object' &&
    p !== null &&
    count(p.p50) &&
    count(p.p99) &&
    count(p.max)
  );
}
