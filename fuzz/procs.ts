// The node process under attack: forked, watched (pid, exit) and sampled (RSS) by the fuzzer.
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export { alive } from '../test/fixtures/pids.js';

export interface NodeProc {
  child: ChildProcess;
  pid: number;
  exited: boolean;
}

export interface NodeProcConfig {
  nats: string;
  cluster: string;
  nodeId: string;
  coordinatorId: string;
  verbose: boolean;
}

const nodeScript = fileURLToPath(new URL('./node.ts', import.meta.url));

export async function startNodeProc(config: NodeProcConfig): Promise<NodeProc> {
  const child = fork(nodeScript, [JSON.stringify(config)], {
    execArgv: ['--import', '@stitch/typescript-loader'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const proc: NodeProc = { child, pid: child.pid ?? -1, exited: false };
  child.once('exit', () => {
    proc.exited = true;
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('fuzz node did not report ready in 30 s')), 30_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`fuzz node exited (${code ?? signal}) before it was ready`));
    });
  });
  return proc;
}

export async function stopNodeProc(proc: NodeProc | undefined): Promise<void> {
  if (!proc || proc.exited) return;
  const gone = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

/** VmRSS of a process in MiB, or 0 when it cannot be read. */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : 0;
  } catch {
    return 0;
  }
}

/** The node process's `process.memoryUsage()` in MiB (asked over IPC), or undefined if it does not answer. */
export function memoryOf(proc: NodeProc): Promise<Record<string, number> | undefined> {
  if (proc.exited) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      proc.child.off('message', on);
      resolve(undefined);
    }, 2000);
    const on = (m: unknown) => {
      const mem = (m as { memory?: Record<string, number> }).memory;
      if (!mem) return;
      clearTimeout(timer);
      proc.child.off('message', on);
      resolve(Object.fromEntries(Object.entries(mem).map(([k, v]) => [k, Math.round(v / 2 ** 20)])));
    };
    proc.child.on('message', on);
    proc.child.send('memory');
  });
}
