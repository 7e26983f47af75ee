// Builds the addon from source with node-gyp, a dependency of this package: run by the install script
// (so `npm install @stitch/native` compiles it) and by `npm run build`. The tools a build needs are
// checked first, so that a missing one stops the install with one message that names the apt-get
// command installing it (exit 1), not a node-gyp stack trace. Node's headers are taken from the running
// Node's installation (the official tarballs, NodeSource's and Debian's packages have them) so that
// node-gyp does not download them, which fails on machines without internet access.
'use strict';
const { spawnSync } = require('node:child_process');
const { accessSync, constants, existsSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const SUDO = process.getuid?.() === 0 ? '' : 'sudo ';
const APT = `${SUDO}apt-get update && ${SUDO}apt-get install -y`;

/** Prints why the build cannot run and what fixes it, then exits non-zero. */
function fail(lines, status = 1) {
  console.error(['@stitch/native: cannot build the native addon from source.', ...lines].join('\n'));
  process.exit(status);
}

/** Whether `cmd` (a name looked up on PATH, or a path) is an executable file. */
function found(cmd) {
  const candidates = cmd.includes('/')
    ? [cmd]
    : (process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir || '.', cmd));
  return candidates.some((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Runs a probe command with a time bound; its output when it exited 0, else null. */
function probe(cmd, args, input) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 20_000 });
  return r.status === 0 ? `${r.stdout}${r.stderr}` : null;
}

/** The first word of a command variable such as CXX="ccache g++". */
const program = (value) => value.trim().split(/\s+/)[0] ?? '';

const missing = []; // [what, Debian package]
const env = { ...process.env };
// binding.gyp runs `node`: where PATH has none, it is this Node.
if (!found('node'))
  env.PATH = [path.dirname(process.execPath), env.PATH].filter(Boolean).join(path.delimiter);

// Python 3.6 or later, looked up the way node-gyp does (npm_config_python, PYTHON, python3, python).
const pythons = [env.npm_config_python, env.PYTHON, 'python3', 'python'].filter(Boolean);
const python = pythons.find((cmd) => {
  const v = found(program(cmd)) && probe(cmd, ['-c', 'import sys; print("%d %d" % sys.version_info[:2])']);
  if (!v) return false;
  const [major, minor] = v.trim().split(' ').map(Number);
  return major === 3 && minor >= 6;
});
if (!python) missing.push(['python3 (3.6 or later, used by node-gyp)', 'python3']);

// make, which runs the Makefiles node-gyp generates.
const make = env.MAKE ? program(env.MAKE) : 'make';
if (!found(make)) missing.push([env.MAKE ? `make (MAKE=${env.MAKE})` : 'make', 'make']);

// A C++17 compiler with its standard headers: $CXX, else g++, else clang++ (then handed to make as CXX).
let cxx = env.CXX ? program(env.CXX) : found('g++') ? 'g++' : found('clang++') ? 'clang++' : null;
if (cxx && !env.CXX && cxx === 'clang++') env.CXX = 'clang++';
if (!cxx || !found(cxx)) {
  missing.push([`a C++ compiler (${env.CXX ? `CXX=${env.CXX}` : 'g++ or clang++'})`, 'g++']);
  cxx = null;
} else if (
  probe(cxx, ['-std=c++17', '-fsyntax-only', '-x', 'c++', '-'], '#include <string>\nint main() {}\n') === null
) {
  missing.push([`the C++ standard library headers for ${cxx} (#include <string> fails)`, 'g++']);
}

// node-gyp and node-addon-api come with this package's dependencies.
for (const dep of ['node-gyp/package.json', 'node-addon-api/package.json']) {
  try {
    require.resolve(dep);
  } catch {
    fail([
      `${path.dirname(dep)} is not installed next to @stitch/native; it is one of its dependencies.`,
      'Install @stitch/native again together with its dependencies (npm install @stitch/native).',
    ]);
  }
}

if (missing.length > 0) {
  const packages = [...new Set(missing.map(([, pkg]) => pkg))];
  fail([
    `Missing: ${missing.map(([what]) => what).join('; ')}.`,
    `On Debian or Ubuntu install them with: ${APT} ${packages.join(' ')}`,
    'then install @stitch/native again (or run its build: npm run build).',
  ]);
}

// Node's headers: an explicit npm_config_nodedir wins; else the running Node's own installation, then
// /usr/include/node; else node-gyp's download cache. Without any, node-gyp downloads them.
const args = [require.resolve('node-gyp/bin/node-gyp.js'), 'rebuild', '-j', '2'];
if (python) args.push(`--python=${python}`);
const hasHeaders = (prefix) => existsSync(path.join(prefix, 'include', 'node', 'node_api.h'));
const prefixes = [path.resolve(path.dirname(process.execPath), '..'), '/usr'];
const nodedir = env.npm_config_nodedir || prefixes.find(hasHeaders);
const cacheDir =
  env.npm_config_devdir || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'node-gyp');
const cached = hasHeaders(path.join(cacheDir, process.versions.node));
if (nodedir && !env.npm_config_nodedir) args.push(`--nodedir=${nodedir}`);
const headerHint =
  nodedir || cached
    ? null
    : `Node's headers were not found (looked in ${prefixes.map((p) => path.join(p, 'include/node')).join(', ')}), ` +
      "so node-gyp had to download them. With Debian's nodejs package install them with: " +
      `${APT} libnode-dev; else set npm_config_nodedir to a directory with include/node for Node ${process.version}.`;

const result = spawnSync(process.execPath, args, { cwd: __dirname, env, stdio: 'inherit' });
if (result.status !== 0) {
  fail(
    [
      `node-gyp failed (${result.error?.message ?? (result.signal ? `signal ${result.signal}` : `exit ${result.status}`)}), ` +
        `with python ${python}, ${make}, ${cxx}${nodedir ? ` and Node headers from ${nodedir}` : ''}.`,
      ...(headerHint ? [headerHint] : []),
      `The build needs python3, make and g++ (or clang++): ${APT} python3 make g++`,
    ],
    result.status || 1,
  );
}
if (!existsSync(path.join(__dirname, 'build', 'Release', 'stitch_native.node'))) {
  fail(['node-gyp finished but build/Release/stitch_native.node is missing.']);
}
