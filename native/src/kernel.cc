#include "kernel.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "sha256.h"

namespace stitch {
namespace {

// Entry points of loaded artifacts. Artifacts stay loaded for the life of the process: a kernel
// may be running on a pool thread when JS drops its last reference.
std::vector<void*> g_entries;
// Loaded libraries by SHA-256 of their bytes: loading the same verified bytes again reuses them
// instead of mapping another copy (a node reloads the same artifacts many times).
std::map<std::string, void*> g_libraries;

constexpr size_t kMaxArgs = 8;

Napi::Object Failure(Napi::Env env, const char* code, const std::string& message) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", false);
  r.Set("code", code);
  r.Set("message", message);
  return r;
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

// Baton: Execute touches only plain C++ data (descriptors over memory the references keep alive).
class KernelWorker : public Napi::AsyncWorker {
 public:
  KernelWorker(Napi::Env env, void* entry, std::vector<std::vector<int64_t>> descs,
               std::vector<Napi::ObjectReference> keep)
      : Napi::AsyncWorker(env), entry_(entry), descs_(std::move(descs)), keep_(std::move(keep)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    void* a[kMaxArgs] = {nullptr};
    for (size_t i = 0; i < descs_.size(); i++) a[i] = descs_[i].data();
    switch (descs_.size()) {
      case 1: reinterpret_cast<Fn1>(entry_)(a[0]); break;
      case 2: reinterpret_cast<Fn2>(entry_)(a[0], a[1]); break;
      case 3: reinterpret_cast<Fn3>(entry_)(a[0], a[1], a[2]); break;
      case 4: reinterpret_cast<Fn4>(entry_)(a[0], a[1], a[2], a[3]); break;
      case 5: reinterpret_cast<Fn5>(entry_)(a[0], a[1], a[2], a[3], a[4]); break;
      case 6: reinterpret_cast<Fn6>(entry_)(a[0], a[1], a[2], a[3], a[4], a[5]); break;
      case 7: reinterpret_cast<Fn7>(entry_)(a[0], a[1], a[2], a[3], a[4], a[5], a[6]); break;
      case 8: reinterpret_cast<Fn8>(entry_)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]); break;
      default: SetError("unsupported argument count");
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  void* entry_;
  std::vector<std::vector<int64_t>> descs_;
  std::vector<Napi::ObjectReference> keep_;
  Napi::Promise::Deferred deferred_;
};

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
  g_entries.push_back(entry);
  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", true);
  r.Set("handle", double(g_entries.size() - 1));
  return r;
}

Napi::Value RunKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsArray()) {
    Napi::TypeError::New(env, "runKernel(handle, args[])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t handle = info[0].As<Napi::Number>().Uint32Value();
  Napi::Array args = info[1].As<Napi::Array>();
  if (handle >= g_entries.size() || args.Length() == 0 || args.Length() > kMaxArgs) {
    Napi::RangeError::New(env, "runKernel: unknown handle or bad argument count").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<std::vector<int64_t>> descs;
  std::vector<Napi::ObjectReference> keep;
  for (uint32_t i = 0; i < args.Length(); i++) {
    Napi::Object arg = args.Get(i).As<Napi::Object>();
    Napi::Value data = arg.Get("data");
    Napi::Value shapeValue = arg.Get("shape");
    if (!data.IsTypedArray() || !shapeValue.IsArray()) {
      Napi::TypeError::New(env, "runKernel: each argument needs data (TypedArray) and shape").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::TypedArray ta = data.As<Napi::TypedArray>();
    Napi::Array shape = shapeValue.As<Napi::Array>();
    uint32_t rank = shape.Length();
    // napi_get_typedarray_info gives the element pointer for ArrayBuffer and SharedArrayBuffer
    // backing stores alike (offset included); a detached buffer has none.
    napi_typedarray_type type;
    size_t length = 0;
    void* base = nullptr;
    napi_value arrayBuffer;
    size_t byteOffset = 0;
    napi_get_typedarray_info(env, ta, &type, &length, &base, &arrayBuffer, &byteOffset);
    // Descriptor {allocated, aligned, offset, sizes[rank], strides[rank]}, row-major strides.
    std::vector<int64_t> d(3 + 2 * rank);
    d[0] = d[1] = reinterpret_cast<int64_t>(base);
    d[2] = 0;
    int64_t stride = 1;
    for (int r = int(rank) - 1; r >= 0; r--) {
      int64_t size = int64_t(shape.Get(uint32_t(r)).As<Napi::Number>().Int64Value());
      d[3 + r] = size;
      d[3 + rank + r] = stride;
      stride *= size;
    }
    // The TypeScript side checks shapes against the manifest; this guards the memory itself.
    // Int8Array carries quantized weights (q8_0); the kernel's element type matches the manifest's dtype.
    bool supported = type == napi_float32_array || type == napi_int32_array || type == napi_int8_array;
    if (base == nullptr || !supported || stride != int64_t(length)) {
      Napi::RangeError::New(env, "runKernel: argument " + std::to_string(i) +
                                     " must be a Float32Array, Int32Array or Int8Array whose shape covers exactly its elements")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    descs.push_back(std::move(d));
    keep.push_back(Napi::Persistent(ta.As<Napi::Object>()));
  }
  auto* worker = new KernelWorker(env, g_entries[handle], std::move(descs), std::move(keep));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace stitch
