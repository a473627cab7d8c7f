// The event loop of m4fwd: socket set-up, accept, framing, dispatch, graceful shutdown.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/crypto.h"
#include "base/log.h"
#include "service/daemon.h"

namespace m4::svc {
namespace {
// The public half of firmware/dev.key, the development key committed to the source tree
// (CMake reads firmware/dev.pub): a daemon that trusts it accepts firmware signed by anyone.
constexpr const char * kDevelopmentPublicKeyHex = M4_DEV_PUBLIC_KEY_HEX;
}  // namespace

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
    if (prep_) prep_->shutdown();
    if (scheduler_) scheduler_->shutdown();
    if (install_thread_.joinable()) install_thread_.join();
    conns_.clear();
    for (int fd : {listen_fd_, epoll_fd_, wake_fd_, signal_fd_, lock_fd_})
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

Status Daemon::open_state_dir() {
    // Per-app state is private: nothing the daemon creates is readable by another uid.
    ::umask(077);
    struct stat st {};
    if (::stat(config_.state_dir.c_str(), &st) != 0) {
        if (::mkdir(config_.state_dir.c_str(), 0700) != 0 && errno != EEXIST)
            return io_error(config_.state_dir + ": cannot create the state directory (" + std::strerror(errno) + ")");
    } else {
        if (!S_ISDIR(st.st_mode)) return invalid_argument(config_.state_dir + ": the state directory is not a directory");
        if (st.st_uid != ::geteuid())
            return permission_denied(config_.state_dir + ": the state directory belongs to uid " +
                                     std::to_string(st.st_uid) + ", not to the daemon's uid " +
                                     std::to_string(::geteuid()));
        if (st.st_mode & 077)
            return permission_denied(fmt::format(
                "{}: the state directory is accessible to other users (mode {:04o}); apps' adapters must "
                "not be: run `chmod 700 {}` (systemd: StateDirectoryMode=0700)",
                config_.state_dir, st.st_mode & 07777, config_.state_dir));
    }
    return Status::ok();
}

Status Daemon::lock_socket_path() {
    // One daemon per socket path: a second one must not take over (or later delete) the socket of
    // the first. The lock dies with the process, so a kill -9 leaves nothing stale behind.
    const std::string lock_path = config_.socket_path + ".lock";
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0) return io_error(lock_path + ": cannot open the socket lock (" + std::strerror(errno) + ")");
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = {};
        (void)::pread(lock_fd_, buf, sizeof buf - 1, 0);
        ::close(lock_fd_), lock_fd_ = -1;
        return invalid_argument(config_.socket_path + ": another m4fwd (pid " + std::string(buf) +
                                ") is serving this socket");
    }
    std::string pid = std::to_string(::getpid());
    if (::ftruncate(lock_fd_, 0) == 0) (void)::pwrite(lock_fd_, pid.data(), pid.size(), 0);
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
    ::signal(SIGPIPE, SIG_IGN);
    // Descriptors are what a flood of connections and passed files would exhaust first.
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (!config_.public_key.empty()) {
        M4_ASSIGN_OR_RETURN(public_key_, read_public_key(config_.public_key));
        dev_key_trusted_ = to_hex(public_key_.data(), public_key_.size()) == kDevelopmentPublicKeyHex;
    }
    if (dev_key_trusted_) {
        start_note_ += "WARNING: the trusted firmware key is m4's public development key; its private half "
                       "(firmware/dev.key) is in the source tree, so anyone can sign firmware this device accepts. "
                       "Generate your own with `m4fw keygen` (docs/service.md, section Keys).";
    } else if (config_.public_key.empty()) {
        start_note_ += "WARNING: no --public-key: firmware is verified by digest only, unsigned images are accepted.";
    }
    if (!start_note_.empty())
        log::write(log::Level::Warn, fmt::format(R"({{"event":"warning","message":"{}"}})", start_note_));
    M4_RETURN_IF_ERROR(open_state_dir());
    std::string dir = config_.socket_path.substr(0, config_.socket_path.find_last_of('/'));
    if (!dir.empty() && ::mkdir(dir.c_str(), 0755) == 0) ::chmod(dir.c_str(), 0755);  // clients must reach it
    M4_RETURN_IF_ERROR(lock_socket_path());
    M4_RETURN_IF_ERROR(store_.open());
    M4_RETURN_IF_ERROR(slots_.open());
    M4_RETURN_IF_ERROR(load_firmware_at_start());
    scheduler_ = std::make_unique<Scheduler>(config_.limits, [this](auto & batch) { run_batch(batch); });
    prep_      = std::make_unique<PrepPool>(static_cast<int>(config_.bounds.prep_threads));

    // The socket is world-connectable: access is decided per request from the kernel's
    // SO_PEERCRED, not by file permissions.
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (config_.socket_path.size() >= sizeof addr.sun_path) return invalid_argument("socket path too long");
    std::strcpy(addr.sun_path, config_.socket_path.c_str());
    ::unlink(config_.socket_path.c_str());  // ours: we hold the lock
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 128) != 0)
        return io_error(config_.socket_path + ": cannot listen (" + std::strerror(errno) + ")");
    ::chmod(config_.socket_path.c_str(), 0666);
    epoll_fd_  = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_   = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    signal_fd_ = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    for (int fd : {listen_fd_, wake_fd_, signal_fd_}) {
        epoll_event ev{};
        ev.events  = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    }
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

