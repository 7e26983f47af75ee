#include "kernel.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "pool.h"
#include "sha256.h"

namespace stitch {
namespace {

// Entry points of loaded artifacts, each once (its index is the handle). Artifacts stay loaded for
// the life of the process: a kernel may be running on a pool thread when JS drops its last reference.
std::vector<void*> g_entries;
// Loaded libraries by SHA-256 of their bytes: loading the same verified bytes again reuses them
// instead of mapping another copy (a node reloads the same artifacts many times).
std::map<std::string, void*> g_libraries;

constexpr size_t kMaxArgs = 8;
// The compiler emits memrefs of rank 3 at most; the bound keeps a hostile shape from sizing the
// descriptor (a JS array's length can be up to 2^32 - 1).
constexpr uint32_t kMaxRank = 8;

Napi::Object Failure(Napi::Env env, const char* code, const std::string& message) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", false);
  r.Set("code", code);
  r.Set("message", message);
  return r;
}

// A JS number that is an integer from 0 to max. Sizes, offsets and handles address memory, so NaN,
// infinities and fractions are refused rather than mapped to 0 or truncated as Int64Value does.
bool ToIndex(Napi::Value v, int64_t max, int64_t* out) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= double(max) && d == std::floor(d))) return false;
  *out = int64_t(d);
  return true;
}

bool ReadFile(const std::string& path, std::vector<uint8_t>* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->insert(out->end(), buf, buf + n);
  bool ok = !std::ferror(f);
  std::fclose(f);
  return ok;
}

// Loads the very bytes that were hashed: they are copied into an anonymous memfd and dlopen reads
// that, so swapping the file on disk after the check cannot change what runs.
void* DlopenBytes(const std::vector<uint8_t>& bytes, std::string* error) {
  int fd = memfd_create("stitch-kernel", MFD_CLOEXEC);
  if (fd < 0) {
    *error = "memfd_create failed";
    return nullptr;
  }
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t w = write(fd, bytes.data() + off, bytes.size() - off);
    if (w <= 0) {
      close(fd);
      *error = "writing the verified copy failed";
      return nullptr;
    }
    off += size_t(w);
  }
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  // The fd stays open while the library is loaded (for the life of the process): glibc matches
  // dlopen paths by name, and a reused /proc/self/fd/N would hand back an earlier kernel.
  if (!handle) {
    *error = dlerror();
    close(fd);
  }
  return handle;
}

using Fn1 = void (*)(void*);
using Fn2 = void (*)(void*, void*);
using Fn3 = void (*)(void*, void*, void*);
using Fn4 = void (*)(void*, void*, void*, void*);
using Fn5 = void (*)(void*, void*, void*, void*, void*);
using Fn6 = void (*)(void*, void*, void*, void*, void*, void*);
using Fn7 = void (*)(void*, void*, void*, void*, void*, void*, void*);
using Fn8 = void (*)(void*, void*, void*, void*, void*, void*, void*, void*);

// Calls an entry point with up to kMaxArgs memref descriptors.
void Call(void* entry, std::vector<std::vector<int64_t>>& descs) {
  void* a[kMaxArgs] = {nullptr};
  for (size_t i = 0; i < descs.size(); i++) a[i] = descs[i].data();
  switch (descs.size()) {
    case 1: reinterpret_cast<Fn1>(entry)(a[0]); break;
    case 2: reinterpret_cast<Fn2>(entry)(a[0], a[1]); break;
    case 3: reinterpret_cast<Fn3>(entry)(a[0], a[1], a[2]); break;
    case 4: reinterpret_cast<Fn4>(entry)(a[0], a[1], a[2], a[3]); break;
    case 5: reinterpret_cast<Fn5>(entry)(a[0], a[1], a[2], a[3], a[4]); break;
    case 6: reinterpret_cast<Fn6>(entry)(a[0], a[1], a[2], a[3], a[4], a[5]); break;
    case 7: reinterpret_cast<Fn7>(entry)(a[0], a[1], a[2], a[3], a[4], a[5], a[6]); break;
    case 8: reinterpret_cast<Fn8>(entry)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]); break;
  }
}

// One call of an entry point: what a thread runs.
struct Part {
  void* entry;
  std::vector<std::vector<int64_t>> descs;
};

