import { Command } from 'commander';
import { registerCluster } from './commands/cluster.js';
import { registerCoordinator } from './commands/coordinator.js';
import { registerDashboard } from './commands/dashboard.js';
import { registerDemo } from './commands/demo.js';
import { registerIr } from './commands/ir.js';
import { registerLlm } from './commands/llm.js';
import { registerNode } from './commands/node.js';
import { registerPlan } from './commands/plan.js';
import { registerProbe } from './commands/probe.js';
import { registerServe } from './commands/serve.js';
import { registerSimulate } from './commands/simulate.js';
import { registerTco } from './commands/tco.js';
import { version } from './version.js';

/** Builds the `stitch` command tree; each command group registers itself from its own file. */
export function buildProgram(): Command {
  const program = new Command('stitch')
    .description('Run AI-agent graphs as actors across heterogeneous hardware on NATS')
    .version(version, '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  registerProbe(program);
  registerIr(program);
  registerDemo(program);
  registerPlan(program);
  registerTco(program);
  registerSimulate(program);
  registerNode(program);
  registerCluster(program);
  registerCoordinator(program);
  registerLlm(program);
  registerServe(program);
  registerDashboard(program);
  return program;
}
