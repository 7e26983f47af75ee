import { defineActor } from '@stitch/runtime';
import type { Coordinator } from './coordinator.js';
import type { Measurement } from './deployment.js';
import type { RequestSummary } from './request-tally.js';

/** The coordinator as an actor (`stitch-coordinator/<name>`): deployments and measurements arrive as messages. */
export function coordinatorActor(coordinator: Coordinator) {
  return defineActor({
    type: 'stitch-coordinator',
    // Deploys and re-plans are serialised inside the coordinator; measurements must not wait behind them.
    concurrency: 4,
    handlers: {
      deploy: (_s: undefined, msg: { mlir: string; name?: string }) => coordinator.deploy(msg.mlir, msg.name),
      observe: (_s: undefined, msg: { measurements: Measurement[]; request?: RequestSummary }) => {
        coordinator.observe(msg.measurements, msg.request);
        return null;
      },
      status: (_s: undefined, msg: { name: string }) => ({
        deployment: coordinator.deployment(msg.name) ?? null,
        migrations: coordinator.migrations,
        scalings: coordinator.scalings,
        correction: coordinator.correction.snapshot(),
        metrics: coordinator.metrics(),
        requests: coordinator.requestCounts(),
      }),
    },
  });
}
