import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
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
 * coreutils `timeout`, where installed: it bounds a tool even when this process is SIGKILLed (our own
 * timer dies with us), and on expiry it SIGKILLs the tool's whole process group (clang's `ld` too).
 */
const TIMEOUT_BIN = ['/usr/bin/timeout', '/bin/timeout'].find((f) => existsSync(f));
/** The backstop fires this long after our own timer, which kills and reports first while we live. */
const BACKSTOP_MS = 1000;
/** Process groups of the tools running now: SIGKILLed should this process exit while they run. */
const running = new Set<number>();

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // The group is gone already.
  }
}

function killRunningTools(): void {
  for (const pgid of running) killGroup(pgid);
}

/**
 * Runs a tool, feeding `stdin`; resolves its stdout. Throws `ToolchainMissing` / `CompileFailed`.
 * `tmpDir`: where the tool writes its own temporary files (TMPDIR). `timeoutMs`: past it the tool is
 * hung and is killed with every process it started.
 */
export function runTool(
  tool: string,
  args: string[],
  stdin: string,
  stage: string,
  kernel: string,
  tmpDir?: string,
  timeoutMs = TOOL_TIMEOUT_MS,
): Promise<string> {
  return gate.run(
    () =>
      new Promise<string>((resolve, reject) => {
        const [file, argv] = TIMEOUT_BIN
          ? [TIMEOUT_BIN, ['-s', 'KILL', `${(timeoutMs + BACKSTOP_MS) / 1000}s`, tool, ...args]]
          : [tool, args];
        // Its own process group (and session): a timeout kills the group, so no child of the tool is left.
        const child = spawn(file, argv, {
          stdio: ['pipe', 'pipe', 'pipe'],
          detached: true,
          ...(tmpDir ? { env: { ...process.env, TMPDIR: tmpDir } } : {}),
        });
        const pgid = child.pid;
        if (pgid !== undefined) {
          if (running.size === 0) process.once('exit', killRunningTools);
          running.add(pgid);
        }
        // Our own timer rather than spawn's `timeout`, which stays armed when the spawn itself fails.
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          if (pgid !== undefined) killGroup(pgid);
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          if (pgid === undefined || !running.delete(pgid)) return;
          // A child of the tool that kept our pipes open must not outlive it either.
          killGroup(pgid);
          if (running.size === 0) process.off('exit', killRunningTools);
        };
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on('data', (b: Buffer) => out.push(b));
        child.stderr.on('data', (b: Buffer) => err.push(b));
        child.on('error', (e: NodeJS.ErrnoException) => {
          done();
          reject(e.code === 'ENOENT' ? new ToolchainMissing(tool, { cause: e }) : e);
        });
        // The tool is done: what is left in its group (a child it did not wait for) goes now, which
        // also closes the pipes such a child holds, so 'close' comes.
        child.on('exit', done);
        child.on('close', (code, signal) => {
          done();
          const stderr = Buffer.concat(err).toString('utf8');
          if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
          // `timeout` SIGKILLs its own group, itself included, when the backstop fires.
          else if (timedOut || (TIMEOUT_BIN && signal === 'SIGKILL'))
            reject(new CompileFailed(stage, kernel, `killed after ${timeoutMs} ms`));
          // `timeout` exits 127 when it finds no such command (its message, maybe translated, names it).
          else if (code === 127 && TIMEOUT_BIN && stderr.startsWith(`${TIMEOUT_BIN}:`))
            reject(new ToolchainMissing(tool, { cause: new Error(stderr.trim()) }));
          else reject(new CompileFailed(stage, kernel, stderr));
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

export interface Linker {
  /** The linker clang's driver would run (GNU ld from binutils on Debian). */
  ld: string;
  /** libgcc's archive: compiler builtins a kernel may call. */
  libgcc: string;
}
let linkerPaths: Promise<Linker> | undefined;

/** Where clang-19 finds its linker and libgcc; asked once per process, at its first compile (not on cache hits). */
export function linker(): Promise<Linker> {
  linkerPaths ??= Promise.all([
    runTool('clang-19', ['-print-prog-name=ld'], '', 'clang-19 -print-prog-name=ld', '-'),
    runTool('clang-19', ['-print-libgcc-file-name'], '', 'clang-19 -print-libgcc-file-name', '-'),
  ]).then(([ld, libgcc]) => ({ ld: ld.trim(), libgcc: libgcc.trim() }));
  return linkerPaths;
}
