#include "service/connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace m4::svc {

Connection::Connection(int fd_, uint32_t uid_, int32_t pid_, std::string app_, uint64_t max_output_bytes,
                       int epoll_fd)
    : fd(fd_), uid(uid_), pid(pid_), app(std::move(app_)), max_output_bytes_(max_output_bytes), epoll_fd_(epoll_fd) {}

Connection::~Connection() { ::close(fd); }

bool Connection::send(const v1::Response & r) {
    if (!open_.load()) return false;
    std::string                 frame = wire::encode_frame(r.SerializeAsString());
    std::lock_guard<std::mutex> lock(mu_);
    if (!open_.load()) return false;
    if (out_.size() - out_pos_ + frame.size() > max_output_bytes_) {
        // The client is not reading its replies: it loses its connection, nobody else waits.
        reason_ = "the client did not read " + std::to_string(out_.size() - out_pos_) + " bytes of replies";
        open_.store(false);
        return false;
    }
    if (out_pos_ == out_.size()) out_.clear(), out_pos_ = 0;
    out_ += frame;
    if (!write_some_locked()) {
        open_.store(false);
        return false;
    }
    watch_output_locked(out_pos_ < out_.size());
    return true;
}

bool Connection::flush() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!open_.load()) return false;
    if (!write_some_locked()) {
        open_.store(false);
        return false;
    }
    watch_output_locked(out_pos_ < out_.size());
    return true;
}

bool Connection::has_output() const {
    std::lock_guard<std::mutex> lock(mu_);
    return out_pos_ < out_.size();
}

uint64_t Connection::output_bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return out_.size() - out_pos_;
}

void Connection::close_reason(const std::string & why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (reason_.empty()) reason_ = why;
    open_.store(false);
}

std::string Connection::reason() const {
    std::lock_guard<std::mutex> lock(mu_);
    return reason_;
}

bool Connection::write_some_locked() {
    while (out_pos_ < out_.size()) {
        ssize_t w = ::send(fd, out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
            if (reason_.empty()) reason_ = "send failed";
            return false;
        }
        out_pos_ += static_cast<size_t>(w);
    }
    // Keep the buffer from growing without bound when a slow reader keeps up only partly.
    if (out_pos_ > (1u << 20) && out_pos_ * 2 > out_.size()) out_.erase(0, out_pos_), out_pos_ = 0;
    return true;
}

void Connection::watch_output_locked(bool want) {
    if (want == watching_output_) return;
    watching_output_ = want;
    update_events_locked();
}

void Connection::set_reading(bool want) {
    std::lock_guard<std::mutex> lock(mu_);
    if (want == reading_) return;
    reading_ = want;
    update_events_locked();
}

void Connection::update_events_locked() {
    if (epoll_fd_ < 0) return;
    // epoll_ctl is thread-safe: a worker that buffers a reply may ask for EPOLLOUT itself.
    epoll_event ev{};
    ev.events  = EPOLLRDHUP | (watching_output_ ? EPOLLOUT : 0u) | (reading_ ? EPOLLIN : 0u);
    ev.data.fd = fd;
    (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
}

}  // namespace m4::svc
