// A request to a node waits for that node's answer. A node killed under it never answers, and the
// request would wait out its whole timeout (a migration's: 60 s, during which a coordinator's re-plan
// waits too). Raced against the node going away, it fails as soon as the node is gone.
import { type Clock, sleep } from '../clock.js';
import { NoResponders } from '../errors.js';

/** How often the node of a request under way is asked whether it is still there. */
const NODE_GONE_CHECK_MS = 1000;

/**
 * `request`'s outcome, or NoResponders naming `what` once `answers()` says the node is gone (asked
 * every NODE_GONE_CHECK_MS while the request is under way).
 */
export async function whileNodeAnswers<T>(
  request: Promise<T>,
  answers: () => Promise<boolean>,
  clock: Clock,
  what: string,
): Promise<T> {
  let settled = false;
  const gone = async (): Promise<T> => {
    while (!settled) {
      await sleep(clock, NODE_GONE_CHECK_MS);
      if (!settled && !(await answers())) throw new NoResponders(what);
    }
    return request;
  };
  try {
    return await Promise.race([request, gone()]);
  } finally {
    settled = true;
  }
}
