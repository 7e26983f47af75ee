import { startTelemetry, type Telemetry } from '@stitch/telemetry';
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

/** OpenTelemetry for this command's process, as `service.name` `serviceName`. */
export function telemetryFromFlags(serviceName: string, flags: TelemetryFlags): Promise<Telemetry> {
  const port = flags.metricsPort === undefined ? undefined : portOf(flags.metricsPort, '--metrics-port');
  return startTelemetry({ serviceName, ...(port !== undefined ? { metricsPort: port } : {}) });
}
