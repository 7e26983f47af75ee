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
// are short, so starting threads per call would cost more than the work it splits. The pool grows
// until every queued task has an idle or starting thread, so concurrent fan-outs (kernels run by
// different libuv threads) never wait on each other's tasks.
class Pool {
 public:
  void Run(const std::vector<std::function<void()>>& tasks) {
    Batch batch;
    batch.remaining = tasks.size() - 1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 1; i < tasks.size(); i++) queue_.push_back({&tasks[i], &batch});
      while (idle_ + starting_ < queue_.size() && started_ < kMaxPoolThreads) {
        starting_++;
        started_++;
        std::thread([this] { Work(); }).detach();
      }
    }
    ready_.notify_all();
    tasks[0]();
    std::unique_lock<std::mutex> lock(batch.mu);
    batch.done.wait(lock, [&] { return batch.remaining == 0; });
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    starting_--;
    idle_++;
    for (;;) {
      ready_.wait(lock, [this] { return !queue_.empty(); });
      Job job = queue_.front();
      queue_.pop_front();
      idle_--;
      lock.unlock();
      (*job.task)();
      {
        std::lock_guard<std::mutex> done(job.batch->mu);
        if (--job.batch->remaining == 0) job.batch->done.notify_one();
      }
      lock.lock();
      idle_++;
    }
  }

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Job> queue_;
  size_t idle_ = 0;
  size_t starting_ = 0;
  size_t started_ = 0;
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
