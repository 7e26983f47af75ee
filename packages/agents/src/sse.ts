import { AgentsError, AgentsErrorCode } from './errors.js';

/** Longest single server-sent event (bytes of text between blank lines) a stream may carry. */
export const MAX_SSE_EVENT_CHARS = 1024 * 1024;

/**
 * Incremental parser of a `text/event-stream`: feed it bytes, it calls `onData` with the `data`
 * of each complete event (multi-line data joined with `\n`); comments and other fields are ignored.
 * An event growing past MAX_SSE_EVENT_CHARS without ending is refused, so a peer cannot make it
 * buffer without bound.
 */
export class SseParser {
  readonly #decoder = new TextDecoder();
  readonly #onData: (data: string) => void;
  #buffer = '';

  constructor(onData: (data: string) => void) {
    this.#onData = onData;
  }

  push(chunk: Uint8Array): void {
    this.#buffer += this.#decoder.decode(chunk, { stream: true });
    this.#drain();
  }

  /** Flushes a final event that was not followed by a blank line. */
  end(): void {
    this.#buffer += `${this.#decoder.decode()}\n\n`;
    this.#drain();
  }

  #drain(): void {
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(this.#buffer);
      if (!m) break;
      const event = this.#buffer.slice(0, m.index);
      this.#buffer = this.#buffer.slice(m.index + m[0].length);
      this.#dispatch(event);
    }
    if (this.#buffer.length > MAX_SSE_EVENT_CHARS)
      throw new AgentsError(
        AgentsErrorCode.LlmResponseInvalid,
        `a server-sent event is longer than ${MAX_SSE_EVENT_CHARS} characters`,
      );
  }

  #dispatch(event: string): void {
    const data: string[] = [];
    for (const line of event.split(/\r\n|\n|\r/)) {
      if (line.startsWith('data:')) data.push(line.slice(line[5] === ' ' ? 6 : 5));
    }
    if (data.length > 0) this.#onData(data.join('\n'));
  }
}
