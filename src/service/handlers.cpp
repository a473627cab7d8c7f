// One short handler per RPC. Admission (who may do what) is checked here before any work; the
// answer is always one of the protocol's closed statuses (to_wire).
#include <unistd.h>

#include <chrono>

#include "base/cpu.h"
#include "base/mapped_file.h"
#include "service/daemon.h"

namespace m4::svc {

void Daemon::dispatch(const std::shared_ptr<Connection> & c, wire::Frame & frame) {
    auto        t0 = Clock::now();
    v1::Request req;
    if (!req.ParseFromString(frame.bytes)) {
        for (int fd : frame.fds) ::close(fd);
        respond_error(*c, 0, invalid_argument("not a valid m4.v1.Request message"), "request");
        return;
    }
    {
        std::lock_guard<std::mutex> lock(counters_mu_);
        counters(c->uid).requests++;
    }
    if (req.body_case() == v1::Request::kInfer) {
        submit_infer(c, req.id(), req.infer(), std::move(frame.fds));
        return;
    }
    for (int fd : frame.fds) ::close(fd);  // only Infer takes descriptors
    v1::Response out;
    out.set_id(req.id());
    Status      st;
    const char * type = "unknown";
    switch (req.body_case()) {
        case v1::Request::kHello: type = "hello", st = handle_hello(*c, req.hello(), &out); break;
        case v1::Request::kRegisterAdapter:
            type = "register_adapter", st = handle_register(*c, req.register_adapter(), &out);
            break;
        case v1::Request::kListAdapters: type = "list_adapters", st = handle_list(*c, req.list_adapters(), &out); break;
        case v1::Request::kRemoveAdapter:
            type = "remove_adapter", st = handle_remove(*c, req.remove_adapter(), &out);
            break;
        case v1::Request::kGetStatus: type = "get_status", st = handle_status(*c, req.get_status(), &out); break;
        case v1::Request::kInstallFirmware:
            type = "install_firmware", st = handle_install(*c, req.install_firmware(), &out);
            break;
        case v1::Request::kRollback: type = "rollback", st = handle_rollback(*c, req.rollback(), &out); break;
        case v1::Request::kPublishAdapter:
            type = "publish_adapter", st = handle_publish(*c, req.publish_adapter(), &out);
            break;
        case v1::Request::kCancel: {
            type    = "cancel";
            auto it = c->pending.find(req.cancel().target_id());
            auto j  = it == c->pending.end() ? nullptr : it->second.lock();
            if (j) j->cancelled.store(true);
            else st = not_found("no pending request " + std::to_string(req.cancel().target_id()));
            break;
        }
        default: st = invalid_argument("unknown or empty request type (field " + std::to_string(req.body_case()) + ")");
    }
    if (!st.is_ok()) {
        out.Clear();
        out.set_id(req.id());
        out.set_status(to_wire(st.code()));
        out.set_message(st.message());
        std::lock_guard<std::mutex> lock(counters_mu_);
        counters(c->uid).errors++;
    }
    c->send(out);
    log_request(*c, type, out.status(), std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
}

Status Daemon::handle_hello(Connection & c, const v1::Hello & req, v1::Response * out) {
    if (req.protocol_version() != 1)
        return invalid_argument("protocol version " + std::to_string(req.protocol_version()) + " (this daemon speaks 1)");
    auto * h = out->mutable_hello();
    auto   e = engine();
    h->set_protocol_version(1);
    h->set_firmware_fingerprint(e->model().fingerprint());
    h->set_firmware_name(e->model().config().name);
    h->set_uid(c.uid);
    h->set_app(c.app);
    return Status::ok();
}

Status Daemon::handle_register(Connection & c, const v1::RegisterAdapter & req, v1::Response * out) {
    auto e = engine();
    // The temp file is verified (digest, manifest, binding to the running firmware) before it
    // becomes visible under its name.
    auto verify = [&](const std::string & tmp) {
        auto a = adapter::Adapter::load(tmp, e->model());
        return a.is_ok() ? Status::ok() : Status(a.status().code(), "adapter '" + req.name() + "': " + a.status().message());
    };
    M4_ASSIGN_OR_RETURN(std::string path, store_.put(c.uid, req.name(), req.adapter(), req.replace(), config_.quota, verify));
    e->evict(path);  // a replaced adapter must not be served from the cache
    out->mutable_register_adapter()->set_digest(to_hex(sha256(req.adapter().data(), req.adapter().size())));
    return Status::ok();
}

namespace {
void fill_info(const StoredAdapter & s, const std::string & owner, const model::Model & fw, v1::AdapterInfo * info) {
    info->set_name(s.name);
    info->set_owner(owner);
    info->set_bytes(s.bytes);
    auto a = adapter::Adapter::load_unbound(s.path);
    if (!a) return;
    const auto & m = a->manifest();
    info->set_task(adapter::task_name(m.task));
    info->set_path(model::path_name(m.path));
    info->set_modality(model::modality_name(m.modality));
    info->set_digest(a->file().fingerprint());
    info->set_compatible(m.firmware_fingerprint == fw.fingerprint());
}
}  // namespace

Status Daemon::handle_list(Connection & c, const v1::ListAdapters & req, v1::Response * out) {
    auto   e    = engine();
    auto * list = out->mutable_list_adapters();
    for (const auto & s : store_.list(c.uid)) fill_info(s, c.app, e->model(), list->add_adapters());
    if (req.include_shared())
        for (const auto & s : store_.list_shared()) fill_info(s, "shared", e->model(), list->add_adapters());
    return Status::ok();
}

Status Daemon::handle_remove(Connection & c, const v1::RemoveAdapter & req, v1::Response * out) {
    M4_ASSIGN_OR_RETURN(std::string path, store_.find(c.uid, req.name()));
    M4_RETURN_IF_ERROR(store_.remove(c.uid, req.name()));
    engine()->evict(path);
    return Status::ok();
}

namespace {
uint64_t resident_bytes() {
    auto statm = read_file_bytes("/proc/self/statm");
    if (!statm) return 0;
    unsigned long size = 0, rss = 0;
    std::sscanf(statm->c_str(), "%lu %lu", &size, &rss);
    return static_cast<uint64_t>(rss) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}
}  // namespace

Status Daemon::handle_status(Connection & c, const v1::GetStatus &, v1::Response * out) {
    auto   e = engine();
    auto * s = out->mutable_status_reply();
    s->set_firmware_fingerprint(e->model().fingerprint());
    s->set_firmware_name(e->model().config().name);
    s->set_active_slot(slots_.active());
    s->set_resident_bytes(resident_bytes());
    s->set_adapters_cached(static_cast<uint32_t>(e->adapters_cached()));
    s->set_adapter_cache_bytes(e->adapter_cache_bytes());
    s->set_queue_foreground(static_cast<uint32_t>(scheduler_->queued(0)));
    s->set_queue_background(static_cast<uint32_t>(scheduler_->queued(1)));
    s->set_uptime_ms(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count()));
    s->set_isa(isa_name(selected_isa()));
    // An app sees its own usage; the admin sees every app's.
    std::lock_guard<std::mutex> lock(counters_mu_);
    for (auto & [uid, n] : counters_) {
        if (c.uid != config_.admin_uid && uid != c.uid) continue;
        auto * a = s->add_apps();
        a->set_app(config_.app_name(uid));
        a->set_uid(uid);
        a->set_requests(n.requests);
        a->set_items(n.items);
        a->set_errors(n.errors);
        a->set_busy(n.busy);
        uint64_t bytes;
        uint32_t count;
        store_.usage(uid, &bytes, &count);
        a->set_adapters(count);
        a->set_adapter_bytes(bytes);
    }
    return Status::ok();
}

Status Daemon::handle_install(Connection & c, const v1::InstallFirmware & req, v1::Response * out) {
    if (c.uid != config_.admin_uid) return permission_denied("installing firmware is for the admin only");
    M4_RETURN_IF_ERROR(write_file_atomic(slots_.staging_path(), req.firmware().data(), req.firmware().size()));
    runtime::EngineOptions opt;
    opt.public_key           = config_.public_key.empty() ? nullptr : &public_key_;
    opt.adapter_budget_bytes = config_.adapter_cache_bytes;
    auto candidate           = runtime::Engine::open(slots_.staging_path(), opt);
    if (!candidate) {
        ::unlink(slots_.staging_path().c_str());
        return candidate.status();
    }
    const std::string slot = slots_.inactive();
    M4_RETURN_IF_ERROR(slots_.commit_staging(slot));
    auto * r = out->mutable_install_firmware();
    r->set_slot(slot);
    r->set_fingerprint((*candidate)->model().fingerprint());
    // Every installed adapter is checked against the new firmware before any switch.
    for (uint32_t uid : store_.apps())
        for (const auto & s : store_.list(uid))
            if (!adapter::Adapter::load(s.path, (*candidate)->model()))
                r->add_needs_retraining(config_.app_name(uid) + "/" + s.name);
    for (const auto & s : store_.list_shared())
        if (!adapter::Adapter::load(s.path, (*candidate)->model())) r->add_needs_retraining("shared/" + s.name);
    if (req.activate()) {
        M4_RETURN_IF_ERROR(slots_.activate(slot));
        M4_RETURN_IF_ERROR(load_active_firmware());
        r->set_activated(true);
    }
    return Status::ok();
}

Status Daemon::handle_rollback(Connection & c, const v1::Rollback &, v1::Response * out) {
    if (c.uid != config_.admin_uid) return permission_denied("rollback is for the admin only");
    const std::string previous = slots_.inactive();
    if (::access(slots_.path(previous).c_str(), R_OK) != 0) return not_found("slot " + previous + " holds no firmware");
    const std::string current = slots_.active();
    M4_RETURN_IF_ERROR(slots_.activate(previous));
    Status st = load_active_firmware();
    if (!st.is_ok()) {
        (void)slots_.activate(current);  // keep serving the firmware that works
        return st;
    }
    out->mutable_rollback()->set_slot(previous);
    out->mutable_rollback()->set_fingerprint(engine()->model().fingerprint());
    return Status::ok();
}

Status Daemon::handle_publish(Connection & c, const v1::PublishAdapter & req, v1::Response *) {
    if (c.uid != config_.admin_uid) return permission_denied("publishing shared adapters is for the admin only");
    uint32_t owner = 0;
    bool     found = false;
    for (auto & [uid, name] : config_.app_names)
        if (name == req.app()) owner = uid, found = true;
    if (!found && req.app().size() > 3 && req.app().rfind("uid", 0) == 0) {
        char *        end = nullptr;
        unsigned long v   = std::strtoul(req.app().c_str() + 3, &end, 10);
        if (end && *end == '\0') owner = static_cast<uint32_t>(v), found = true;
    }
    if (!found) return not_found("no app named '" + req.app() + "'");
    if (req.shared()) M4_RETURN_IF_ERROR(store_.find(owner, req.name()).status());
    return store_.publish(owner, req.name(), req.shared());
}

}  // namespace m4::svc
