// m4fwd: one process owns the verified, mapped firmware and serves every app over a Unix socket.
//
// Threads: one event-loop thread (epoll: accept, read frames, write buffered replies, deadlines,
// timeouts, quick requests — hello, adapters, status), the prep pool (reading passed descriptors,
// decoding and tokenising inputs, fair across apps), the scheduler's worker running batched
// inference, and a firmware-install thread when one runs. Nothing an app supplies can block the
// loop: descriptors are only fstat()ed there, replies go through bounded non-blocking output
// buffers (connection.h). Identity comes from SO_PEERCRED only. Limits: config.h, docs/service.md.
//
//     ServiceConfig cfg = …;
//     Daemon d(cfg);
//     M4_RETURN_IF_ERROR(d.start());   // verify firmware, open store, bind socket
//     d.run();                          // until SIGTERM / SIGINT or stop()
#pragma once

#include <atomic>
#include <map>
#include <set>
#include <thread>
#include <vector>
#include <memory>
#include <mutex>
#include <string>

#include "m4.pb.h"
#include "proto/framing.h"
#include "runtime/engine.h"
#include "service/config.h"
#include "service/connection.h"
#include "service/prep.h"
#include "service/scheduler.h"
#include "service/slots.h"
#include "service/store.h"

namespace m4::svc {

// Maps an internal Status onto the protocol's closed status set.
v1::Status to_wire(StatusCode code);

// Per-app usage (GetStatus; docs/service.md "Usage accounting").
struct AppCounters {
    uint64_t requests = 0, items = 0, errors = 0, busy = 0;
    uint64_t prompt_tokens = 0, generated_tokens = 0;
    uint64_t cpu_us             = 0;  // preparing its inputs + its share of the batches it ran in
    uint64_t queue_us           = 0;  // from arrival to the start of its batch, summed over requests
    uint64_t peak_adapter_bytes = 0;  // the app's own adapters held in the adapter cache, at most
    uint64_t peak_kv_bytes      = 0;  // KV cache of one generation request, at most
};

struct InferJob;

class Daemon {
  public:
    explicit Daemon(ServiceConfig config);
    ~Daemon();
    Status start();
    void   run();
    void   stop();  // thread-safe: asks run() to finish (what SIGTERM does)

  private:
    friend struct InferJob;
    // Event loop (server.cpp).
    void accept_all();
    void on_readable(const std::shared_ptr<Connection> & c);
    void serve_frames(const std::shared_ptr<Connection> & c);  // at most a turn's worth
    void check_timeouts(Clock::time_point now);
    void reap_closed();
    void drain_and_close();
    int  next_timeout_ms(Clock::time_point now) const;
    Status lock_socket_path();
    Status open_state_dir();
    std::string scrub(const std::string & message) const;  // no daemon-internal paths to apps

    void dispatch(const std::shared_ptr<Connection> & c, wire::Frame & frame);
    void respond_error(Connection & c, uint64_t id, const Status & st, const std::string & what);
    void log_request(const Connection & c, const char * type, v1::Status st, double ms);

    // One handler per RPC (handlers.cpp); each fills `out` or returns a Status.
    Status handle_hello(Connection & c, const v1::Hello & req, v1::Response * out);
    Status handle_register(Connection & c, const v1::RegisterAdapter & req, v1::Response * out);
    Status handle_list(Connection & c, const v1::ListAdapters & req, v1::Response * out);
    Status handle_remove(Connection & c, const v1::RemoveAdapter & req, v1::Response * out);
    Status handle_status(Connection & c, const v1::GetStatus & req, v1::Response * out);
    Status handle_publish(Connection & c, const v1::PublishAdapter & req, v1::Response * out);
    // Firmware install and rollback run on their own thread (firmware.cpp), one at a time: the
    // loop keeps serving from the active slot meanwhile.
    void   start_firmware_task(const std::shared_ptr<Connection> & c, const v1::Request & req, std::vector<int> fds);
    Status install_firmware(int fd, const std::string & bytes, bool activate, v1::InstallFirmwareReply * r);
    Status rollback_firmware(v1::RollbackReply * r);
    Status load_firmware_at_start();
    // Infer (infer.cpp): cheap checks on the loop, preparation on the prep pool, then the
    // scheduler; run_batch executes one batch on the scheduler's worker.
    void   submit_infer(const std::shared_ptr<Connection> & c, uint64_t id, const v1::Infer & req,
                        std::vector<int> fds);
    void   prepare_job(const std::shared_ptr<InferJob> & job);
    void prepare_job_on_thread(const std::shared_ptr<InferJob> & job);
    void   run_batch(std::vector<std::shared_ptr<Job>> & batch);
    void   expire_deadlines(Clock::time_point now);
    void   finish_job(InferJob & j, const v1::Response & r, const char * what);
    void   account_input(uint32_t uid, int64_t delta);

    std::shared_ptr<runtime::Engine> engine() const;
    Status                           load_active_firmware();
    AppCounters &                    counters(uint32_t uid);
    void                             count(uint32_t uid, uint64_t AppCounters::*field, uint64_t n = 1);
    void count_peak(uint32_t uid, uint64_t AppCounters::*field, uint64_t v);

    ServiceConfig                                    config_;
    AdapterStore                                     store_;
    FirmwareSlots                                    slots_;
    std::unique_ptr<Scheduler>                       scheduler_;
    std::unique_ptr<PrepPool>                        prep_;
    mutable std::mutex                               engine_mu_;
    std::shared_ptr<runtime::Engine>                 engine_;
    std::mutex                                       counters_mu_;
    std::map<uint32_t, AppCounters>                  counters_;
    std::mutex                                       input_mu_;
    std::map<uint32_t, uint64_t>                     queued_input_;  // bytes of inputs held per app
    std::map<int, std::shared_ptr<Connection>>       conns_;         // event-loop thread only
    std::set<int>                                    ready_;         // connections with unserved frames
    std::vector<std::pair<Clock::time_point, std::weak_ptr<InferJob>>> deadlines_;  // min-heap, loop only
    std::thread                                      install_thread_;
    std::atomic<bool>                                installing_{false};
    std::string                                      start_note_;  // e.g. the slot fallback at start-up
    bool                                             dev_key_trusted_ = false;
    int listen_fd_ = -1, epoll_fd_ = -1, wake_fd_ = -1, lock_fd_ = -1, signal_fd_ = -1;
    bool                                             shutting_down_ = false;
    std::atomic<bool>                                stop_{false};
    Clock::time_point                                started_ = Clock::now();
    PublicKey                                        public_key_{};
};

}  // namespace m4::svc
