{
  "targets": [
    {
      "target_name": "stitch_native",
      "sources": ["src/addon.cc", "src/probe.cc", "src/kernel.cc", "src/pool.cc", "src/sha256.cc", "src/allocator.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-fno-exceptions"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ]
}
