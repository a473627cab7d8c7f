// Firmware slots at start-up (fall back to the other slot when the active one fails
// verification), install (bytes or a passed descriptor, copied and verified into the inactive
// slot on a thread of its own) and rollback.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/mapped_file.h"
#include "service/daemon.h"

namespace m4::svc {

Status Daemon::load_firmware_at_start() {
    if (!slots_.has_active()) {
        if (config_.firmware.empty()) return invalid_argument("no firmware installed yet: pass --firmware FILE");
        M4_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(config_.firmware));
        M4_RETURN_IF_ERROR(write_file_atomic(slots_.path("a"), bytes.data(), bytes.size()));
        M4_RETURN_IF_ERROR(slots_.activate("a"));
    }
    Status st = load_active_firmware();
    if (st.is_ok()) return st;
    // The active slot does not verify (a flipped bit, a torn write): serve the other slot when it
    // verifies, make it the active one, and say so in the log and in `m4fw status`.
    const std::string bad = slots_.active(), other = slots_.inactive();
    if (::access(slots_.path(other).c_str(), R_OK) != 0) return st;
    M4_RETURN_IF_ERROR(slots_.activate(other));
    Status fallback = load_active_firmware();
    if (!fallback.is_ok()) {
        (void)slots_.activate(bad);
        return Status(st.code(), st.message() + "; slot " + other + " does not verify either: " + fallback.message());
    }
    std::string note = fmt::format("slot {} failed verification at start-up ({}); serving slot {}", bad,
                                   st.message(), other);
    log::write(log::Level::Warn, fmt::format(R"({{"event":"slot_fallback","bad":"{}","serving":"{}"}})", bad, other));
    start_note_ = start_note_.empty() ? note : note + "; " + start_note_;
    return Status::ok();
}

namespace {
// Copies a regular file's contents from a passed descriptor into `path`, durably. Reads with
// pread (the sender's file offset is left alone) and stops at `size`: a file that grows while it
// is copied cannot make the copy larger than what was checked.
Status copy_descriptor(int fd, uint64_t size, const std::string & path) {
    int out = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) return io_error("staging slot: cannot create (" + std::string(std::strerror(errno)) + ")");
    std::string buf(1 << 20, '\0');
    uint64_t    off = 0;
    Status      st;
    while (off < size && st.is_ok()) {
        ssize_t n = ::pread(fd, buf.data(), std::min<uint64_t>(buf.size(), size - off), static_cast<off_t>(off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            st = invalid_argument("firmware: the file ended after " + std::to_string(off) + " of " +
                                  std::to_string(size) + " bytes");
            break;
        }
        for (ssize_t w = 0; w < n && st.is_ok();) {
            ssize_t k = ::write(out, buf.data() + w, static_cast<size_t>(n - w));
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) st = io_error("staging slot: write failed (" + std::string(std::strerror(errno)) + ")");
            else w += k;
        }
        off += static_cast<uint64_t>(n);
    }
    if (st.is_ok() && ::fsync(out) != 0) st = io_error("staging slot: fsync failed");
    ::close(out);
    return st;
}
}  // namespace

Status Daemon::install_firmware(int fd, const std::string & bytes, bool activate, v1::InstallFirmwareReply * r) {
    if (fd >= 0) {
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
            return invalid_argument("firmware: the descriptor is not a regular file");
        if (static_cast<uint64_t>(st.st_size) > config_.bounds.max_firmware_bytes)
            return invalid_argument("firmware: " + std::to_string(st.st_size) + " bytes exceeds the limit of " +
                                    std::to_string(config_.bounds.max_firmware_bytes));
        M4_RETURN_IF_ERROR(copy_descriptor(fd, static_cast<uint64_t>(st.st_size), slots_.staging_path()));
    } else {
        M4_RETURN_IF_ERROR(write_file_atomic(slots_.staging_path(), bytes.data(), bytes.size()));
    }
    runtime::EngineOptions opt;
    opt.public_key           = config_.public_key.empty() ? nullptr : &public_key_;
    opt.adapter_budget_bytes = config_.adapter_cache_bytes;
    auto candidate           = runtime::Engine::open(slots_.staging_path(), opt);  // digest + signature
    if (!candidate) {
        ::unlink(slots_.staging_path().c_str());
        return candidate.status();
    }
    const std::string slot = slots_.inactive();
    M4_RETURN_IF_ERROR(slots_.commit_staging(slot));
    r->set_slot(slot);
    r->set_fingerprint((*candidate)->model().fingerprint());
    // Every installed adapter is checked against the new firmware before any switch.
    for (uint32_t uid : store_.apps())
        for (const auto & s : store_.list(uid))
            if (!adapter::Adapter::load(s.path, (*candidate)->model()))
                r->add_needs_retraining(config_.app_name(uid) + "/" + s.name);
    for (const auto & s : store_.list_shared())
        if (!adapter::Adapter::load(s.path, (*candidate)->model())) r->add_needs_retraining("shared/" + s.name);
    if (activate) {
        M4_RETURN_IF_ERROR(slots_.activate(slot));
        M4_RETURN_IF_ERROR(load_active_firmware());
        r->set_activated(true);
    }
    return Status::ok();
}

