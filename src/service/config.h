// m4fwd configuration: where it listens and keeps state, who is admin, app names, quotas and budgets.
// Read from a JSON file (see docs/service.md) and overridden by command-line flags.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "base/status.h"
#include "service/scheduler.h"
#include "service/store.h"
#include "tensor/dtype.h"

namespace m4::svc {

struct ServiceConfig {
    std::string                     socket_path;  // default: $XDG_RUNTIME_DIR/m4/m4fwd.sock, else /run/m4/m4fwd.sock
    std::string                     state_dir;    // default: /var/lib/m4
    std::string                     firmware;     // installed into slot a when the state has no firmware yet
    std::string                     public_key;   // when set, every firmware must be signed by this key
    uint32_t                        admin_uid = 0;
    std::map<uint32_t, std::string> app_names;    // uid → app name (others are "uid<N>")
    StoreQuota                      quota;
    SchedulerLimits                 limits;
    uint64_t                        adapter_cache_bytes = 256ull << 20;
    uint64_t                        kv_budget_bytes     = 256ull << 20;  // KV cache of one generation request
    DType                           kv_dtype            = DType::F32;    // KV cache storage: f32 or bf16
    uint32_t                        max_connections     = 256;

    std::string app_name(uint32_t uid) const;
};

std::string default_socket_path();
// Reads a JSON config file; unknown keys are errors (a typo must not silently use a default).
Result<ServiceConfig> load_service_config(const std::string & path);

}  // namespace m4::svc
