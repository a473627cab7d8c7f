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
    count(c->uid, &AppCounters::requests);
    if (shutting_down_) {
        // Read from the socket after SIGTERM: answered, never dropped.
        for (int fd : frame.fds) ::close(fd);
        v1::Response r;
        r.set_id(req.id());
        r.set_status(v1::STATUS_UNAVAILABLE);
        r.set_message("the daemon is shutting down");
        c->send(r);
        return;
    }
    if (req.body_case() == v1::Request::kInfer) {
        submit_infer(c, req.id(), req.infer(), std::move(frame.fds));
        return;
    }
    if (req.body_case() == v1::Request::kInstallFirmware || req.body_case() == v1::Request::kRollback) {
        start_firmware_task(c, req, std::move(frame.fds));
        return;
    }
    for (int fd : frame.fds) ::close(fd);  // only Infer and InstallFirmware take descriptors
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
        case v1::Request::kPublishAdapter:
            type = "publish_adapter", st = handle_publish(*c, req.publish_adapter(), &out);
            break;
        case v1::Request::kCancel: {
            type    = "cancel";
            auto it = c->pending.find(req.cancel().target_id());
            auto j  = it == c->pending.end() ? nullptr : it->second.lock();
            if (j) {
                // Answered CANCELLED now unless it already runs (then it finishes normally).
                j->cancelled.store(true);
                j->on_dropped(JobEnd::Cancelled);
            } else st = not_found("no pending request " + std::to_string(req.cancel().target_id()));
            break;
        }
        default: st = invalid_argument("unknown or empty request type (field " + std::to_string(req.body_case()) + ")");
    }
    if (!st.is_ok()) {
        out.Clear();
        out.set_id(req.id());
        out.set_status(to_wire(st.code()));
        out.set_message(scrub(st.message()));
        count(c->uid, &AppCounters::errors);
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
    h->set_max_inputs_per_request(config_.max_inputs());
    h->set_max_frame_bytes(wire::kMaxFrameBytes);
    return Status::ok();
}

Status Daemon::handle_register(Connection & c, const v1::RegisterAdapter & req, v1::Response * out) {
    auto e = engine();
    // The temp file is verified (digest, manifest, binding to the running firmware) before it
    // becomes visible under its name.
    std::string digest;  // the container digest, as `m4fw inspect` and ListAdapters show it
    auto verify = [&](const std::string & tmp) {
        auto a = adapter::Adapter::load(tmp, e->model());
        if (a.is_ok()) digest = a->file().fingerprint();
        return a.is_ok() ? Status::ok() : Status(a.status().code(), "adapter '" + req.name() + "': " + a.status().message());
    };
    M4_ASSIGN_OR_RETURN(std::string path, store_.put(c.uid, req.name(), req.adapter(), req.replace(), config_.quota, verify));
    e->evict(path);  // a replaced adapter must not be served from the cache
    out->mutable_register_adapter()->set_digest(digest);
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
    info->set_output(adapter::output_kind_name(m.output));
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
    const bool admin = c.uid == config_.admin_uid;
    if (admin && !start_note_.empty()) s->add_notices(start_note_);
    uint32_t open = 0;
    for (auto & [fd, other] : conns_) open += admin || other->uid == c.uid;
    s->set_connections(open);
    {
        std::lock_guard<std::mutex> lock(input_mu_);
        uint64_t                    held = 0;
        for (auto & [uid, bytes] : queued_input_) held += (admin || uid == c.uid) ? bytes : 0;
        s->set_queued_input_bytes(held);
    }
    // An app sees its own usage; the admin sees every app's.
    std::lock_guard<std::mutex> lock(counters_mu_);
    for (auto & [uid, n] : counters_) {
        if (!admin && uid != c.uid) continue;
        auto * a = s->add_apps();
        a->set_app(config_.app_name(uid));
        a->set_uid(uid);
        a->set_requests(n.requests);
        a->set_items(n.items);
        a->set_errors(n.errors);
        a->set_busy(n.busy);
        a->set_prompt_tokens(n.prompt_tokens);
        a->set_generated_tokens(n.generated_tokens);
        a->set_cpu_us(n.cpu_us);
        a->set_queue_us(n.queue_us);
        a->set_peak_adapter_bytes(n.peak_adapter_bytes);
        a->set_peak_kv_bytes(n.peak_kv_bytes);
        uint64_t bytes;
        uint32_t count;
        store_.usage(uid, &bytes, &count);
        a->set_adapters(count);
        a->set_adapter_bytes(bytes);
    }
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