Status Daemon::rollback_firmware(v1::RollbackReply * r) {
    const std::string previous = slots_.inactive();
    if (::access(slots_.path(previous).c_str(), R_OK) != 0) return not_found("slot " + previous + " holds no firmware");
    const std::string current = slots_.active();
    M4_RETURN_IF_ERROR(slots_.activate(previous));
    Status st = load_active_firmware();
    if (!st.is_ok()) {
        (void)slots_.activate(current);  // keep serving the firmware that works
        return st;
    }
    r->set_slot(previous);
    r->set_fingerprint(engine()->model().fingerprint());
    return Status::ok();
}

void Daemon::start_firmware_task(const std::shared_ptr<Connection> & c, const v1::Request & req, std::vector<int> fds) {
    auto refuse = [&](const Status & st) {
        for (int fd : fds) ::close(fd);
        count(c->uid, &AppCounters::errors);
        respond_error(*c, req.id(), st, req.has_rollback() ? "rollback" : "install_firmware");
    };
    if (c->uid != config_.admin_uid)
        return refuse(permission_denied(req.has_rollback() ? "rollback is for the admin only"
                                                           : "installing firmware is for the admin only"));
    const bool by_fd = req.has_install_firmware() && req.install_firmware().fd_attached();
    if (by_fd && fds.size() != 1) return refuse(invalid_argument("firmware: expected one descriptor, got " + std::to_string(fds.size())));
    if (!by_fd && !fds.empty()) return refuse(invalid_argument("firmware: a descriptor was sent without fd_attached"));
    if (installing_.exchange(true)) {
        for (int fd : fds) ::close(fd);
        v1::Response r;
        r.set_id(req.id());
        r.set_status(v1::STATUS_BUSY);
        r.set_retry_after_ms(1000);
        r.set_message("a firmware install or rollback is already running");
        c->send(r);
        return;
    }
    if (install_thread_.joinable()) install_thread_.join();  // the previous one has finished
    c->in_flight++;
    std::weak_ptr<Connection> weak = c;
    int                       fd   = by_fd ? fds[0] : -1;
    install_thread_                = std::thread([this, weak, req, fd] {
        auto         t0 = Clock::now();
        v1::Response out;
        out.set_id(req.id());
        Status st = req.has_rollback() ? rollback_firmware(out.mutable_rollback())
                                                      : install_firmware(fd, req.install_firmware().firmware(),
                                                                         req.install_firmware().activate(),
                                                                         out.mutable_install_firmware());
        if (fd >= 0) ::close(fd);
        if (!st.is_ok()) {
            out.Clear();
            out.set_id(req.id());
            out.set_status(to_wire(st.code()));
            out.set_message(scrub(st.message()));
        }
        // Cleared before the reply goes out: a client that sends the next install or rollback as
        // soon as it reads this reply must not be told one is still running (the next start joins
        // this thread, which has only the reply left to send).
        installing_.store(false);
        if (auto conn = weak.lock()) {
            conn->send(out);
            conn->in_flight--;
            log_request(*conn, req.has_rollback() ? "rollback" : "install_firmware", out.status(),
                                       std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
        uint64_t one = 1;
        (void)::write(wake_fd_, &one, sizeof one);
    });
}

}  // namespace m4::svc
