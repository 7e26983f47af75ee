#include <napi.h>
#include "probe.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, stitch::Probe));
  return exports;
}

NODE_API_MODULE(stitch_native, Init)
