#pragma once
#include <napi.h>

namespace stitch {
// setMmapThreshold(bytes): pins glibc's mmap threshold (see index.d.ts); false where malloc is not glibc's.
Napi::Value SetMmapThreshold(const Napi::CallbackInfo& info);
}  // namespace stitch
