#include "allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace stitch {

Napi::Value SetMmapThreshold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "setMmapThreshold(bytes) needs a number of bytes").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double bytes = info[0].As<Napi::Number>().DoubleValue();
  // glibc caps the threshold at 32 MiB on 64-bit hosts (HEAP_MAX_SIZE / 2) and refuses more.
  if (!(bytes >= 0 && bytes <= 32.0 * 1024 * 1024)) {
    Napi::RangeError::New(env, "setMmapThreshold(bytes): bytes must be 0 to 32 MiB").ThrowAsJavaScriptException();
    return env.Undefined();
  }
#if defined(__GLIBC__)
  // An explicit threshold also turns off glibc's dynamic raise of it (and of the trim threshold).
  return Napi::Boolean::New(env, mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes)) == 1);
#else
  return Napi::Boolean::New(env, false);
#endif
}

}  // namespace stitch
