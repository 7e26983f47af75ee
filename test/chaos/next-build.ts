// The "newer build" of a rolling upgrade: a copy of the runtime package as built (dist/) whose wire
// protocol version is one minor above this build's, so that nodes of both versions can run side by
// side. The copy resolves its dependencies through the real package's node_modules.
import { cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseWireVersion, WIRE_VERSION } from '../../packages/runtime/src/wire/version.js';

const RUNTIME = fileURLToPath(new URL('../../packages/runtime/', import.meta.url));

export interface NextBuild {
  /** The version the copy speaks. */
  version: string;
  /** file: URL of the copy's entry point (what `@stitch/runtime` resolves to in the real one). */
  entry: string;
}

/** Writes the next build under `dir`. */
export function makeNextBuild(dir: string): NextBuild {
  const own = parseWireVersion(WIRE_VERSION)!;
  const version = `${own.major}.${own.minor + 1}`;
  const root = join(dir, 'runtime-next');
  mkdirSync(root, { recursive: true });
  cpSync(join(RUNTIME, 'dist'), join(root, 'dist'), { recursive: true });
  cpSync(join(RUNTIME, 'package.json'), join(root, 'package.json'));
  symlinkSync(join(RUNTIME, 'node_modules'), join(root, 'node_modules'));
  // The bundle declares the version in whichever of its modules holds the wire code: exactly once.
  const declared = new RegExp(`WIRE_VERSION = (["'])${WIRE_VERSION.replace('.', '\\.')}\\1`, 'g');
  const files = readdirSync(join(root, 'dist'))
    .filter((f) => f.endsWith('.js'))
    .map((f) => join(root, 'dist', f));
  const holding = files.flatMap((f) => [...readFileSync(f, 'utf8').matchAll(declared)].map(() => f));
  if (holding.length !== 1)
    throw new Error(
      `the runtime's dist/ declares WIRE_VERSION ${WIRE_VERSION} ${holding.length} times, not once: rebuild it`,
    );
  const file = holding[0]!;
  writeFileSync(file, readFileSync(file, 'utf8').replace(declared, `WIRE_VERSION = "${version}"`));
  return { version, entry: pathToFileURL(join(root, 'dist', 'index.js')).href };
}
