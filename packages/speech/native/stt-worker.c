/*
 * A long-lived pocketsphinx recogniser: the model loads once (about a second) and every utterance
 * after that costs only its decoding. Driven by @stitch/speech over stdin/stdout:
 *
 *   argv:   stt-worker <hmm dir> <language model> <dictionary>
 *   ready:  the worker writes "ready\n" once the model is loaded, or "error <why>\n" and exits 2
 *   in:     uint32 little-endian sample count N, then N int16 little-endian samples, 16 kHz mono
 *   out:    "ok <hypothesis>\n" (the hypothesis may be empty) or "error <why>\n"
 *
 * An utterance longer than MAX_SAMPLES is a protocol violation: the worker says so and exits (the
 * client never sends one, so whoever did is not a client to keep serving).
 */
#include <pocketsphinx.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAMPLES (16000u * 300u)
#define CHUNK 4096

static int read_full(void *buf, size_t n) { return fread(buf, 1, n, stdin) == n; }

static void reply_line(const char *status, const char *text) {
  fputs(status, stdout);
  fputc(' ', stdout);
  /* The hypothesis is words from the dictionary; a newline in it would break the framing. */
  for (const char *p = text; *p; p++) fputc(*p == '\n' || *p == '\r' ? ' ' : *p, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    reply_line("error", "usage: stt-worker <hmm dir> <language model> <dictionary>");
    return 2;
  }
  cmd_ln_t *config = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", argv[1], "-lm", argv[2], "-dict", argv[3],
                                 "-logfn", "/dev/null", NULL);
  ps_decoder_t *ps = config ? ps_init(config) : NULL;
  if (!ps) {
    reply_line("error", "pocketsphinx could not load the model (check the hmm, lm and dict paths)");
    return 2;
  }
  fputs("ready\n", stdout);
  fflush(stdout);

  /* The live cepstral mean (the channel's average spectrum) adapts as the decoder hears. Each
   * utterance is decoded twice: once from the model's starting mean to adapt it to this voice and
   * channel, then again from the adapted mean for the transcript. The transcript thus depends on
   * this utterance alone (the same audio, the same words) and not on the model's generic start,
   * which suits synthetic and studio speech poorly. */
  cmn_t *cmn = ps_get_feat(ps)->cmn_struct;
  mfcc_t *initial_mean = malloc(sizeof(mfcc_t) * cmn->veclen);
  mfcc_t *adapted_mean = malloc(sizeof(mfcc_t) * cmn->veclen);
  if (!initial_mean || !adapted_mean) return 3;
  cmn_live_get(cmn, initial_mean);

  for (;;) {
    uint8_t header[4];
    if (!read_full(header, 4)) break; /* stdin closed: the client is done */
    uint32_t n = (uint32_t)header[0] | (uint32_t)header[1] << 8 | (uint32_t)header[2] << 16 |
                 (uint32_t)header[3] << 24;
    if (n > MAX_SAMPLES) {
      reply_line("error", "utterance longer than 300 s");
      return 4;
    }
    int16_t *samples = malloc(sizeof(int16_t) * (n ? n : 1));
    if (!samples) {
      reply_line("error", "out of memory");
      return 3;
    }
    if (!read_full(samples, (size_t)n * sizeof(int16_t))) {
      reply_line("error", "input ended inside an utterance");
      return 6;
    }
    cmn_live_set(cmn, initial_mean);
    int failed = 0;
    for (int pass = 0; pass < 2 && !failed; pass++) {
      if (pass == 1) {
        cmn_live_get(cmn, adapted_mean);
        cmn_live_set(cmn, adapted_mean);
      }
      failed = ps_start_utt(ps) < 0;
      for (uint32_t at = 0; at < n && !failed; at += CHUNK)
        failed = ps_process_raw(ps, samples + at, n - at < CHUNK ? n - at : CHUNK, FALSE, FALSE) < 0;
      ps_end_utt(ps);
    }
    free(samples);
    if (failed) {
      reply_line("error", "pocketsphinx could not decode the utterance");
      continue;
    }
    int32 score;
    const char *hyp = ps_get_hyp(ps, &score);
    reply_line("ok", hyp ? hyp : "");
  }
  free(initial_mean);
  free(adapted_mean);
  ps_free(ps);
  cmd_ln_free_r(config);
  return 0;
}
