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

// Bounds on what one app (uid) may make the daemon hold or do; each is a config key of the same
// name (docs/service.md, "Limits"). Every input an app controls is checked against these before
// the daemon spends memory or time on it.
struct ServiceLimits {
    uint32_t max_connections          = 256;      // all apps together (the admin has a reserve)
    uint32_t max_connections_per_app  = 16;       // per uid
    uint32_t admin_reserved           = 8;        // extra connections only the admin uid may use
    uint32_t frame_timeout_ms         = 10000;    // a started frame must complete within this
    uint32_t idle_timeout_ms          = 600000;   // a connection with nothing in flight is closed after
    uint64_t max_output_bytes         = 8ull << 20;    // replies buffered for a client that does not read
    uint64_t max_buffered_input_per_app = 128ull << 20;  // half-read frames, over the app's connections
    uint64_t max_queued_input_per_app = 256ull << 20;  // decoded/encoded inputs of queued requests
    uint32_t max_inputs_per_request   = 64;
    uint64_t max_input_file_bytes     = 32ull << 20;   // one encoded input (image/audio/IMU file)
    uint64_t max_firmware_bytes       = 8ull << 30;
    uint32_t prep_threads             = 2;        // input reading / decoding, off the event loop
};

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
    ServiceLimits                   bounds;      // per-app bounds on connections, inputs, output

    std::string app_name(uint32_t uid) const;
    // Inputs one request may carry: the configured bound, lowered so that such a request can
    // always be admitted (never more than an app's queue share or one batch).
    uint32_t max_inputs() const;
};

std::string default_socket_path();
// Reads a JSON config file; unknown keys are errors (a typo must not silently use a default).
Result<ServiceConfig> load_service_config(const std::string & path);

}  // namespace m4::svc
