#include "service/config.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <set>

#include "base/mapped_file.h"

namespace m4::svc {

std::string ServiceConfig::app_name(uint32_t uid) const {
    auto it = app_names.find(uid);
    return it != app_names.end() ? it->second : "uid" + std::to_string(uid);
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
            "max_connections", "workers",             "kv_dtype"};
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
        c.max_connections            = j.value("max_connections", c.max_connections);
        const std::string kv_dtype   = j.value("kv_dtype", std::string("f32"));
        if (!parse_dtype(kv_dtype, &c.kv_dtype) || (c.kv_dtype != DType::F32 && c.kv_dtype != DType::BF16))
            return invalid_argument(path + ": kv_dtype \"" + kv_dtype + "\" is not f32 or bf16");
    } catch (const std::exception & e) {
        return invalid_argument(path + ": " + e.what());
    }
    return c;
}

}  // namespace m4::svc
