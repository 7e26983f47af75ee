// Reference timings for bench/kernels.ts: OpenBLAS sgemm (n×n×n) and sgemv (n×n), best of repeats.
// Usage: openblas sgemm|sgemv N seconds  →  prints best seconds per call.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  int gemm = argv[1][4] == 'm', n = atoi(argv[2]);
  double budget = atof(argv[3]), best = 1e30;
  float *a = aligned_alloc(64, 4L * n * n), *b = aligned_alloc(64, 4L * n * n), *c = aligned_alloc(64, 4L * n * n);
  for (long i = 0; i < (long)n * n; i++) a[i] = b[i] = 0.5f;
  for (double end = now() + budget, first = 1; first || now() < end; first = 0) {
    double t0 = now();
    if (gemm) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    else cblas_sgemv(CblasRowMajor, CblasNoTrans, n, n, 1, a, n, b, 1, 0, c, 1);
    double t = now() - t0;
    if (t < best) best = t;
  }
  printf("%.9f\n", best);
  return 0;
}