// Baton: Execute touches only plain C++ data (descriptors over memory the references keep alive).
// Several parts (row slices of one kernel) run at once, one on this libuv thread and the rest on
// the addon's pool; the promise resolves when all have finished.
class KernelWorker : public Napi::AsyncWorker {
 public:
  KernelWorker(Napi::Env env, std::vector<Part> parts, std::vector<Napi::ObjectReference> keep)
      : Napi::AsyncWorker(env), parts_(std::move(parts)), keep_(std::move(keep)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::vector<std::function<void()>> tasks;
    for (Part& p : parts_) tasks.push_back([&p] { Call(p.entry, p.descs); });
    RunParallel(tasks);
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::vector<Part> parts_;
  std::vector<Napi::ObjectReference> keep_;
  Napi::Promise::Deferred deferred_;
};

// Builds one part's descriptors from JS {data, shape, offset?} objects. Without `offset` the shape
// must cover the array exactly; with it (a row slice), offset + the shape's elements must fit.
// Reading a property can run JS (a getter, a proxy) that throws: its exception is then pending and
// is returned to JS as it is, since throwing another on top of it aborts the process.
bool BuildPart(Napi::Env env, Napi::Value handleValue, Napi::Array args, Part* part,
               std::vector<Napi::ObjectReference>* keep) {
  int64_t handle = 0;
  // Read once: a getter run below may grow the array past kMaxArgs.
  const uint32_t count = args.Length();
  if (!ToIndex(handleValue, int64_t(g_entries.size()) - 1, &handle) || count == 0 || count > kMaxArgs) {
    Napi::RangeError::New(env, "runKernel: unknown handle or bad argument count").ThrowAsJavaScriptException();
    return false;
  }
  part->entry = g_entries[size_t(handle)];
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value arg = args.Get(i);
    Napi::Value data, shapeValue, offsetValue;
    if (arg.IsObject()) {
      data = arg.As<Napi::Object>().Get("data");
      shapeValue = arg.As<Napi::Object>().Get("shape");
      offsetValue = arg.As<Napi::Object>().Get("offset");
    }
    if (env.IsExceptionPending()) return false;
    if (!data.IsTypedArray() || !shapeValue.IsArray() ||
        !(offsetValue.IsUndefined() || offsetValue.IsNumber())) {
      Napi::TypeError::New(env, "runKernel: each argument needs data (TypedArray), shape and an optional offset")
          .ThrowAsJavaScriptException();
      return false;
    }
    Napi::TypedArray ta = data.As<Napi::TypedArray>();
    Napi::Array shape = shapeValue.As<Napi::Array>();
    size_t rank = shape.Length();
    if (rank > kMaxRank) {
      Napi::RangeError::New(env, "runKernel: argument " + std::to_string(i) + " has " + std::to_string(rank) +
                                     " dimensions; a kernel argument has at most " + std::to_string(kMaxRank))
          .ThrowAsJavaScriptException();
      return false;
    }
    // napi_get_typedarray_info gives the element pointer for ArrayBuffer and SharedArrayBuffer
    // backing stores alike (offset included); a detached buffer has none.
    napi_typedarray_type type;
    size_t length = 0;
    void* base = nullptr;
    napi_value arrayBuffer;
    size_t byteOffset = 0;
    napi_get_typedarray_info(env, ta, &type, &length, &base, &arrayBuffer, &byteOffset);
    bool sliced = offsetValue.IsNumber();
    int64_t offset = 0;
    bool offsetOk = !sliced || ToIndex(offsetValue, int64_t(length), &offset);
    // Descriptor {allocated, aligned, offset, sizes[rank], strides[rank]}, row-major strides.
    std::vector<int64_t> d(3 + 2 * rank);
    int64_t elements = 1;  // what the shape covers; the strides are its running products
    bool sizesOk = true;
    for (size_t r = rank; r-- > 0;) {
      Napi::Value size = shape.Get(uint32_t(r));
      if (env.IsExceptionPending()) return false;
      d[3 + rank + r] = elements;
      // Every size is bounded by the length too (a zero elsewhere would hide it from the product),
      // and the product is checked: for arrays of over 3e9 elements it can overflow int64.
      sizesOk = sizesOk && ToIndex(size, int64_t(length), &d[3 + r]) &&
                !__builtin_mul_overflow(elements, d[3 + r], &elements);
    }
    // The TypeScript side checks shapes against the manifest; this guards the memory itself.
    // Int8Array carries quantized weights (q8_0); the kernel's element type matches the manifest's dtype.
    bool supported = type == napi_float32_array || type == napi_int32_array || type == napi_int8_array;
    bool fits = sliced ? elements <= int64_t(length) - offset : elements == int64_t(length);
    if (base == nullptr || !supported || !offsetOk || !sizesOk || !fits) {
      Napi::RangeError::New(env, "runKernel: argument " + std::to_string(i) +
                                     " must be a Float32Array, Int32Array or Int8Array whose shape (from its offset) covers exactly its elements; "
                                     "sizes and the offset are integers from 0 to its length")
          .ThrowAsJavaScriptException();
      return false;
    }
    int64_t elem = type == napi_int8_array ? 1 : 4;
    d[0] = reinterpret_cast<int64_t>(base);
    d[1] = reinterpret_cast<int64_t>(static_cast<char*>(base) + offset * elem);
    d[2] = 0;
    part->descs.push_back(std::move(d));
    keep->push_back(Napi::Persistent(ta.As<Napi::Object>()));
  }
  return true;
}

