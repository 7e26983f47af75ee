export type { HostProbe, IsaFeatures } from './probe.js';
export { probeHost } from './probe.js';
