import { Command } from 'commander';
import { version } from './version.js';

type Register = (program: Command) => void;

/**
 * Each command group by name, loaded when needed: a command's module imports what its action uses
 * (the runtime, the agents, OpenTelemetry…), and loading every one costs ~0.5 s at each start.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  probe: async () => (await import('./commands/probe.js')).registerProbe,
  ir: async () => (await import('./commands/ir.js')).registerIr,
  demo: async () => (await import('./commands/demo.js')).registerDemo,
  plan: async () => (await import('./commands/plan.js')).registerPlan,
  tco: async () => (await import('./commands/tco.js')).registerTco,
  simulate: async () => (await import('./commands/simulate.js')).registerSimulate,
  node: async () => (await import('./commands/node.js')).registerNode,
  cluster: async () => (await import('./commands/cluster.js')).registerCluster,
  coordinator: async () => (await import('./commands/coordinator.js')).registerCoordinator,
  llm: async () => (await import('./commands/llm.js')).registerLlm,
  serve: async () => (await import('./commands/serve.js')).registerServe,
  dashboard: async () => (await import('./commands/dashboard.js')).registerDashboard,
  status: async () => (await import('./commands/status.js')).registerStatus,
  drain: async () => (await import('./commands/drain.js')).registerDrain,
  undrain: async () => (await import('./commands/drain.js')).registerUndrain,
  reminders: async () => (await import('./commands/reminders.js')).registerReminders,
};

/**
 * Builds the `stitch` command tree for `argv`: only the named command when the first argument names
 * one, else every command (the top-level help lists them; an unknown name gets commander's error and
 * suggestions).
 */
export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('stitch')
    .description('Run AI-agent graphs as actors across heterogeneous hardware on NATS')
    .version(version, '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  const named = argv[2];
  const wanted = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
  for (const register of await Promise.all(wanted.map((name) => COMMANDS[name]!()))) register(program);
  return program;
}
