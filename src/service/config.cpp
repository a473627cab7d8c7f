#include "service/config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "base/mapped_file.h"
#include "proto/framing.h"

namespace m4::svc {

std::string ServiceConfig::app_name(uint32_t uid) const {
    auto it = app_names.find(uid);
    return it != app_names.end() ? it->second : "uid" + std::to_string(uid);
}

uint32_t ServiceConfig::max_inputs() const {
    size_t n = bounds.max_inputs_per_request;
    n        = std::min(n, limits.max_pending_per_app);
    n        = std::min(n, limits.max_queued_items);
    n        = std::min(n, static_cast<size_t>(std::max(1, limits.max_batch_items)));
    return static_cast<uint32_t>(std::max<size_t>(1, n));
}

std::string default_socket_path() {
    const char * xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg) return std::string(xdg) + "/m4/m4fwd.sock";
    return "/run/m4/m4fwd.sock";
}

Result<ServiceConfig> load_service_config(const std::string & path) {
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(path));
    ServiceConfig c;
    try {
        nlohmann::json j = nlohmann::json::parse(text);
        static const std::set<std::string> known = {
            "socket",          "state_dir",           "firmware",         "public_key",          "admin_uid",
            "apps",            "quota_bytes",         "quota_adapters",   "max_queued_items",    "max_pending_per_app",
            "rate_per_app",    "burst_per_app",       "max_batch_items",  "adapter_cache_bytes", "kv_budget_bytes",
            "max_connections", "workers",             "kv_dtype",         "max_connections_per_app",
            "admin_reserved_connections", "frame_timeout_ms", "idle_timeout_ms", "max_output_bytes",
            "max_buffered_input_per_app", "max_queued_input_per_app", "max_inputs_per_request",
            "max_input_file_bytes", "max_firmware_bytes", "prep_threads"};
        for (auto & [k, v] : j.items())
            if (!known.count(k)) return invalid_argument(path + ": unknown key \"" + k + "\"");
        c.socket_path = j.value("socket", "");
        c.state_dir   = j.value("state_dir", "");
        c.firmware    = j.value("firmware", "");
        c.public_key  = j.value("public_key", "");
        c.admin_uid   = j.value("admin_uid", 0u);
        if (j.contains("apps"))
            for (auto & [uid, name] : j["apps"].items()) c.app_names[static_cast<uint32_t>(std::stoul(uid))] = name;
        c.quota.max_bytes            = j.value("quota_bytes", c.quota.max_bytes);
        c.quota.max_count            = j.value("quota_adapters", c.quota.max_count);
        c.limits.max_queued_items    = j.value("max_queued_items", c.limits.max_queued_items);
        c.limits.max_pending_per_app = j.value("max_pending_per_app", c.limits.max_pending_per_app);
        c.limits.rate_per_app        = j.value("rate_per_app", c.limits.rate_per_app);
        c.limits.burst_per_app       = j.value("burst_per_app", c.limits.burst_per_app);
        c.limits.max_batch_items     = j.value("max_batch_items", c.limits.max_batch_items);
        c.adapter_cache_bytes        = j.value("adapter_cache_bytes", c.adapter_cache_bytes);
        c.kv_budget_bytes            = j.value("kv_budget_bytes", c.kv_budget_bytes);
        auto & b                     = c.bounds;
        b.max_connections            = j.value("max_connections", b.max_connections);
        b.max_connections_per_app    = j.value("max_connections_per_app", b.max_connections_per_app);
        b.admin_reserved             = j.value("admin_reserved_connections", b.admin_reserved);
        b.frame_timeout_ms           = j.value("frame_timeout_ms", b.frame_timeout_ms);
        b.idle_timeout_ms            = j.value("idle_timeout_ms", b.idle_timeout_ms);
        b.max_output_bytes           = j.value("max_output_bytes", b.max_output_bytes);
        b.max_buffered_input_per_app = j.value("max_buffered_input_per_app", b.max_buffered_input_per_app);
        b.max_queued_input_per_app   = j.value("max_queued_input_per_app", b.max_queued_input_per_app);
        b.max_inputs_per_request     = j.value("max_inputs_per_request", b.max_inputs_per_request);
        b.max_input_file_bytes       = j.value("max_input_file_bytes", b.max_input_file_bytes);
        b.max_firmware_bytes         = j.value("max_firmware_bytes", b.max_firmware_bytes);
        b.prep_threads               = j.value("prep_threads", b.prep_threads);
        if (b.max_inputs_per_request == 0 || b.max_inputs_per_request > wire::kMaxFdsPerFrame)
            return invalid_argument(path + ": max_inputs_per_request must be 1.." +
                                    std::to_string(wire::kMaxFdsPerFrame));
        if (b.prep_threads == 0 || b.prep_threads > 64) return invalid_argument(path + ": prep_threads must be 1..64");
        const std::string kv_dtype   = j.value("kv_dtype", std::string("f32"));
        if (!parse_dtype(kv_dtype, &c.kv_dtype) || (c.kv_dtype != DType::F32 && c.kv_dtype != DType::BF16))
            return invalid_argument(path + ": kv_dtype \"" + kv_dtype + "\" is not f32 or bf16");
    } catch (const std::exception & e) {
        return invalid_argument(path + ": " + e.what());
    }
    return c;
}

}  // namespace m4::svc
