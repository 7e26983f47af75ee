import { isAbsolute, relative, resolve } from 'node:path';
import { AgentsError, AgentsErrorCode } from './errors.js';

/**
 * The path of the file `name` inside the directory `dir` (from the node's environment variable
 * `envName`): an op's attribute names a file in a directory the node chose, never an arbitrary path.
 */
export function fileInDir(dir: string, name: string, envName: string, what: string): string {
  const path = resolve(dir, name);
  const inside = relative(resolve(dir), path);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside))
    throw new AgentsError(
      AgentsErrorCode.OpConfigInvalid,
      `${what} ${JSON.stringify(name)} is outside ${envName} (${dir}); name a file in it`,
    );
  return path;
}
