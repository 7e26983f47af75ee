#include <napi.h>
#include "allocator.h"
#include "kernel.h"
#include "probe.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, stitch::Probe));
  exports.Set("loadKernel", Napi::Function::New(env, stitch::LoadKernel));
  exports.Set("runKernel", Napi::Function::New(env, stitch::RunKernel));
  exports.Set("runKernelParts", Napi::Function::New(env, stitch::RunKernelParts));
  exports.Set("setMmapThreshold", Napi::Function::New(env, stitch::SetMmapThreshold));
  return exports;
}

NODE_API_MODULE(stitch_native, Init)
