import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { test } from 'node:test';
import { probeHost } from '../src/index.js';
import { cpuModelOf } from '../src/probe.js';

const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
const isX86 = process.arch === 'x64';

// Linux shows only the features the kernel enabled, the same view the probe takes via XCR0.
const flagOf = {
  sse42: 'sse4_2',
  avx2: 'avx2',
  fma: 'fma',
  avx512f: 'avx512f',
  avx512bw: 'avx512bw',
  avx512vl: 'avx512vl',
  avx512bf16: 'avx512_bf16',
  avx512vnni: 'avx512_vnni',
  amxTile: 'amx_tile',
  amxBf16: 'amx_bf16',
  amxInt8: 'amx_int8',
} as const;

test('ISA features agree with /proc/cpuinfo', { skip: !isX86 && 'x86 only' }, () => {
  const host = probeHost();
  for (const [feature, flag] of Object.entries(flagOf)) {
    assert.equal(
      host.features[feature as keyof typeof flagOf],
      flags.has(flag),
      `${feature} vs cpuinfo flag ${flag}`,
    );
  }
});

// A hypervisor may rewrite the CPUID brand string or /proc/cpuinfo (an AMD VM showed CPUID
// `Oxide Virtual Turin-like Processor` beside cpuinfo `AMD EPYC`), so cpuModel is the kernel's name
// and the brand string is only required to exist, never to match it.
test('CPU model, cores and memory agree with the kernel', () => {
  const host = probeHost();
  assert.equal(host.cpuModel, cpuModelOf(cpuinfo) ?? host.cpuidBrand);
  if (isX86) assert.notEqual(host.cpuidBrand, '');
  // Online CPUs, as sysconf counts them; availableParallelism() is smaller under taskset or a cpuset.
  assert.equal(host.logicalCores, cpus().length);
  const memKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
  // MemTotal excludes memory the kernel reserved at boot; physical pages count it, so allow 5 %.
  assert.ok(Math.abs(host.totalMemoryBytes - memKb * 1024) / (memKb * 1024) < 0.05, 'total memory');
});

test('the CPU model is the first model name of a cpuinfo text, whitespace collapsed', () => {
  const vm =
    'processor\t: 0\nmodel name\t: AMD  EPYC \nflags\t: fpu\n\nprocessor\t: 1\nmodel name\t: other\n';
  assert.equal(cpuModelOf(vm), 'AMD EPYC');
  assert.equal(cpuModelOf('processor\t: 0\nBogoMIPS\t: 50.00\n'), undefined);
  assert.equal(cpuModelOf('model name\t: \nflags\t: fpu\n'), undefined);
  assert.equal(cpuModelOf(''), undefined);
});

test('x86-64 level follows from the features', { skip: !isX86 && 'x86 only' }, () => {
  const host = probeHost();
  const v4 = flags.has('avx512f') && flags.has('avx512bw') && flags.has('avx512vl');
  const v3 = flags.has('avx2') && flags.has('fma');
  assert.equal(host.x86Level, v4 ? 'x86-64-v4' : v3 ? 'x86-64-v3' : 'x86-64');
});

test('the CUDA probe answers without a link-time dependency', () => {
  const { cuda } = probeHost();
  assert.equal(typeof cuda.driverLoaded, 'boolean');
  if (!cuda.driverLoaded) {
    assert.equal(cuda.deviceCount, 0);
    assert.match(cuda.error ?? '', /libcuda\.so\.1/);
  }
});
