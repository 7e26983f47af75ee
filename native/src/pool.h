#pragma once
#include <functional>
#include <vector>

namespace stitch {
// Runs tasks[1..] on the addon's worker threads and tasks[0] on the calling thread, which then runs
// those no worker has taken yet; returns when all have finished. The pool grows to the largest
// fan-out asked for (bounded by kMaxPoolThreads and by the threads the OS lets it start).
void RunParallel(const std::vector<std::function<void()>>& tasks);
constexpr size_t kMaxPoolThreads = 256;
}  // namespace stitch
