// `node --import @stitch/typescript-loader file.ts`: registers the hooks that run TypeScript.
import { register } from 'node:module';

register(new URL('./hooks.mjs', import.meta.url));
