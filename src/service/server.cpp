// The event loop of m4fwd: socket set-up, accept, framing, dispatch, graceful shutdown.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/log.h"
#include "service/daemon.h"

namespace m4::svc {

v1::Status to_wire(StatusCode code) {
    switch (code) {
        case StatusCode::Ok: return v1::STATUS_OK;
        case StatusCode::InvalidArgument: return v1::STATUS_INVALID_ARGUMENT;
        case StatusCode::NotFound: return v1::STATUS_NOT_FOUND;
        case StatusCode::Incompatible: return v1::STATUS_INCOMPATIBLE;
        case StatusCode::PermissionDenied: return v1::STATUS_PERMISSION_DENIED;
        case StatusCode::ResourceExhausted: return v1::STATUS_QUOTA_EXCEEDED;
        case StatusCode::Unsupported: return v1::STATUS_INVALID_ARGUMENT;
        case StatusCode::IoError:
        case StatusCode::Internal: return v1::STATUS_INTERNAL;
    }
    return v1::STATUS_INTERNAL;
}

void Connection::send(const v1::Response & r) {
    if (!open.load()) return;
    std::string                 bytes = r.SerializeAsString();
    std::lock_guard<std::mutex> lock(write_mu);
    if (!wire::write_frame(fd, bytes).is_ok()) open.store(false);
}

namespace {
ServiceConfig with_defaults(ServiceConfig c) {
    if (c.state_dir.empty()) c.state_dir = "/var/lib/m4";
    if (c.socket_path.empty()) c.socket_path = default_socket_path();
    return c;
}
}  // namespace

Daemon::Daemon(ServiceConfig config)
    : config_(with_defaults(std::move(config))), store_(config_.state_dir + "/adapters"), slots_(config_.state_dir) {}

Daemon::~Daemon() {
    if (scheduler_) scheduler_->shutdown();
    for (auto & [fd, c] : conns_) ::close(fd);
    for (int fd : {listen_fd_, epoll_fd_, wake_fd_})
        if (fd >= 0) ::close(fd);
}

std::shared_ptr<runtime::Engine> Daemon::engine() const {
    std::lock_guard<std::mutex> lock(engine_mu_);
    return engine_;
}

AppCounters & Daemon::counters(uint32_t uid) { return counters_[uid]; }

Status Daemon::load_active_firmware() {
    runtime::EngineOptions opt;
    opt.public_key           = config_.public_key.empty() ? nullptr : &public_key_;
    opt.adapter_budget_bytes = config_.adapter_cache_bytes;
    M4_ASSIGN_OR_RETURN(auto e, runtime::Engine::open(slots_.path(slots_.active()), opt));
    std::lock_guard<std::mutex> lock(engine_mu_);
    engine_ = std::shared_ptr<runtime::Engine>(std::move(e));
    return Status::ok();
}

Status Daemon::start() {
    // Block SIGTERM/SIGINT before any thread starts, so every thread inherits the mask and the
    // signals are only ever consumed through run()'s signalfd (never by a worker's default action).
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    if (!config_.public_key.empty()) {
        M4_ASSIGN_OR_RETURN(public_key_, read_public_key(config_.public_key));
    }
    if (::mkdir(config_.state_dir.c_str(), 0755) != 0 && errno != EEXIST)
        return io_error(config_.state_dir + ": cannot create the state directory");
    M4_RETURN_IF_ERROR(store_.open());
    M4_RETURN_IF_ERROR(slots_.open());
    if (!slots_.has_active()) {
        if (config_.firmware.empty()) return invalid_argument("no firmware installed yet: pass --firmware FILE");
        M4_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(config_.firmware));
        M4_RETURN_IF_ERROR(write_file_atomic(slots_.path("a"), bytes.data(), bytes.size()));
        M4_RETURN_IF_ERROR(slots_.activate("a"));
    }
    M4_RETURN_IF_ERROR(load_active_firmware());
    scheduler_ = std::make_unique<Scheduler>(config_.limits, [this](auto & batch) { run_batch(batch); });

    // Socket: its directory is created if needed; the socket is world-connectable because access
    // is decided per request from the kernel's SO_PEERCRED, not by file permissions.
    std::string dir = config_.socket_path.substr(0, config_.socket_path.find_last_of('/'));
    if (!dir.empty()) ::mkdir(dir.c_str(), 0755);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (config_.socket_path.size() >= sizeof addr.sun_path) return invalid_argument("socket path too long");
    std::strcpy(addr.sun_path, config_.socket_path.c_str());
    ::unlink(config_.socket_path.c_str());
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 128) != 0)
        return io_error(config_.socket_path + ": cannot listen (" + std::strerror(errno) + ")");
    ::chmod(config_.socket_path.c_str(), 0666);
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_  = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events  = EPOLLIN;
    ev.data.fd = listen_fd_;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
    ev.data.fd = wake_fd_;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    auto e = engine();
    log::write(log::Level::Info, fmt::format(R"({{"event":"start","socket":"{}","firmware":"{}","slot":"{}"}})",
                                             config_.socket_path, e->model().fingerprint(), slots_.active()));
    return Status::ok();
}

