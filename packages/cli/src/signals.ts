/**
 * Resolves on the first SIGINT or SIGTERM. The handlers are installed when this is called, so call it
 * before announcing readiness: a signal sent the moment the announcement is read must find them
 * (without a handler, Node's default action kills the process mid-start).
 */
export function firstSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
