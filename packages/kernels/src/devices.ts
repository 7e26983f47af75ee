import { type Calibration, calibrate } from './calibrate.js';
import { KernelOptionsInvalid } from './errors.js';
import { probeHost } from './probe.js';

/** A device as a stitch node advertises it (the runtime's `Device`, without depending on the runtime). */
export type ProbedDevice =
  | {
      kind: 'cpu';
      model: string;
      arch: string;
      cores: number;
      features: string[];
      x86Level: string | null;
    }
  | { kind: 'cuda'; index: number };

/** This host's CPU (with its ISA features) and CUDA devices, from the native addon: a node's `probe`. */
export function probeDevices(): ProbedDevice[] {
  const p = probeHost();
  const features = Object.entries(p.features)
    .filter(([, on]) => on)
    .map(([f]) => f);
  const devices: ProbedDevice[] = [
    { kind: 'cpu', model: p.cpuModel, arch: p.arch, cores: p.logicalCores, features, x86Level: p.x86Level },
  ];
  for (let index = 0; index < (p.cuda.driverLoaded ? p.cuda.deviceCount : 0); index++)
    devices.push({ kind: 'cuda', index });
  return devices;
}

/**
 * Achieved GFLOP/s and GB/s of the CPU, for a node's `calibrate`: compiles two kernels for its
 * x86-64 level on first use (cached after), so only `stitch node` turns it on by default.
 */
export async function calibrateCpu(cpu: { x86Level: string | null }): Promise<Calibration> {
  // The calibration kernels are compiled for x86-64 levels only.
  if (!cpu.x86Level) throw new KernelOptionsInvalid('calibration needs an x86-64 CPU');
  return calibrate(cpu.x86Level as Calibration['target']);
}
