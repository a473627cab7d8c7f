#include "m4/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/utf8.h"

namespace m4::client {

std::string default_socket_path() {
    const char * xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg) return std::string(xdg) + "/m4/m4fwd.sock";
    return "/run/m4/m4fwd.sock";
}

Client::~Client() {
    if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<Client>> Client::connect(const std::string & path, int timeout_ms) {
    auto c         = std::unique_ptr<Client>(new Client());
    c->timeout_ms_ = timeout_ms;
    c->fd_         = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return invalid_argument(path + ": socket path too long");
    std::strcpy(addr.sun_path, path.c_str());
    if (c->fd_ < 0 || ::connect(c->fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
        return io_error(path + ": cannot connect to m4fwd (" + std::strerror(errno) + "); is the daemon running?");
    v1::Request hello;
    hello.mutable_hello()->set_protocol_version(1);
    hello.mutable_hello()->set_client("m4 C++ client");
    M4_ASSIGN_OR_RETURN(v1::Response r, c->call(hello));
    if (r.status() != v1::STATUS_OK) return invalid_argument(path + ": daemon refused hello: " + r.message());
    c->hello_ = r.hello();
    return c;
}

Result<v1::Response> Client::call(v1::Request request, const std::vector<int> & fds) {
    request.set_id(next_id_++);
    M4_RETURN_IF_ERROR(wire::write_frame(fd_, request.SerializeAsString(), fds));
    // Replies to this client's earlier (timed-out) requests are skipped by id.
    for (;;) {
        wire::Frame frame;
        M4_RETURN_IF_ERROR(wire::read_frame(fd_, reader_, &frame, timeout_ms_));
        for (int f : frame.fds) ::close(f);
        v1::Response r;
        if (!r.ParseFromString(frame.bytes)) return io_error("daemon sent a malformed response");
        if (r.id() == request.id() || r.id() == 0) return r;
    }
}

Result<v1::Response> Client::register_adapter(const std::string & name, const std::string & bytes, bool replace) {
    v1::Request r;
    auto * b = r.mutable_register_adapter();
    b->set_name(name);
    b->set_adapter(bytes);
    b->set_replace(replace);
    return call(std::move(r));
}

Result<v1::Response> Client::list_adapters(bool include_shared) {
    v1::Request r;
    r.mutable_list_adapters()->set_include_shared(include_shared);
    return call(std::move(r));
}

Result<v1::Response> Client::remove_adapter(const std::string & name) {
    v1::Request r;
    r.mutable_remove_adapter()->set_name(name);
    return call(std::move(r));
}

Result<v1::Response> Client::infer(const v1::Infer & request, const std::vector<int> & fds) {
    // The protocol's text is a protobuf string: refuse bad bytes here, named, not in serialisation.
    for (int i = 0; i < request.inputs_size(); ++i)
        if (const size_t at = utf8_invalid_at(request.inputs(i).text()); at != kUtf8Valid)
            return invalid_argument("input " + std::to_string(i + 1) + ": the text is not valid UTF-8 (byte " +
                                    std::to_string(at) + ")");
    v1::Request r;
    *r.mutable_infer() = request;
    return call(std::move(r), fds);
}

Result<v1::Response> Client::status() {
    v1::Request r;
    r.mutable_get_status();
    return call(std::move(r));
}

}  // namespace m4::client