Napi::Value Queue(Napi::Env env, std::vector<Part> parts, std::vector<Napi::ObjectReference> keep) {
  auto* worker = new KernelWorker(env, std::move(parts), std::move(keep));
  // Without its promise (its creation failed, leaving an exception pending) a queued worker would
  // settle a null deferred when it finishes.
  if (env.IsExceptionPending()) {
    delete worker;
    return env.Undefined();
  }
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

Napi::Value LoadKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsString()) {
    return Failure(env, "KERNEL_ARGS", "loadKernel(path, sha256, symbol) takes three strings");
  }
  std::string path = info[0].As<Napi::String>();
  std::string expected = info[1].As<Napi::String>();
  std::string symbol = info[2].As<Napi::String>();
  std::vector<uint8_t> bytes;
  if (!ReadFile(path, &bytes)) return Failure(env, "KERNEL_LOAD", "cannot read " + path);
  std::string actual = Sha256Hex(bytes.data(), bytes.size());
  if (actual != expected) {
    return Failure(env, "KERNEL_INTEGRITY",
                   path + " has SHA-256 " + actual + " but its manifest says " + expected);
  }
  void* handle = g_libraries[actual];
  if (!handle) {
    std::string error;
    handle = DlopenBytes(bytes, &error);
    if (!handle) {
      g_libraries.erase(actual);
      return Failure(env, "KERNEL_LOAD", "dlopen of " + path + " failed: " + error);
    }
    g_libraries[actual] = handle;
  }
  void* entry = dlsym(handle, symbol.c_str());
  if (!entry) return Failure(env, "KERNEL_LOAD", path + " has no symbol " + symbol);
  // The same library and symbol resolve to the same address: reloading a kernel reuses its handle
  // rather than growing the table for the life of the process.
  size_t index = std::find(g_entries.begin(), g_entries.end(), entry) - g_entries.begin();
  if (index == g_entries.size()) g_entries.push_back(entry);
  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", true);
  r.Set("handle", double(index));
  return r;
}

Napi::Value RunKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsArray()) {
    Napi::TypeError::New(env, "runKernel(handle, args[])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<Part> parts(1);
  std::vector<Napi::ObjectReference> keep;
  if (!BuildPart(env, info[0], info[1].As<Napi::Array>(), &parts[0], &keep))
    return env.Undefined();
  return Queue(env, std::move(parts), std::move(keep));
}

Napi::Value RunKernelParts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, "runKernelParts(parts[])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array list = info[0].As<Napi::Array>();
  // Read once: a getter run below may grow the array.
  const uint32_t count = list.Length();
  if (count == 0 || count > kMaxPoolThreads + 1) {
    Napi::RangeError::New(env, "runKernelParts: between 1 and " + std::to_string(kMaxPoolThreads + 1) + " parts")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<Part> parts(count);
  std::vector<Napi::ObjectReference> keep;
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value item = list.Get(i);
    Napi::Value handle, args;
    if (item.IsObject()) {
      handle = item.As<Napi::Object>().Get("handle");
      args = item.As<Napi::Object>().Get("args");
    }
    // A throwing getter's exception goes back to JS as it is (see BuildPart).
    if (env.IsExceptionPending()) return env.Undefined();
    if (!handle.IsNumber() || !args.IsArray()) {
      Napi::TypeError::New(env, "runKernelParts: each part is {handle, args[]}").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!BuildPart(env, handle, args.As<Napi::Array>(), &parts[i], &keep)) return env.Undefined();
  }
  return Queue(env, std::move(parts), std::move(keep));
}

}  // namespace stitch
