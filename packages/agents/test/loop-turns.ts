// Counts the event loop's turns while work runs: tests of work that must not block the loop assert on
// the turns other callbacks got, never on a duration.

/** Counts turns of the event loop (one per check phase) until stopped. */
export function ticker() {
  let turns = 0;
  let on = true;
  const tick = () => {
    turns++;
    if (on) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    get turns() {
      return turns;
    },
    stop() {
      on = false;
    },
  };
}
