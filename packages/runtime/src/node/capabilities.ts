import { arch, cpus } from 'node:os';

export interface CpuDevice {
  kind: 'cpu';
  model: string;
  arch: string;
  cores: number;
  /** ISA features the probe found (e.g. avx2, avx512f); empty when the probe cannot tell. */
  features: string[];
  /** x86-64 micro-architecture level (`x86-64-v3`, …), or null when unknown or not x86. */
  x86Level: string | null;
}

export type Device =
  | CpuDevice
  | { kind: 'cuda'; index: number }
  | { kind: `virtual:${string}`; catalogId: string; modelled: true; slots: number };

/** Achieved throughput measured on this host's CPU by a calibration run. */
export interface Calibration {
  /** Compile target the calibration kernels were built for. */
  target: string;
  /** One thread. */
  matmulGflops: number;
  matvecGbps: number;
  /** Threads of the all-thread figures (absent from calibrations that measured one thread only). */
  threads?: number;
  matmulGflopsAllThreads?: number;
  matvecGbpsAllThreads?: number;
}

/** One device's execution slots as a node advertises them (`load.devices` of its capability record). */
export interface DeviceLoad {
  /** `cpu`, `cuda:<index>`, or the catalog id of a modelled device (e.g. `h100`). */
  device: string;
  modelled: boolean;
  /** Work items the device runs at once: a CPU's cores, a modelled device's configured concurrency. */
  slots: number;
  /** Slots held now. */
  busy: number;
  /** Work waiting for a slot. */
  queued: number;
}

/** Finds this host's devices; `stitch node` passes the native addon's probe. */
export type ProbeFn = () => Device[] | Promise<Device[]>;

/** Measures the CPU once after the node starts; `stitch node` passes @stitch/kernels' calibration. */
export type CalibrateFn = (cpu: CpuDevice) => Promise<Calibration>;

/** What a node advertises in `stitch_<cluster>_nodes` (key = node id), renewed every heartbeat. */
export interface CapabilityRecord {
  nodeId: string;
  /** Changes each time a process starts a node with this id: directory entries of an older one are stale. */
  incarnation: string;
  host: string;
  pid: number;
  startedAt: number;
  heartbeatAt: number;
  devices: Device[];
  memory: { totalBytes: number; freeBytes: number; rssBytes: number };
  labels: Record<string, string>;
  actorTypes: string[];
  /** `devices`: each device's execution slots, held and waited for (see DeviceSlots); absent from older nodes. */
  load: { actors: number; queued: number; running: number; loadAvg1: number; devices?: DeviceLoad[] };
  eventLoopLagMs: { p99: number; max: number };
  healthy: boolean;
  /** The node is draining (see Node.drain): it takes no new actors, so nothing should be placed on it. */
  draining?: true;
  /**
   * The node sheds load (NodeOptions.shedding): it refuses new fast-mode messages, so a new
   * activation goes elsewhere when another node can take it. As of its last heartbeat.
   */
  shedding?: true;
  /** The node fires reminders (see ReminderScheduler): the others share the reminders out among such nodes. */
  reminders?: true;
  /** From the node's calibrate function; absent until it finishes, or when there is none or it failed. */
  calibrated?: Calibration & { measuredAt: number };
  probeError?: string;
}

/** The default probe: the CPU as Node's os module sees it, with no ISA features and no accelerators. */
export const osProbe: ProbeFn = () => {
  const all = cpus();
  return [
    {
      kind: 'cpu',
      model: all[0]?.model.replace(/\s+/g, ' ').trim() || 'unknown',
      arch: arch(),
      cores: all.length,
      features: [],
      x86Level: null,
    },
  ];
};

const NODE_ID = /^[A-Za-z0-9_-]{1,120}$/;

/**
 * Whether a value read from the nodes bucket (under `key`) is a capability record a node wrote: the
 * fields placement and the CLI read have their types, and the node id is the key. Anyone who may write
 * the bucket can put garbage there; such an entry is not a node.
 */
export function isCapabilityRecord(v: unknown, key: string): v is CapabilityRecord {
  const r = v as Partial<CapabilityRecord> | null;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return false;
  if (r.nodeId !== key || !NODE_ID.test(key) || typeof r.healthy !== 'boolean') return false;
  if (!Array.isArray(r.actorTypes) || !r.actorTypes.every((t) => typeof t === 'string')) return false;
  if (!Array.isArray(r.devices) || !r.devices.every(isDevice)) return false;
  if (typeof r.labels !== 'object' || r.labels === null) return false;
  if (r.calibrated !== undefined && !isCalibration(r.calibrated)) return false;
  if (r.draining !== undefined && r.draining !== true) return false;
  if (r.shedding !== undefined && r.shedding !== true) return false;
  if (r.reminders !== undefined && r.reminders !== true) return false;
  const load = r.load as Record<string, unknown> | undefined;
  return (
    typeof load === 'object' &&
    load !== null &&
    ['actors', 'queued', 'running'].every((k) => Number.isFinite(load[k]))
  );
}

/** A device entry with what placement reads: its kind, and a modelled one's catalog id. */
function isDevice(v: unknown): boolean {
  const d = v as { kind?: unknown; catalogId?: unknown } | null;
  if (typeof d !== 'object' || d === null || typeof d.kind !== 'string') return false;
  return !d.kind.startsWith('virtual:') || typeof d.catalogId === 'string';
}

/** Peaks the cost model can take: finite and above zero (a plan divides by them). */
function isCalibration(v: unknown): boolean {
  const c = v as Partial<Calibration> | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    [c.matmulGflops, c.matvecGbps].every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0)
  );
}
