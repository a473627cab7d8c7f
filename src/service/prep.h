// Input preparation off the event loop: reading passed descriptors, decoding images / audio /
// IMU files, tokenising text and loading adapters happen on a small pool of threads, never on the
// thread that accepts and reads sockets.
//
// Fair across apps: each app (uid) has its own FIFO and at most one task running at a time, and
// free threads take apps in round-robin order. So one app's slow or huge input delays only that
// app's later requests; another app's small request is prepared by the next free thread.
//
//     PrepPool pool(2);
//     pool.submit(uid, {[&] { decode(); }, [&] { answer_cancelled(); }});
//     pool.shutdown();  // drops (answers) what has not started, waits for what runs
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace m4::svc {

struct PrepTask {
    std::function<void()> run;   // the work
    std::function<void()> drop;  // called instead of run when the pool shuts down first
};

class PrepPool {
  public:
    explicit PrepPool(int threads);
    ~PrepPool();
    void   submit(uint32_t uid, PrepTask task);
    void   shutdown();
    size_t waiting() const;

  private:
    void worker();

    mutable std::mutex                       mu_;
    std::condition_variable                  cv_;
    std::map<uint32_t, std::deque<PrepTask>> queues_;
    std::set<uint32_t>                       running_;  // apps with a task on a thread now
    uint32_t                                 rr_next_  = 0;
    bool                                     stopping_ = false;
    std::vector<std::thread>                 threads_;
};

}  // namespace m4::svc
