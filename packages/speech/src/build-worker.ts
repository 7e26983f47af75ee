import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SpeechError, SpeechErrorCode } from './errors.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const SOURCE = join(here, '..', 'native', 'stt-worker.c');
/** Set to a prebuilt worker's path to skip building one. */
export const WORKER_ENV = 'STITCH_STT_WORKER';
export const INSTALL_HINT =
  'install the Debian packages pocketsphinx-en-us libpocketsphinx-dev libsphinxbase-dev (and a C compiler)';

async function compilerFlags(): Promise<string[]> {
  try {
    const { stdout } = await run('pkg-config', ['--cflags', '--libs', 'pocketsphinx', 'sphinxbase']);
    return stdout.trim().split(/\s+/);
  } catch {
    // Debian's -dev packages install the .pc files, but pkg-config itself may be absent.
    const { stdout } = await run(process.env.CC ?? 'cc', ['-dumpmachine']);
    const triple = stdout.trim();
    return [
      '-I/usr/include/pocketsphinx',
      '-I/usr/include/sphinxbase',
      `-I/usr/include/${triple}/sphinxbase`,
      '-lpocketsphinx',
      '-lsphinxbase',
    ];
  }
}

let building: Promise<string> | undefined;

/**
 * The recogniser worker's executable, compiled from native/stt-worker.c on first use against the
 * system's libpocketsphinx; named by the source's hash, so an edited source is rebuilt.
 */
export function ensureWorker(): Promise<string> {
  const prebuilt = process.env[WORKER_ENV];
  if (prebuilt) return Promise.resolve(prebuilt);
  building ??= build().catch((e) => {
    building = undefined;
    throw e;
  });
  return building;
}

async function build(): Promise<string> {
  let source: Buffer;
  try {
    source = readFileSync(SOURCE);
  } catch (e) {
    throw new SpeechError(SpeechErrorCode.WorkerUnavailable, `the worker's source ${SOURCE} is missing`, {
      cause: e,
    });
  }
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const out = join(here, '..', 'build', `stt-worker-${hash}`);
  if (existsSync(out)) return out;
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    const flags = await compilerFlags();
    await run(process.env.CC ?? 'cc', ['-O2', '-o', tmp, SOURCE, ...flags]);
  } catch (e) {
    const detail = ((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n')[0];
    throw new SpeechError(
      SpeechErrorCode.WorkerUnavailable,
      `could not compile the pocketsphinx worker (${detail}): ${INSTALL_HINT}`,
      { cause: e },
    );
  }
  // Renamed into place so a concurrent process never runs a half-written executable.
  renameSync(tmp, out);
  return out;
}
