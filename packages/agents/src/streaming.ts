/**
 * Which ops stream, shared by the operators (which run them) and the runner (which reads them)
 * without the runner loading the ops' engines.
 */

/** Ops that write items while they run when asked with a stream: decode its tokens (`{ token }`). */
export const STREAMING_OPS: ReadonlySet<string> = new Set(['llm.decode']);

/**
 * Ops whose output for a prefix of a streamed input starts their output for the whole input, and the
 * field that carries it: the runner asks them (`partial`, never recorded) as the items arrive and
 * passes on what their output grew by.
 */
export const PARTIAL_OPS: ReadonlyMap<string, string> = new Map([['llm.detokenize', 'llmText']]);
