// The m4 C++ client: talks to the m4fwd daemon over its Unix socket (proto/m4.proto). It links
// only the protocol library — an app never loads the engine or the firmware itself.
//
//     auto c = m4::client::Client::connect();                    // default socket
//     if (!c) { … c.status().message() … }
//     m4::v1::Infer req;
//     req.set_adapter("shirt");
//     auto * in = req.add_inputs(); in->set_modality("image"); in->set_encoded(png_bytes);
//     auto reply = (*c)->infer(req);                             // reply->status() == STATUS_OK …
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "m4.pb.h"
#include "proto/framing.h"

namespace m4::client {

// The socket m4fwd listens on by default: $XDG_RUNTIME_DIR/m4/m4fwd.sock, else /run/m4/m4fwd.sock.
std::string default_socket_path();

class Client {
  public:
    ~Client();
    // Connects and says hello (protocol version 1).
    static Result<std::unique_ptr<Client>> connect(const std::string & socket_path = default_socket_path(),
                                                   int timeout_ms = 60000);

    // One request → its response. Transport faults are a Status; a daemon answer with any
    // protocol status (BUSY, NOT_FOUND, …) is a successful call whose response says so.
    Result<v1::Response> call(v1::Request request, const std::vector<int> & fds = {});

    // Convenience wrappers (a non-OK protocol status comes back in the Response too).
    Result<v1::Response> register_adapter(const std::string & name, const std::string & bytes, bool replace = false);
    Result<v1::Response> list_adapters(bool include_shared = true);
    Result<v1::Response> remove_adapter(const std::string & name);
    Result<v1::Response> infer(const v1::Infer & request, const std::vector<int> & fds = {});
    Result<v1::Response> status();

    const v1::HelloReply & hello() const { return hello_; }
    int                    fd() const { return fd_; }

  private:
    int               fd_ = -1;
    int               timeout_ms_ = 60000;
    uint64_t          next_id_ = 1;
    wire::FrameReader reader_;
    v1::HelloReply    hello_;
};

}  // namespace m4::client
