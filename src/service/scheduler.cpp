#include "service/scheduler.h"

#include <algorithm>
#include <cmath>

namespace m4::svc {

Scheduler::Scheduler(const SchedulerLimits & limits, Executor executor, int workers)
    : limits_(limits), executor_(std::move(executor)) {
    for (int i = 0; i < std::max(1, workers); ++i) workers_.emplace_back([this] { worker(); });
}

Scheduler::~Scheduler() { shutdown(); }

Admission Scheduler::admit_locked(uint32_t uid, int items) {
    Admission a;
    auto      busy = [&](uint32_t ms, std::string why) {
        a.ok             = false;
        a.retry_after_ms = std::max<uint32_t>(1, ms);
        a.reason         = std::move(why);
        return a;
    };
    if (stopping_) return busy(1000, "the daemon is shutting down");
    AppQueue & q = apps_[uid];
    // A rough drain estimate: how many batches are ahead, at ~20 ms each.
    auto drain_ms = [&](size_t n) { return static_cast<uint32_t>(20 * (1 + n / std::max(1, limits_.max_batch_items))); };
    const size_t waiting = queued_items_ + reserved_items_, mine = q.items + q.reserved;
    if (waiting + items > limits_.max_queued_items)
        return busy(drain_ms(waiting), "queue full (" + std::to_string(waiting) + " items waiting)");
    if (mine + items > limits_.max_pending_per_app)
        return busy(drain_ms(mine), "this app already has " + std::to_string(mine) + " items waiting");
    if (limits_.rate_per_app > 0) {
        auto   now = Clock::now();
        double dt  = std::chrono::duration<double>(now - q.refill).count();
        if (q.fresh) q.tokens = limits_.burst_per_app, q.fresh = false;
        q.tokens = std::min(limits_.burst_per_app, q.tokens + dt * limits_.rate_per_app);
        q.refill = now;
        if (q.tokens < 1.0)
            return busy(static_cast<uint32_t>(std::ceil(1000.0 * (1.0 - q.tokens) / limits_.rate_per_app)),
                        "rate quota of " + std::to_string(limits_.rate_per_app) + " requests/s");
        q.tokens -= 1.0;
    }
    return a;
}

Admission Scheduler::submit(const std::shared_ptr<Job> & job) {
    std::lock_guard<std::mutex> lock(mu_);
    Admission                   a = admit_locked(job->uid, job->items);
    if (!a.ok) return a;
    AppQueue & q = apps_[job->uid];
    q.jobs[job->priority == 0 ? 0 : 1].push_back(job);
    q.items += job->items;
    queued_items_ += job->items;
    cv_.notify_one();
    return a;
}

Admission Scheduler::reserve(uint32_t uid, int items) {
    std::lock_guard<std::mutex> lock(mu_);
    Admission                   a = admit_locked(uid, items);
    if (a.ok) apps_[uid].reserved += items, reserved_items_ += items;
    return a;
}

void Scheduler::release(uint32_t uid, int items) {
    std::lock_guard<std::mutex> lock(mu_);
    AppQueue &                  q = apps_[uid];
    const size_t                n = std::min<size_t>(q.reserved, static_cast<size_t>(items));
    q.reserved -= n;
    reserved_items_ -= n;
}

void Scheduler::enqueue_reserved(const std::shared_ptr<Job> & job) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        AppQueue &                  q = apps_[job->uid];
        const size_t                n = std::min<size_t>(q.reserved, static_cast<size_t>(job->items));
        q.reserved -= n;
        reserved_items_ -= n;
        if (!stopping_) {
            q.jobs[job->priority == 0 ? 0 : 1].push_back(job);
            q.items += job->items;
            queued_items_ += job->items;
            cv_.notify_one();
            return;
        }
    }
    if (job->on_dropped) job->on_dropped(JobEnd::Shutdown);  // shutdown began while it was prepared
}

size_t Scheduler::queued(int priority) const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t                      n = 0;
    for (auto & [uid, q] : apps_) n += q.jobs[priority].size();
    return n;
}

bool Scheduler::take_batch(std::vector<std::shared_ptr<Job>> * batch, std::vector<std::shared_ptr<Job>> * dropped) {
    const auto now = Clock::now();
    // Expired and cancelled jobs leave first, whatever their position.
    for (auto & [uid, q] : apps_)
        for (auto & dq : q.jobs)
            for (auto it = dq.begin(); it != dq.end();) {
                if ((*it)->cancelled.load() || (*it)->deadline <= now) {
                    q.items -= (*it)->items;
                    queued_items_ -= (*it)->items;
                    dropped->push_back(*it);
                    it = dq.erase(it);
                } else {
                    ++it;
                }
            }
    for (int pr = 0; pr < 2; ++pr) {
        // Apps with work at this priority, in round-robin order starting at the cursor.
        std::vector<uint32_t> order;
        for (auto it = apps_.lower_bound(rr_next_); it != apps_.end(); ++it)
            if (!it->second.jobs[pr].empty()) order.push_back(it->first);
        for (auto it = apps_.begin(); it != apps_.end() && it->first < rr_next_; ++it)
            if (!it->second.jobs[pr].empty()) order.push_back(it->first);
        if (order.empty()) continue;
        AppQueue &        first = apps_[order[0]];
        const std::string key   = first.jobs[pr].front()->batch_key;
        int               items = 0;
        // Round robin over apps, one job per app per round, same batch key.
        for (bool progress = true; progress && items < limits_.max_batch_items;) {
            progress = false;
            for (uint32_t uid : order) {
                auto & dq = apps_[uid].jobs[pr];
                if (dq.empty() || dq.front()->batch_key != key) continue;
                if (items > 0 && items + dq.front()->items > limits_.max_batch_items) continue;
                auto job = dq.front();
                dq.pop_front();
                apps_[uid].items -= job->items;
                queued_items_ -= job->items;
                items += job->items;
                batch->push_back(job);
                progress = true;
                if (items >= limits_.max_batch_items) break;
            }
        }
        rr_next_ = order[0] + 1;  // the next batch starts with the next app
        return true;
    }
    return false;
}

void Scheduler::worker() {
    for (;;) {
        std::vector<std::shared_ptr<Job>> batch, dropped;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopping_ || queued_items_ > 0; });
            if (stopping_ && queued_items_ == 0) return;
            if (!stopping_) take_batch(&batch, &dropped);
        }
        for (auto & j : dropped)
            if (j->on_dropped) j->on_dropped(j->cancelled.load() ? JobEnd::Cancelled : JobEnd::Expired);
        if (!batch.empty()) {
            executor_(batch);
            batches_++;
        }
    }
}

void Scheduler::shutdown() {
    std::vector<std::shared_ptr<Job>> left;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_ && workers_.empty()) return;
        stopping_ = true;
        for (auto & [uid, q] : apps_)
            for (auto & dq : q.jobs) {
                for (auto & j : dq) left.push_back(j);
                dq.clear();
            }
        queued_items_ = 0;
    }
    cv_.notify_all();
    for (auto & j : left)
        if (j->on_dropped) j->on_dropped(JobEnd::Shutdown);
    for (auto & t : workers_)
        if (t.joinable()) t.join();
    workers_.clear();
}

}  // namespace m4::svc
