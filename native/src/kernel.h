#pragma once
#include <napi.h>

namespace stitch {
// loadKernel(path, sha256Hex, symbol) -> { ok: true, handle } | { ok: false, code, message }
Napi::Value LoadKernel(const Napi::CallbackInfo& info);
// runKernel(handle, [{ data: TypedArray, shape: number[] }, ...]) -> Promise<void>, run on the libuv pool
Napi::Value RunKernel(const Napi::CallbackInfo& info);
// runKernelParts([{ handle, args: [{ data, shape, offset? }, ...] }, ...]) -> Promise<void>: the parts
// (row slices of one kernel) run at once, one on a libuv pool thread and the rest on the addon's pool
Napi::Value RunKernelParts(const Napi::CallbackInfo& info);
}  // namespace stitch
