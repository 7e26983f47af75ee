#include "pool.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace stitch {
namespace {

// One fan-out: the caller waits until every task it handed to the pool has run.
struct Batch {
  std::mutex mu;
  std::condition_variable done;
  size_t remaining;
};

struct Job {
  const std::function<void()>* task;
  Batch* batch;
};

// Threads are started on first need and live for the process (like the libuv pool): kernel runs
// are short, so starting threads per call would cost more than the work it splits.
class Pool {
 public:
  void Run(const std::vector<std::function<void()>>& tasks) {
    Batch batch;
    batch.remaining = tasks.size() - 1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (threads_.size() < tasks.size() - 1 && threads_.size() < kMaxPoolThreads) {
        threads_.emplace_back([this] { Work(); });
        threads_.back().detach();
      }
      for (size_t i = 1; i < tasks.size(); i++) queue_.push_back({&tasks[i], &batch});
    }
    ready_.notify_all();
    tasks[0]();
    std::unique_lock<std::mutex> lock(batch.mu);
    batch.done.wait(lock, [&] { return batch.remaining == 0; });
  }

 private:
  void Work() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ready_.wait(lock, [this] { return !queue_.empty(); });
        job = queue_.front();
        queue_.pop_front();
      }
      (*job.task)();
      std::lock_guard<std::mutex> lock(job.batch->mu);
      if (--job.batch->remaining == 0) job.batch->done.notify_one();
    }
  }

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Job> queue_;
  std::vector<std::thread> threads_;
};

// Never destroyed: detached workers may still wait on it while the process exits.
Pool& ThePool() {
  static Pool* pool = new Pool();
  return *pool;
}

}  // namespace

void RunParallel(const std::vector<std::function<void()>>& tasks) {
  if (tasks.empty()) return;
  if (tasks.size() == 1) {
    tasks[0]();
    return;
  }
  ThePool().Run(tasks);
}

}  // namespace stitch
