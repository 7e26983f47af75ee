#pragma once
#include <napi.h>

namespace stitch {
// loadKernel(path, sha256Hex, symbol) -> { ok: true, handle } | { ok: false, code, message }
Napi::Value LoadKernel(const Napi::CallbackInfo& info);
// runKernel(handle, [{ data: TypedArray, shape: number[] }, ...]) -> Promise<void>, run on the libuv pool
Napi::Value RunKernel(const Napi::CallbackInfo& info);
}  // namespace stitch
