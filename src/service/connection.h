// One client connection of m4fwd: who it is (from SO_PEERCRED), the frames it is sending us, and
// the replies we owe it.
//
// Replies never block the daemon. send() appends the frame to a bounded output buffer and writes
// what the socket takes without waiting; the event loop writes the rest when the socket becomes
// writable (EPOLLOUT). A client that stops reading while its buffer grows past
// `max_output_bytes` is disconnected (its queued requests are cancelled), so one app that
// pipelines requests and never reads cannot stall the worker, the loop or any other app.
//
//     auto c = std::make_shared<Connection>(fd, cred, app, limits, epoll_fd);
//     c->send(response);          // from any thread; never blocks
//     c->flush();                 // event loop, on EPOLLOUT
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "m4.pb.h"
#include "proto/framing.h"
#include "service/scheduler.h"

namespace m4::svc {

class Connection {
  public:
    Connection(int fd, uint32_t uid, int32_t pid, std::string app, uint64_t max_output_bytes, int epoll_fd);
    ~Connection();  // closes the socket: only when no job holds the connection any more
    Connection(const Connection &)             = delete;
    Connection & operator=(const Connection &) = delete;

    const int         fd;
    const uint32_t    uid;
    const int32_t     pid;
    const std::string app;

    // Queues one reply and writes what the socket accepts now. Thread-safe, never blocks. Returns
    // false when the connection is (or just became) closed: the client is gone or did not read.
    bool send(const v1::Response & r);
    // Writes buffered replies (event loop, on EPOLLOUT). False: the connection failed.
    bool flush();
    bool has_output() const;
    uint64_t output_bytes() const;

    // Whether the loop wants to read this socket (off while unread frames pile up in `reader`).
    void set_reading(bool want);

    bool is_open() const { return open_.load(); }
    void close_reason(const std::string & why);  // marks closed; the loop reaps it
    std::string reason() const;

    // Event-loop state (only the loop thread touches these).
    wire::FrameReader                      reader;
    Clock::time_point                      connected_at = Clock::now();
    Clock::time_point                      last_activity = Clock::now();
    Clock::time_point                      frame_started{};  // when the current partial frame began
    bool                                   reading_paused = false;
    std::map<uint64_t, std::weak_ptr<Job>> pending;  // for Cancel
    std::atomic<int>                       in_flight{0};  // requests accepted and not yet answered

  private:
    bool write_some_locked();  // non-blocking; false on a socket error
    void watch_output_locked(bool want);
    void update_events_locked();

    const uint64_t     max_output_bytes_;
    const int          epoll_fd_;
    mutable std::mutex mu_;
    std::string        out_;        // encoded frames not yet written
    size_t             out_pos_ = 0;
    bool               watching_output_ = false;
    bool               reading_         = true;
    std::atomic<bool>  open_{true};
    std::string        reason_;
};

}  // namespace m4::svc
