import { spawn } from 'node:child_process';
import { CompileFailed, ToolchainMissing } from './errors.js';

/** Passes after the (optional) transform schedule: everything down to the LLVM dialect. */
export const LOWERING = [
  '--convert-vector-to-scf',
  '--convert-linalg-to-loops',
  '--expand-strided-metadata',
  '--lower-affine',
  '--convert-scf-to-cf',
  // x86vector: AVX-512 instructions the vector dialect has no op for (softmax's vscalefps).
  '--convert-vector-to-llvm=enable-x86vector',
  '--convert-math-to-llvm',
  '--convert-arith-to-llvm',
  '--finalize-memref-to-llvm',
  '--convert-func-to-llvm',
  '--reconcile-unrealized-casts',
];
export const SCHEDULE = [
  '--transform-interpreter',
  '--test-transform-dialect-erase-schedule',
  '--canonicalize',
  '--cse',
  '--canonicalize',
  // One-shot bufferization allocates scratch (matvec partial sums) without freeing it.
  '--buffer-deallocation-pipeline',
];

/** Limits concurrent compiler processes: each one is single-threaded and memory-hungry. */
class Gate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
const gate = new Gate(2);
/** A compile step that runs longer than this is hung (seen with some schedules), not slow. */
const TOOL_TIMEOUT_MS = 120_000;

/**
 * Runs a tool, feeding `stdin`; resolves its stdout. Throws `ToolchainMissing` / `CompileFailed`.
 * `tmpDir`: where the tool writes its own temporary files (TMPDIR).
 */
export function runTool(
  tool: string,
  args: string[],
  stdin: string,
  stage: string,
  kernel: string,
  tmpDir?: string,
): Promise<string> {
  return gate.run(
    () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(tool, args, {
          stdio: ['pipe', 'pipe', 'pipe'],
          ...(tmpDir ? { env: { ...process.env, TMPDIR: tmpDir } } : {}),
        });
        // Our own timer rather than spawn's `timeout`, which stays armed when the spawn itself fails.
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, TOOL_TIMEOUT_MS);
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on('data', (b: Buffer) => out.push(b));
        child.stderr.on('data', (b: Buffer) => err.push(b));
        child.on('error', (e: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          reject(e.code === 'ENOENT' ? new ToolchainMissing(tool, { cause: e }) : e);
        });
        child.on('close', (code) => {
          clearTimeout(timer);
          if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
          else if (timedOut) reject(new CompileFailed(stage, kernel, `killed after ${TOOL_TIMEOUT_MS} ms`));
          else reject(new CompileFailed(stage, kernel, Buffer.concat(err).toString('utf8')));
        });
        child.stdin.on('error', () => {});
        child.stdin.end(stdin);
      }),
  );
}

let version: Promise<string> | undefined;

/** First line of `clang-19 --version`; part of every artifact's content hash. */
export function toolchainVersion(): Promise<string> {
  version ??= runTool('clang-19', ['--version'], '', 'clang-19 --version', '-').then((s) =>
    s.split('\n')[0]!.trim(),
  );
  return version;
}
