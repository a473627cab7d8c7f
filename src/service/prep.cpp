#include "service/prep.h"

namespace m4::svc {

PrepPool::PrepPool(int threads) {
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { worker(); });
}

PrepPool::~PrepPool() { shutdown(); }

void PrepPool::submit(uint32_t uid, PrepTask task) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!stopping_) {
            queues_[uid].push_back(std::move(task));
            cv_.notify_one();
            return;
        }
    }
    if (task.drop) task.drop();
}

size_t PrepPool::waiting() const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t                      n = 0;
    for (auto & [uid, q] : queues_) n += q.size();
    return n;
}

void PrepPool::worker() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
        // The next app in round-robin order that has work and no task running.
        uint32_t uid   = 0;
        bool     found = false;
        auto     pick  = [&](auto it, auto end) {
            for (; it != end && !found; ++it)
                if (!it->second.empty() && !running_.count(it->first)) uid = it->first, found = true;
        };
        pick(queues_.lower_bound(rr_next_), queues_.end());
        if (!found) pick(queues_.begin(), queues_.lower_bound(rr_next_));
        if (!found) {
            if (stopping_) return;
            cv_.wait(lock);
            continue;
        }
        PrepTask task = std::move(queues_[uid].front());
        queues_[uid].pop_front();
        if (queues_[uid].empty()) queues_.erase(uid);
        running_.insert(uid);
        rr_next_ = uid + 1;
        lock.unlock();
        task.run();
        lock.lock();
        running_.erase(uid);
        cv_.notify_all();  // this app's next task may run now
    }
}

void PrepPool::shutdown() {
    std::vector<PrepTask> dropped;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_ && threads_.empty()) return;
        stopping_ = true;
        for (auto & [uid, q] : queues_)
            for (auto & t : q) dropped.push_back(std::move(t));
        queues_.clear();
    }
    cv_.notify_all();
    for (auto & t : dropped)
        if (t.drop) t.drop();
    for (auto & t : threads_)
        if (t.joinable()) t.join();
    threads_.clear();
}

}  // namespace m4::svc
