// Length-prefixed frames on a Unix stream socket: a 4-byte little-endian length, then the bytes of
// one serialized protobuf message (proto/m4.proto). Descriptors (SCM_RIGHTS) may ride along.
//
// FrameReader is incremental, for non-blocking sockets: feed it whatever recvmsg() returned and
// take complete frames out. Every fault (oversized length, a descriptor flood) is reported, never
// trusted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "base/status.h"

namespace m4::wire {

inline constexpr uint32_t kMaxFrameBytes = 64u << 20;  // 64 MiB
inline constexpr int      kMaxFdsPerFrame = 64;  // one per input of a request (docs/service.md)

struct Frame {
    std::string      bytes;
    std::vector<int> fds;  // owned: the receiver must close them
};

class FrameReader {
  public:
    ~FrameReader();
    // Appends received bytes and descriptors. Returns an error for a frame length over the limit.
    Status feed(const char * data, size_t n, const std::vector<int> & fds = {});
    // Takes the next complete frame, if any.
    bool next(Frame * out);
    size_t buffered() const { return buf_.size() - pos_; }
    bool   has_frame() const;  // a complete frame is waiting

  private:
    std::string     buf_;
    size_t          pos_ = 0;
    std::deque<int> fds_;
};

// Encodes one frame (length prefix + bytes).
std::string encode_frame(const std::string & payload);

// Blocking helpers (clients and tests): write a whole frame (optionally with descriptors), read one.
Status write_frame(int fd, const std::string & payload, const std::vector<int> & send_fds = {});
// `reader` keeps bytes of frames that arrived early (pipelined replies) for the next call.
Status read_frame(int fd, FrameReader & reader, Frame * out, int timeout_ms = -1);

// Non-blocking receive into a FrameReader: returns bytes read (0 = peer closed), or -1 with errno.
long recv_into(int fd, FrameReader & reader, Status * fault);

}  // namespace m4::wire
