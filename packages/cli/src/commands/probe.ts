import { probeHost } from '@stitch/kernels';
import type { Command } from 'commander';

export function registerProbe(program: Command): void {
  program
    .command('probe')
    .description("Print this host's hardware capabilities (CPU, ISA features, memory, CUDA driver)")
    .option('--json', 'print the capability record as JSON')
    .action((opts: { json?: boolean }) => {
      const host = probeHost();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(host, null, 2)}\n`);
        return;
      }
      const features = Object.entries(host.features)
        .filter(([, on]) => on)
        .map(([name]) => name)
        .join(' ');
      const rows: [string, string][] = [
        ['cpu', host.cpuModel],
        ['arch', host.arch],
        ['logical cores', String(host.logicalCores)],
        ['memory', `${(host.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB`],
        ['isa features', features || '(none)'],
        ['x86-64 level', host.x86Level ?? 'n/a'],
        ['cuda', host.cuda.driverLoaded ? `driver loaded, ${host.cuda.deviceCount} device(s)` : 'no driver'],
      ];
      const width = Math.max(...rows.map(([k]) => k.length));
      for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
    });
}
