#pragma once
#include <napi.h>

namespace stitch {
// Reports CPU model, ISA features (as usable by the OS: CPUID masked by XCR0), core count,
// memory and whether a CUDA driver can be loaded. Cheap; safe to call on the event loop: the CUDA
// driver is loaded and initialised by the first call only, and its answer kept for the process.
Napi::Value Probe(const Napi::CallbackInfo& info);
}  // namespace stitch
