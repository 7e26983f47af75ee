import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { RawProbe } from '@stitch/native';

const require = createRequire(import.meta.url);

/** ISA features of the host as the OS lets programs use them (CPUID masked by XCR0). */
export type IsaFeatures = RawProbe['features'];

/** What `probeHost` reports about this machine. */
export interface HostProbe {
  arch: string;
  /**
   * The CPU model as the kernel names it (`model name` in /proc/cpuinfo), else `cpuidBrand`.
   * A hypervisor may rewrite either name, so the two can differ on the same machine.
   */
  cpuModel: string;
  /** The CPUID brand string the addon read (`unknown` off x86). */
  cpuidBrand: string;
  logicalCores: number;
  totalMemoryBytes: number;
  features: IsaFeatures;
  /** Highest x86-64 micro-architecture level the host runs (`x86-64`, `x86-64-v3`, `x86-64-v4`). */
  x86Level: 'x86-64' | 'x86-64-v3' | 'x86-64-v4' | null;
  cuda: RawProbe['cuda'];
}

let native: { probe(): RawProbe } | undefined;

/** Loads the addon once; its loader throws an error that says how to build it. */
export function loadNative(): { probe(): RawProbe } {
  native ??= require('@stitch/native') as { probe(): RawProbe };
  return native;
}

/** Probes CPU, ISA features, memory and the CUDA driver through the native addon. */
export function probeHost(): HostProbe {
  const raw = loadNative().probe();
  const cpuModel = cpuModelOf(readCpuinfo()) ?? raw.cpuModel;
  return { ...raw, cpuModel, cpuidBrand: raw.cpuModel, x86Level: x86Level(raw) };
}

/** The first `model name` of a /proc/cpuinfo text, whitespace collapsed; undefined where it has none (most ARM kernels). */
export function cpuModelOf(cpuinfo: string): string | undefined {
  const name = /^model name[ \t]*:[ \t]*(.*)$/m.exec(cpuinfo)?.[1]?.replace(/\s+/g, ' ').trim();
  return name || undefined;
}

function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // No procfs (macOS, some sandboxes): the CPUID brand string is the only name there is.
    return '';
  }
}

function x86Level(raw: RawProbe): HostProbe['x86Level'] {
  if (raw.arch !== 'x86_64') return null;
  const f = raw.features;
  if (f.avx512f && f.avx512bw && f.avx512vl) return 'x86-64-v4';
  if (f.avx2 && f.fma) return 'x86-64-v3';
  return 'x86-64';
}