void Daemon::accept_all() {
    for (;;) {
        int cfd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) return;
        ucred     cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            ::close(cfd);
            continue;
        }
        // Per-app cap, and a global cap with a reserve only the admin may use: one uid holding
        // idle connections cannot lock other apps (or the admin) out.
        const auto & b    = config_.bounds;
        size_t       mine = 0;
        for (auto & [fd, c] : conns_) mine += c->uid == cred.uid;
        std::string refusal;
        const bool  admin = cred.uid == config_.admin_uid;
        if (!admin && mine >= b.max_connections_per_app)
            refusal = "this app already has " + std::to_string(mine) + " connections (the limit is " +
                      std::to_string(b.max_connections_per_app) + ")";
        else if (conns_.size() >= b.max_connections + (admin ? b.admin_reserved : 0))
            refusal = "the daemon has " + std::to_string(conns_.size()) + " connections (the limit)";
        if (!refusal.empty()) {
            v1::Response r;
            r.set_status(v1::STATUS_BUSY);
            r.set_retry_after_ms(1000);
            r.set_message("connection refused: " + refusal);
            std::string frame = wire::encode_frame(r.SerializeAsString());
            (void)::send(cfd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            ::close(cfd);
            log::write(log::Level::Info, fmt::format(R"({{"event":"refused","uid":{},"pid":{},"why":"{}"}})",
                                                     cred.uid, cred.pid, refusal));
            continue;
        }
        auto c = std::make_shared<Connection>(cfd, cred.uid, cred.pid, config_.app_name(cred.uid), b.max_output_bytes,
                                              epoll_fd_);
        c->frame_started = c->connected_at;  // the first frame is due within frame_timeout_ms too
        conns_[cfd]      = c;
        epoll_event cev{};
        cev.events  = EPOLLIN | EPOLLRDHUP;
        cev.data.fd = cfd;
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, cfd, &cev);
    }
}

void Daemon::run() {
    epoll_event events[64];
    while (!stop_.load()) {
        const auto now = Clock::now();
        int        n   = ::epoll_wait(epoll_fd_, events, 64, next_timeout_ms(now));
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == signal_fd_) {
                signalfd_siginfo si;
                (void)::read(signal_fd_, &si, sizeof si);
                log::write(log::Level::Info, fmt::format(R"({{"event":"signal","signal":{}}})", si.ssi_signo));
                stop_.store(true);
            } else if (fd == wake_fd_) {
                uint64_t v;
                (void)::read(wake_fd_, &v, sizeof v);
            } else if (fd == listen_fd_) {
                accept_all();
            } else if (auto it = conns_.find(fd); it != conns_.end()) {
                auto c = it->second;  // keep it alive through the handlers
                if (events[i].events & EPOLLOUT) c->flush();
                if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(c);
            }
        }
        // One more turn for each connection with frames left over (round robin across them).
        for (int fd : std::vector<int>(ready_.begin(), ready_.end()))
            if (auto it = conns_.find(fd); it != conns_.end()) serve_frames(it->second);
            else ready_.erase(fd);
        const auto after = Clock::now();
        expire_deadlines(after);
        check_timeouts(after);
        reap_closed();
    }
    drain_and_close();
}

