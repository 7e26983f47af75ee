// Loads the compiled addon and explains a load failure in one message.
const path = require('node:path');
const file = path.join(__dirname, 'build', 'Release', 'stitch_native.node');
try {
  module.exports = require(file);
} catch (err) {
  const e = new Error(
    `stitch native addon could not be loaded from ${file}: ${err.message}. ` +
      'Build it with: pnpm --filter @stitch/native run build (or run the setup: bash deploy/setup.sh)',
  );
  e.code = 'NATIVE_LOAD';
  e.cause = err;
  throw e;
}
