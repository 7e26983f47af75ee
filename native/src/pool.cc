#include "pool.h"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>

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
// different libuv threads) never wait on each other's tasks. Where the OS refuses a thread (a pids
// or memory limit), the pool stays smaller and the caller runs the tasks no thread has taken.
class Pool {
 public:
  void Run(const std::vector<std::function<void()>>& tasks) {
    Batch batch;
    batch.remaining = tasks.size() - 1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 1; i < tasks.size(); i++) queue_.push_back({&tasks[i], &batch});
      while (idle_ + starting_ < queue_.size() && started_ < kMaxPoolThreads) {
        if (!Start()) break;
      }
    }
    ready_.notify_all();
    tasks[0]();
    // This batch's tasks that no thread has taken yet (all of them when none could be started).
    std::unique_lock<std::mutex> lock(mu_);
    for (auto it = Find(&batch); it != queue_.end(); it = Find(&batch)) {
      Job job = *it;
      queue_.erase(it);
      lock.unlock();
      RunJob(job);
      lock.lock();
    }
    lock.unlock();
    std::unique_lock<std::mutex> wait(batch.mu);
    batch.done.wait(wait, [&] { return batch.remaining == 0; });
  }

 private:
  // pthread_create rather than std::thread, which reports a refused thread (EAGAIN) only by
  // throwing: this addon is built with -fno-exceptions, so that would terminate the process.
  // Called with mu_ held, which the new thread takes before it counts itself idle.
  bool Start() {
    pthread_t thread;
    auto work = [](void* pool) -> void* {
      static_cast<Pool*>(pool)->Work();
      return nullptr;
    };
    if (pthread_create(&thread, nullptr, work, this) != 0) return false;
    pthread_detach(thread);
    starting_++;
    started_++;
    return true;
  }

  std::deque<Job>::iterator Find(const Batch* batch) {
    return std::find_if(queue_.begin(), queue_.end(), [batch](const Job& job) { return job.batch == batch; });
  }

  static void RunJob(const Job& job) {
    (*job.task)();
    std::lock_guard<std::mutex> done(job.batch->mu);
    if (--job.batch->remaining == 0) job.batch->done.notify_one();
  }

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
      RunJob(job);
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