int Daemon::next_timeout_ms(Clock::time_point now) const {
    // Wake for the earliest deadline (answered AT the deadline), else at least every 100 ms for
    // the connection timeouts.
    int64_t ms = ready_.empty() ? 100 : 0;
    if (!deadlines_.empty()) {
        auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadlines_.front().first - now).count();
        ms     = std::clamp<int64_t>(d + 1, 0, ms);
    }
    return static_cast<int>(ms);
}

void Daemon::check_timeouts(Clock::time_point now) {
    const auto frame_timeout = std::chrono::milliseconds(config_.bounds.frame_timeout_ms);
    const auto idle_timeout  = std::chrono::milliseconds(config_.bounds.idle_timeout_ms);
    for (auto & [fd, c] : conns_) {
        if (!c->is_open()) continue;
        if (c->frame_started != Clock::time_point{} && now - c->frame_started > frame_timeout) {
            c->close_reason("no complete frame within " + std::to_string(config_.bounds.frame_timeout_ms) + " ms");
        } else if (c->in_flight.load() == 0 && !c->has_output() && now - c->last_activity > idle_timeout) {
            c->close_reason("idle for " + std::to_string(config_.bounds.idle_timeout_ms) + " ms");
        }
    }
}

void Daemon::reap_closed() {
    // Connections whose peer left, whose frames were malformed, that timed out or did not read.
    for (auto it = conns_.begin(); it != conns_.end();) {
        auto & c = it->second;
        if (c->is_open()) {
            ++it;
            continue;
        }
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->first, nullptr);
        ready_.erase(it->first);
        for (auto & [id, job] : c->pending)
            if (auto j = job.lock()) j->cancelled.store(true);
        const std::string why = c->reason();
        if (!why.empty())
            log::write(log::Level::Info, fmt::format(R"({{"event":"disconnect","app":"{}","uid":{},"pid":{},"why":"{}"}})",
                                                     c->app, c->uid, c->pid, why));
        ::shutdown(it->first, SHUT_RDWR);  // the descriptor is closed when the last reference goes
        it = conns_.erase(it);
    }
}

namespace {
// Fairness of the event loop: one connection gets at most this many requests served per turn,
// then the others get theirs; bytes beyond kMaxUnservedBytes are left in the socket (EPOLLIN off)
// until its frames are served. A client flooding requests delays only itself.
constexpr int    kFramesPerTurn    = 8;
constexpr size_t kMaxUnservedBytes = 1u << 20;
}  // namespace

void Daemon::on_readable(const std::shared_ptr<Connection> & c) {
    // Reads what is there (never waits), then serves a turn's worth of complete frames.
    auto backlog = [&] { return c->reader.has_frame() && c->reader.buffered() >= kMaxUnservedBytes; };
    for (int round = 0; round < 4 && c->is_open() && !backlog(); ++round) {
        Status fault;
        long   n = wire::recv_into(c->fd, c->reader, &fault);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            c->close_reason("receive failed");
            return;
        }
        c->last_activity = Clock::now();
        if (!fault.is_ok()) {
            // The stream cannot be resynchronised after a bad length: answer, then close.
            respond_error(*c, 0, fault, "frame");
            c->close_reason("malformed frame");
            return;
        }
        if (n == 0) {
            c->close_reason("");
            break;
        }
    }
    // Half-sent frames held for one app, over all its connections, are bounded.
    uint64_t held = 0;
    for (auto & [fd, other] : conns_)
        if (other->uid == c->uid) held += other->reader.buffered();
    if (held > config_.bounds.max_buffered_input_per_app) {
        respond_error(*c, 0,
                      resource_exhausted("this app's connections hold " + std::to_string(held >> 20) +
                                         " MiB of unfinished frames (the limit is " +
                                         std::to_string(config_.bounds.max_buffered_input_per_app >> 20) + " MiB)"),
                      "frame");
        c->close_reason("too much unfinished input");
        return;
    }
    serve_frames(c);
}