void Daemon::stop() {
    stop_.store(true);
    uint64_t one = 1;
    if (wake_fd_ >= 0) (void)::write(wake_fd_, &one, sizeof one);
}

void Daemon::run() {
    // SIGTERM / SIGINT arrive as readable events, so shutdown happens in the loop, not in a handler.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    int         sfd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    epoll_event ev{};
    ev.events  = EPOLLIN;
    ev.data.fd = sfd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, sfd, &ev);
    ::signal(SIGPIPE, SIG_IGN);
    epoll_event events[64];
    while (!stop_.load()) {
        int n = ::epoll_wait(epoll_fd_, events, 64, 500);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == sfd) {
                signalfd_siginfo si;
                (void)::read(sfd, &si, sizeof si);
                log::write(log::Level::Info, fmt::format(R"({{"event":"signal","signal":{}}})", si.ssi_signo));
                stop_.store(true);
            } else if (fd == wake_fd_) {
                uint64_t v;
                (void)::read(wake_fd_, &v, sizeof v);
            } else if (fd == listen_fd_) {
                for (;;) {
                    int cfd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) break;
                    ucred     cred{};
                    socklen_t len = sizeof cred;
                    if (conns_.size() >= config_.max_connections ||
                        ::getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
                        ::close(cfd);
                        continue;
                    }
                    auto c = std::make_shared<Connection>();
                    c->fd = cfd, c->uid = cred.uid, c->pid = cred.pid, c->app = config_.app_name(cred.uid);
                    conns_[cfd] = c;
                    epoll_event cev{};
                    cev.events  = EPOLLIN | EPOLLRDHUP;
                    cev.data.fd = cfd;
                    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, cfd, &cev);
                }
            } else if (auto it = conns_.find(fd); it != conns_.end()) {
                on_readable(it->second);
            }
        }
        // Connections whose peer left or whose frames were malformed.
        for (auto it = conns_.begin(); it != conns_.end();) {
            if (!it->second->open.load()) {
                ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->first, nullptr);
                for (auto & [id, job] : it->second->pending)
                    if (auto j = job.lock()) j->cancelled.store(true);
                {
                    std::lock_guard<std::mutex> lock(it->second->write_mu);
                    ::close(it->first);
                }
                it = conns_.erase(it);
            } else {
                ++it;
            }
        }
    }
    // Graceful shutdown: no new connections; queued requests are answered CANCELLED, the running
    // batch finishes and answers, then connections close.
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::unlink(config_.socket_path.c_str());
    scheduler_->shutdown();
    for (auto & [fd, c] : conns_) {
        std::lock_guard<std::mutex> lock(c->write_mu);
        c->open.store(false);
        ::close(fd);
    }
    conns_.clear();
    ::close(sfd);
    log::write(log::Level::Info, R"({"event":"stopped"})");
}

void Daemon::on_readable(const std::shared_ptr<Connection> & c) {
    for (;;) {
        Status fault;
        long   n = wire::recv_into(c->fd, c->reader, &fault);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            c->open.store(false);
            return;
        }
        if (!fault.is_ok()) {
            // The stream cannot be resynchronised after a bad length: answer, then close.
            respond_error(*c, 0, fault, "frame");
            c->open.store(false);
            return;
        }
        wire::Frame frame;
        while (c->reader.next(&frame)) dispatch(c, frame);
        if (n == 0) {
            c->open.store(false);
            return;
        }
    }
}

void Daemon::respond_error(Connection & c, uint64_t id, const Status & st, const std::string & what) {
    v1::Response r;
    r.set_id(id);
    r.set_status(to_wire(st.code()));
    r.set_message(what + ": " + st.message());
    c.send(r);
    log_request(c, what.c_str(), r.status(), 0);
}

void Daemon::log_request(const Connection & c, const char * type, v1::Status st, double ms) {
    if (log::level() < log::Level::Info) return;
    log::write(log::Level::Info, fmt::format(R"({{"event":"request","app":"{}","uid":{},"pid":{},"type":"{}","status":"{}","ms":{:.2f}}})",
                                             c.app, c.uid, c.pid, type, v1::Status_Name(st), ms));
}

}  // namespace m4::svc
