// Builds the addon with node-gyp. Debian's Node ships its headers in /usr/include/node; pointing
// node-gyp there avoids a headers download, which fails on machines without internet access.
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const args = [gyp, 'rebuild', '-j', '2'];
const hasLocalHeaders = existsSync('/usr/include/node/node_api.h');
if (!process.env.npm_config_nodedir && hasLocalHeaders) args.push('--nodedir=/usr');
const result = spawnSync(process.execPath, args, { cwd: __dirname, stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    `stitch: building the native addon failed (node-gyp exit ${result.status}). ` +
      'It needs python3, make and g++; on Debian run: apt-get install -y python3 make g++',
  );
  process.exit(result.status ?? 1);
}
if (!existsSync(path.join(__dirname, 'build/Release/stitch_native.node'))) {
  console.error('stitch: node-gyp finished but build/Release/stitch_native.node is missing');
  process.exit(1);
}
