// Starts bench/actors-responder.ts as a child process and waits until it serves; `stop()` ends it.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface ResponderProcess {
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function forkResponder(natsUrl: string, execArgv: string[] = []): Promise<ResponderProcess> {
  const child = fork(fileURLToPath(new URL('./actors-responder.ts', import.meta.url)), [natsUrl], {
    execArgv: ['--import', 'tsx', ...execArgv],
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
