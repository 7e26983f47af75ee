#include "probe.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define STITCH_X86 1
#endif

namespace stitch {
namespace {

struct Features {
  bool sse42 = false, avx2 = false, fma = false, avx512f = false, avx512bw = false,
       avx512vl = false, avx512bf16 = false, avx512vnni = false, amxTile = false,
       amxBf16 = false, amxInt8 = false;
};

#ifdef STITCH_X86
uint64_t ReadXcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

Features DetectFeatures() {
  Features f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.sse42 = c & (1u << 20);
  const bool osxsave = c & (1u << 27);
  const bool fmaBit = c & (1u << 12);
  const uint64_t xcr0 = osxsave ? ReadXcr0() : 0;
  // The OS must save the wider registers, else the instructions fault: CPUID alone is not enough.
  const bool osAvx = (xcr0 & 0x6) == 0x6;
  const bool osAvx512 = osAvx && (xcr0 & 0xE0) == 0xE0;
  const bool osAmx = (xcr0 & 0x60000) == 0x60000;
  f.fma = fmaBit && osAvx;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = osAvx && (b & (1u << 5));
  f.avx512f = osAvx512 && (b & (1u << 16));
  f.avx512bw = osAvx512 && (b & (1u << 30));
  f.avx512vl = osAvx512 && (b & (1u << 31));
  f.avx512vnni = osAvx512 && (c & (1u << 11));
  f.amxBf16 = osAmx && (d & (1u << 22));
  f.amxTile = osAmx && (d & (1u << 24));
  f.amxInt8 = osAmx && (d & (1u << 25));
  const unsigned maxSub = a;
  if (maxSub >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    f.avx512bf16 = osAvx512 && (a & (1u << 5));
  }
  return f;
}

std::string CpuModel() {
  unsigned regs[12] = {0};
  if (__get_cpuid_max(0x80000000, nullptr) < 0x80000004) return "unknown";
  for (unsigned i = 0; i < 3; ++i) {
    __get_cpuid(0x80000002 + i, &regs[i * 4], &regs[i * 4 + 1], &regs[i * 4 + 2], &regs[i * 4 + 3]);
  }
  char brand[49];
  std::memcpy(brand, regs, 48);
  brand[48] = '\0';
  std::string s(brand);
  const auto first = s.find_first_not_of(' ');
  const auto last = s.find_last_not_of(" \0");
  return first == std::string::npos ? "unknown" : s.substr(first, last - first + 1);
}
#else
Features DetectFeatures() { return Features{}; }
std::string CpuModel() { return "unknown"; }
#endif

struct CudaStatus {
  bool loaded = false;
  int devices = 0;
  std::string error;
};

// dlopen keeps CUDA an optional, run-time dependency: the addon links nothing from it. Run once per
// process (see Probe); the library is never unloaded once cuInit has run, since the driver keeps
// threads and state that unloading it under them crashes.
CudaStatus ProbeCuda() {
  CudaStatus s;
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* err = dlerror();
    s.error = err ? err : "libcuda.so.1 not found";
    return s;
  }
  s.loaded = true;
  using InitFn = int (*)(unsigned);
  using CountFn = int (*)(int*);
  auto init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
  auto count = reinterpret_cast<CountFn>(dlsym(lib, "cuDeviceGetCount"));
  if (init && count) {
    const int rc = init(0);
    int n = 0;
    if (rc == 0 && count(&n) == 0) {
      s.devices = n;
    } else {
      s.error = "cuInit failed with CUresult " + std::to_string(rc);
    }
  } else {
    s.error = "libcuda.so.1 lacks cuInit/cuDeviceGetCount";
    dlclose(lib);
  }
  return s;
}

const char* Arch() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#else
  return "unknown";
#endif
}

}  // namespace

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Features f = DetectFeatures();
  Napi::Object features = Napi::Object::New(env);
  features.Set("sse42", f.sse42);
  features.Set("avx2", f.avx2);
  features.Set("fma", f.fma);
  features.Set("avx512f", f.avx512f);
  features.Set("avx512bw", f.avx512bw);
  features.Set("avx512vl", f.avx512vl);
  features.Set("avx512bf16", f.avx512bf16);
  features.Set("avx512vnni", f.avx512vnni);
  features.Set("amxTile", f.amxTile);
  features.Set("amxBf16", f.amxBf16);
  features.Set("amxInt8", f.amxInt8);

  // cuInit can take seconds and probes are asked for on the event loop, many times: the driver's
  // answer is taken once (a thread-safe static, so worker threads probing at once share it).
  static const CudaStatus cuda = ProbeCuda();
  Napi::Object cudaObj = Napi::Object::New(env);
  cudaObj.Set("driverLoaded", cuda.loaded);
  cudaObj.Set("deviceCount", cuda.devices);
  cudaObj.Set("error", cuda.error.empty() ? env.Null() : Napi::String::New(env, cuda.error));

  const long pages = sysconf(_SC_PHYS_PAGES);
  const long pageSize = sysconf(_SC_PAGESIZE);
  Napi::Object out = Napi::Object::New(env);
  out.Set("arch", Arch());
  out.Set("cpuModel", CpuModel());
  out.Set("logicalCores", static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN)));
  out.Set("totalMemoryBytes", static_cast<double>(pages) * static_cast<double>(pageSize));
  out.Set("features", features);
  out.Set("cuda", cudaObj);
  return out;
}

}  // namespace stitch
