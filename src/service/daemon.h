// m4fwd: one process owns the verified, mapped firmware and serves every app over a Unix socket.
//
// Threads: one event-loop thread (epoll: accept, read frames, answer quick requests — hello,
// adapters, status, firmware), and the scheduler's worker running batched inference. Replies to a
// connection are serialised by its write mutex. Identity comes from SO_PEERCRED only.
//
//     ServiceConfig cfg = …;
//     Daemon d(cfg);
//     M4_RETURN_IF_ERROR(d.start());   // verify firmware, open store, bind socket
//     d.run();                          // until SIGTERM / SIGINT or stop()
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "m4.pb.h"
#include "proto/framing.h"
#include "runtime/engine.h"
#include "service/config.h"
#include "service/scheduler.h"
#include "service/slots.h"
#include "service/store.h"

namespace m4::svc {

// Maps an internal Status onto the protocol's closed status set.
v1::Status to_wire(StatusCode code);

struct Connection {
    int                     fd  = -1;
    uint32_t                uid = 0;
    int32_t                 pid = 0;
    std::string             app;
    wire::FrameReader       reader;
    std::mutex              write_mu;
    std::atomic<bool>       open{true};
    std::map<uint64_t, std::weak_ptr<Job>> pending;  // for Cancel (event-loop thread only)
    void send(const v1::Response & r);
};

struct AppCounters {
    uint64_t requests = 0, items = 0, errors = 0, busy = 0;
};

class Daemon {
  public:
    explicit Daemon(ServiceConfig config);
    ~Daemon();
    Status start();
    void   run();
    void   stop();  // thread-safe: asks run() to finish (what SIGTERM does)

  private:
    friend struct InferJob;
    void on_readable(const std::shared_ptr<Connection> & c);
    void dispatch(const std::shared_ptr<Connection> & c, wire::Frame & frame);
    void respond_error(Connection & c, uint64_t id, const Status & st, const std::string & what);
    void log_request(const Connection & c, const char * type, v1::Status st, double ms);

    // One handler per RPC (handlers.cpp); each fills `out` or returns a Status.
    Status handle_hello(Connection & c, const v1::Hello & req, v1::Response * out);
    Status handle_register(Connection & c, const v1::RegisterAdapter & req, v1::Response * out);
    Status handle_list(Connection & c, const v1::ListAdapters & req, v1::Response * out);
    Status handle_remove(Connection & c, const v1::RemoveAdapter & req, v1::Response * out);
    Status handle_status(Connection & c, const v1::GetStatus & req, v1::Response * out);
    Status handle_install(Connection & c, const v1::InstallFirmware & req, v1::Response * out);
    Status handle_rollback(Connection & c, const v1::Rollback & req, v1::Response * out);
    Status handle_publish(Connection & c, const v1::PublishAdapter & req, v1::Response * out);
    // Infer is admitted to the scheduler (infer.cpp); false = answered already (error or BUSY).
    void   submit_infer(const std::shared_ptr<Connection> & c, uint64_t id, const v1::Infer & req,
                        std::vector<int> fds);
    void   run_batch(std::vector<std::shared_ptr<Job>> & batch);

    std::shared_ptr<runtime::Engine> engine() const;
    Status                           load_active_firmware();
    AppCounters &                    counters(uint32_t uid);

    ServiceConfig                                    config_;
    AdapterStore                                     store_;
    FirmwareSlots                                    slots_;
    std::unique_ptr<Scheduler>                       scheduler_;
    mutable std::mutex                               engine_mu_;
    std::shared_ptr<runtime::Engine>                 engine_;
    std::mutex                                       counters_mu_;
    std::map<uint32_t, AppCounters>                  counters_;
    std::map<int, std::shared_ptr<Connection>>       conns_;
    int                                              listen_fd_ = -1, epoll_fd_ = -1, wake_fd_ = -1;
    std::atomic<bool>                                stop_{false};
    Clock::time_point                                started_ = Clock::now();
    PublicKey                                        public_key_{};
};

}  // namespace m4::svc
