// Starts bench/actors-responder.ts as a child process and waits until it serves; `stop()` ends it.
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

/** Stream, subject and reply header of the raw JetStream mode: the responder consumes, the bench publishes. */
export const RAW_JS = { stream: 'bench_raw_js', subject: 'bench.rawjs.echo', replyHeader: 'Bench-Reply' };

export interface ResponderProcess {
  child: ChildProcess;
  stop(): Promise<void>;
}

/** `env` is added to this process's environment for the responder. */
export async function forkResponder(
  natsUrl: string,
  execArgv: string[] = [],
  env: Record<string, string> = {},
): Promise<ResponderProcess> {
  const child = fork(fileURLToPath(new URL('./actors-responder.ts', import.meta.url)), [natsUrl], {
    execArgv: ['--import', '@stitch/typescript-loader', ...execArgv],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`responder exited with ${code}`)));
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, stop };
}

/**
 * Pins every thread of this process to CPU 0 and of the responder to CPU 1 (nats-server stays free),
 * so that the scheduler neither stacks the two ends on one core nor moves them mid-run; on the 2-vCPU
 * development VM that placement alone moved serial round trips by tens of µs between runs. Both
 * modes of a comparison run in the same two processes, so it applies to both alike. Returns what was
 * done, for the output: `off` with fewer than 2 CPUs or without `taskset` (util-linux).
 */
export function pinApart(responder: ResponderProcess): string {
  if (availableParallelism() < 2) return 'off';
  const pin = (pid: number | undefined, cpu: string) =>
    pid !== undefined &&
    spawnSync('taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' }).status === 0;
  if (!pin(responder.child.pid, '1') || !pin(process.pid, '0')) return 'off';
  return 'bench:cpu0,responder:cpu1';
}