void Daemon::serve_frames(const std::shared_ptr<Connection> & c) {
    wire::Frame frame;
    bool        completed = false;
    int         served    = 0;
    while (c->is_open() && served < kFramesPerTurn && c->reader.next(&frame)) {
        dispatch(c, frame);
        completed = true;
        ++served;
    }
    const bool more = c->is_open() && c->reader.has_frame();
    if (more) ready_.insert(c->fd);
    else ready_.erase(c->fd);
    c->set_reading(c->is_open() && !(more && c->reader.buffered() >= kMaxUnservedBytes));
    // The frame timeout runs from the first byte of the frame still incomplete.
    if (c->reader.buffered() == 0 || more) c->frame_started = Clock::time_point{};
    else if (completed || c->frame_started == Clock::time_point{}) c->frame_started = Clock::now();
}

void Daemon::drain_and_close() {
    // Graceful shutdown: no new connections; what is already in the sockets is read and answered
    // UNAVAILABLE; requests being prepared or queued are answered CANCELLED; the running batch
    // finishes and answers; buffered replies are written (bounded in time); then connections close.
    shutting_down_ = true;
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::unlink(config_.socket_path.c_str());
    for (auto & [fd, c] : conns_)
        if (c->is_open()) on_readable(c);
    for (int turn = 0; !ready_.empty() && turn < 100000; ++turn)
        for (int fd : std::vector<int>(ready_.begin(), ready_.end())) serve_frames(conns_[fd]);
    prep_->shutdown();
    scheduler_->shutdown();
    if (install_thread_.joinable()) install_thread_.join();
    const auto until = Clock::now() + std::chrono::seconds(5);
    for (;;) {
        std::vector<pollfd> waiting;
        for (auto & [fd, c] : conns_)
            if (c->is_open() && c->has_output()) waiting.push_back({fd, POLLOUT, 0});
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
        if (waiting.empty() || left <= 0) break;
        ::poll(waiting.data(), waiting.size(), static_cast<int>(std::min<int64_t>(left, 100)));
        for (auto & p : waiting)
            if (p.revents) conns_[p.fd]->flush();
    }
    for (auto & [fd, c] : conns_) {
        c->close_reason("shutdown");
        ::shutdown(fd, SHUT_RDWR);
    }
    conns_.clear();
    ::close(signal_fd_);
    signal_fd_ = -1;
    log::write(log::Level::Info, R"({"event":"stopped"})");
}

void Daemon::respond_error(Connection & c, uint64_t id, const Status & st, const std::string & what) {
    v1::Response r;
    r.set_id(id);
    r.set_status(to_wire(st.code()));
    r.set_message(scrub(what + ": " + st.message()));
    c.send(r);
    log_request(c, what.c_str(), r.status(), 0);
}

std::string Daemon::scrub(const std::string & message) const {
    // Errors from the store and the loaders name files; an app must not learn the daemon's
    // layout (or other apps' uids) from them. Each state path becomes the name of what it is.
    std::string out = message;
    for (size_t at; (at = out.find(config_.state_dir)) != std::string::npos;) {
        size_t end = at;
        while (end < out.size() && out[end] != ' ' && out[end] != ':' && out[end] != '\'' && out[end] != '"') ++end;
        std::string path = out.substr(at, end - at);
        std::string base = path.substr(path.find_last_of('/') + 1);
        if (auto dot = base.rfind(".m4a"); dot != std::string::npos) base = "adapter '" + base.substr(0, dot) + "'";
        else if (base == "a.m4fw" || base == "b.m4fw") base = "firmware slot " + base.substr(0, 1);
        else base = "the daemon's state";
        out.replace(at, end - at, base);
    }
    return out;
}

void Daemon::log_request(const Connection & c, const char * type, v1::Status st, double ms) {
    if (log::level() < log::Level::Info) return;
    log::write(log::Level::Info, fmt::format(R"({{"event":"request","app":"{}","uid":{},"pid":{},"type":"{}","status":"{}","ms":{:.2f}}})",
                                             c.app, c.uid, c.pid, type, v1::Status_Name(st), ms));
}

}  // namespace m4::svc
