// Where the test command's time goes: runs test files as `npm run test:all` does (N at a time, each in
// its own `node --test`), and prints each file's wall and CPU seconds (its processes and the ones they
// waited for: node processes, nats-servers, compilers), most CPU first, then the totals. On a machine
// the test command keeps busy, the CPU total over the core count bounds its wall time from below.
//
//   usage: node scripts/test-cost.mjs [-j N] [--json] [FILE…]   (N defaults to 3; files to test:all's)
//
// Run it after `bash deploy/setup.sh`. It does not clear the kernel cache: set STITCH_KERNEL_CACHE to
// an empty directory to count the compiles a fresh machine makes.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url);
const { values, positionals } = parseArgs({
  options: { j: { type: 'string', short: 'j', default: '3' }, json: { type: 'boolean', default: false } },
  allowPositionals: true,
});
const concurrency = Number(values.j);
if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new Error('-j takes a count of 1 or more');

/** test:all's file list, expanded by bash in the order the test command gives it to node. */
function testAllFiles() {
  const script = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')).scripts['test:all'];
  const globs = script.split(' ').filter((w) => w.endsWith('.test.ts'));
  return new Promise((resolve, reject) => {
    const sh = spawn('bash', ['-c', `printf '%s\\n' ${globs.join(' ')}`], { cwd: root });
    let out = '';
    sh.stdout.on('data', (b) => (out += b));
    sh.on('error', reject);
    sh.on('close', () => resolve(out.split('\n').filter(Boolean)));
  });
}

/** bash's `times`: its second line is the user and system time of the children it waited for. */
const seconds = (s) => {
  const m = /^(\d+)m([\d.]+)s$/.exec(s);
  return m ? Number(m[1]) * 60 + Number(m[2]) : Number.NaN;
};

function run(file) {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const sh = spawn(
      'bash',
      [
        '-c',
        'node --import @stitch/typescript-loader --test --test-timeout=180000 "$1" >/dev/null 2>&1; rc=$?; times; exit $rc',
        '-',
        file,
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    sh.stdout.on('data', (b) => (out += b));
    sh.on('error', reject);
    sh.on('close', (code) => {
      const [user, system] = (out.trim().split('\n')[1] ?? '').split(' ').map(seconds);
      resolve({ file, ok: code === 0, wallS: (performance.now() - started) / 1000, cpuS: user + system });
    });
  });
}

const files = positionals.length > 0 ? positionals : await testAllFiles();
const rows = [];
const started = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(concurrency, files.length) }, async () => {
    while (next < files.length) {
      const row = await run(files[next++]);
      rows.push(row);
      if (!values.json) process.stderr.write(`${rows.length}/${files.length} ${row.file}\n`);
    }
  }),
);
rows.sort((a, b) => b.cpuS - a.cpuS);
const totals = {
  files: rows.length,
  failed: rows.filter((r) => !r.ok).map((r) => r.file),
  wallS: (performance.now() - started) / 1000,
  cpuS: rows.reduce((s, r) => s + r.cpuS, 0),
  cores: cpus().length,
  concurrency,
};
if (values.json) {
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
  process.stdout.write(`${JSON.stringify({ totals })}\n`);
} else {
  const f1 = (x) => x.toFixed(1).padStart(7);
  process.stdout.write('    cpu s  wall s  file\n');
  for (const r of rows)
    process.stdout.write(`${f1(r.cpuS)} ${f1(r.wallS)}  ${r.file}${r.ok ? '' : '  (failed)'}\n`);
  process.stdout.write(
    `${f1(totals.cpuS)} ${f1(totals.wallS)}  total: ${totals.files} files, ${totals.failed.length} failed; ` +
      `${totals.cores} cores → at least ${(totals.cpuS / totals.cores).toFixed(0)} s of wall time\n`,
  );
}
process.exitCode = totals.failed.length > 0 ? 1 : 0;
