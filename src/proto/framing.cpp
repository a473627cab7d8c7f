#include "proto/framing.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace m4::wire {

FrameReader::~FrameReader() {
    for (int fd : fds_) ::close(fd);
}

Status FrameReader::feed(const char * data, size_t n, const std::vector<int> & fds) {
    for (int fd : fds) fds_.push_back(fd);
    if (fds_.size() > static_cast<size_t>(kMaxFdsPerFrame) * 2) return invalid_argument("too many descriptors sent");
    if (pos_ > 0 && pos_ == buf_.size()) buf_.clear(), pos_ = 0;
    buf_.append(data, n);
    if (buffered() >= 4) {
        uint32_t len;
        std::memcpy(&len, buf_.data() + pos_, 4);
        if (len > kMaxFrameBytes)
            return invalid_argument("frame of " + std::to_string(len) + " bytes exceeds the limit of " +
                                    std::to_string(kMaxFrameBytes));
    }
    return Status::ok();
}

bool FrameReader::has_frame() const {
    if (buffered() < 4) return false;
    uint32_t len;
    std::memcpy(&len, buf_.data() + pos_, 4);
    return len <= kMaxFrameBytes && buffered() >= 4 + static_cast<size_t>(len);
}

bool FrameReader::next(Frame * out) {
    if (buffered() < 4) return false;
    uint32_t len;
    std::memcpy(&len, buf_.data() + pos_, 4);
    if (len > kMaxFrameBytes || buffered() < 4 + static_cast<size_t>(len)) return false;
    out->bytes.assign(buf_, pos_ + 4, len);
    pos_ += 4 + len;
    out->fds.clear();
    // Descriptors arrive with the first byte of their frame; hand them to that frame.
    while (!fds_.empty() && static_cast<int>(out->fds.size()) < kMaxFdsPerFrame) {
        out->fds.push_back(fds_.front());
        fds_.pop_front();
    }
    if (pos_ > (1u << 20) && pos_ * 2 > buf_.size()) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    return true;
}

std::string encode_frame(const std::string & payload) {
    std::string out(4, '\0');
    uint32_t    len = static_cast<uint32_t>(payload.size());
    std::memcpy(out.data(), &len, 4);
    return out + payload;
}

Status write_frame(int fd, const std::string & payload, const std::vector<int> & send_fds) {
    if (payload.size() > kMaxFrameBytes) return invalid_argument("frame too large");
    std::string data = encode_frame(payload);
    size_t      off  = 0;
    bool        fds_sent = send_fds.empty();
    while (off < data.size()) {
        iovec  iov{data.data() + off, data.size() - off};
        msghdr msg{};
        msg.msg_iov    = &iov;
        msg.msg_iovlen = 1;
        alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * kMaxFdsPerFrame)];
        if (!fds_sent) {
            size_t n           = std::min<size_t>(send_fds.size(), kMaxFdsPerFrame);
            msg.msg_control    = ctrl;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
            cmsghdr * c        = CMSG_FIRSTHDR(&msg);
            c->cmsg_level      = SOL_SOCKET;
            c->cmsg_type       = SCM_RIGHTS;
            c->cmsg_len        = CMSG_LEN(sizeof(int) * n);
            std::memcpy(CMSG_DATA(c), send_fds.data(), sizeof(int) * n);
        }
        ssize_t w = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                pollfd p{fd, POLLOUT, 0};
                ::poll(&p, 1, 1000);
                continue;
            }
            return io_error(std::string("send failed: ") + std::strerror(errno));
        }
        fds_sent = true;
        off += static_cast<size_t>(w);
    }
    return Status::ok();
}

long recv_into(int fd, FrameReader & reader, Status * fault) {
    char                      buf[1 << 16];
    iovec                     iov{buf, sizeof buf};
    alignas(cmsghdr) char     ctrl[CMSG_SPACE(sizeof(int) * kMaxFdsPerFrame)];
    msghdr                    msg{};
    msg.msg_iov        = &iov;
    msg.msg_iovlen     = 1;
    msg.msg_control    = ctrl;
    msg.msg_controllen = sizeof ctrl;
    ssize_t n          = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return -1;
    std::vector<int> fds;
    for (cmsghdr * c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; ++i) {
                int got;
                std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                fds.push_back(got);
            }
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
        for (int f : fds) ::close(f);
        *fault = invalid_argument("too many descriptors in one message");
        return n;
    }
    *fault = reader.feed(buf, static_cast<size_t>(n), fds);
    return n;
}

Status read_frame(int fd, FrameReader & reader, Frame * out, int timeout_ms) {
    for (;;) {
        if (reader.next(out)) return Status::ok();
        pollfd p{fd, POLLIN, 0};
        int    r = ::poll(&p, 1, timeout_ms);
        if (r == 0) return Status(StatusCode::IoError, "timed out waiting for a reply");
        if (r < 0) {
            if (errno == EINTR) continue;
            return io_error(std::string("poll failed: ") + std::strerror(errno));
        }
        Status fault;
        long   n = recv_into(fd, reader, &fault);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return io_error(std::string("receive failed: ") + std::strerror(errno));
        }
        if (!fault.is_ok()) return fault;
        if (n == 0) return io_error("connection closed by the daemon");
    }
}

}  // namespace m4::wire
