import type { Telemetry } from '@stitch/telemetry';
import type { Command } from 'commander';
import { portOf } from './port.js';

export interface TelemetryFlags {
  metricsPort?: string;
}

/** `--metrics-port`; spans need no flag: they are exported when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
export function addTelemetryOptions(command: Command): Command {
  return command.option(
    '--metrics-port <port>',
    'serve Prometheus metrics on this port (GET /metrics); spans go over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set',
  );
}

/** What this process started, until it is shut down (see shutdownTelemetry). */
let running: Telemetry | undefined;

/** OpenTelemetry for this command's process, as `service.name` `serviceName`. */
export async function telemetryFromFlags(serviceName: string, flags: TelemetryFlags): Promise<Telemetry> {
  const port = flags.metricsPort === undefined ? undefined : portOf(flags.metricsPort, '--metrics-port');
  // Loaded here: OpenTelemetry costs every other command's start ~0.25 s.
  const { startTelemetry } = await import('@stitch/telemetry');
  const telemetry = await startTelemetry({
    serviceName,
    ...(port !== undefined ? { metricsPort: port } : {}),
  });
  running = telemetry;
  return {
    ...telemetry,
    shutdown: () => shutdownTelemetry(),
  };
}

/**
 * Ends what telemetryFromFlags started, if it still runs: a command that fails must not be kept alive
 * by the metrics endpoint's server.
 */
export async function shutdownTelemetry(): Promise<void> {
  const telemetry = running;
  running = undefined;
  await telemetry?.shutdown();
}
