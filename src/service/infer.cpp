// Inference requests: admission into the scheduler, then batched execution — every job of a batch
// (any app, any adapter, same path and modality) goes through ONE Model::run / generate call: one
// shared GEMM per base weight, the per-adapter LoRA terms as a segmented gather-matmul.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <numeric>

#include "base/mapped_file.h"
#include "service/daemon.h"

namespace m4::svc {

struct InferJob : Job {
    std::shared_ptr<Connection>              conn;
    std::shared_ptr<runtime::Engine>         engine;   // the firmware the adapter was bound to
    std::shared_ptr<const adapter::Adapter>  adapter;  // null: firmware only
    std::string                              adapter_path;
    model::Path                              path     = model::Path::Encoder;
    model::Modality                          modality = model::Modality::Text;
    bool                                     generate = false;
    model::GenerateOptions                   gen;
    std::vector<runtime::InputSpec>          inputs;
    std::string                              prompt;
};

namespace {

std::string read_fd(int fd) {
    std::string out;
    char        buf[1 << 16];
    ::lseek(fd, 0, SEEK_SET);
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > (256u << 20)) break;
    }
    return out;
}

void fill_result(const adapter::Manifest * m, const model::Output & o, v1::Result * r) {
    if (m && m->task == adapter::Task::Classify) {
        std::vector<float> p(o.head);
        float              mx = *std::max_element(p.begin(), p.end());
        double             s  = 0;
        for (float & v : p) s += v = std::exp(v - mx);
        std::vector<int> idx(p.size());
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return p[a] > p[b]; });
        for (int i : idx) {
            auto * sc = r->add_scores();
            sc->set_label(i < static_cast<int>(m->labels.size()) ? m->labels[i] : "class " + std::to_string(i));
            sc->set_score(static_cast<float>(p[i] / s));
        }
    } else if (m && m->head_type != model::HeadType::None) {
        for (float v : o.head) r->add_values(v);
    } else {
        for (float v : o.embedding) r->add_values(v);
    }
}

}  // namespace

void Daemon::submit_infer(const std::shared_ptr<Connection> & c, uint64_t id, const v1::Infer & req,
                          std::vector<int> fds) {
    auto fail = [&](const Status & st) {
        for (int fd : fds) ::close(fd);
        {
            std::lock_guard<std::mutex> lock(counters_mu_);
            counters(c->uid).errors++;
        }
        respond_error(*c, id, st, "infer");
    };
    auto job    = std::make_shared<InferJob>();
    job->engine = engine();
    // Which adapter: the app's own, or a shared one; never another app's.
    if (!req.adapter().empty()) {
        Result<std::string> p = req.adapter().rfind("shared/", 0) == 0 ? store_.find_shared(req.adapter().substr(7))
                                                                       : store_.find(c->uid, req.adapter());
        if (!p) return fail(p.status());
        auto a = job->engine->adapter(*p);
        if (!a) return fail(a.status());
        job->adapter      = *a;
        job->adapter_path = *p;
    }
    if (req.inputs_size() == 0) return fail(invalid_argument("no inputs"));
    size_t next_fd = 0;
    for (int i = 0; i < req.inputs_size(); ++i) {
        const v1::Input &  in = req.inputs(i);
        runtime::InputSpec spec;
        spec.name = "input " + std::to_string(i);
        if (in.value_case() == v1::Input::kText) {
            spec.modality = model::Modality::Text;
            spec.text     = in.text();
        } else {
            if (!model::parse_modality(in.modality(), &spec.modality) || spec.modality == model::Modality::Text)
                return fail(invalid_argument(spec.name + ": \"modality\" must be image, audio or imu"));
            if (in.value_case() == v1::Input::kSignal) spec.signal.assign(in.signal().values().begin(), in.signal().values().end());
            else if (in.value_case() == v1::Input::kEncoded) spec.encoded = in.encoded();
            else if (in.value_case() == v1::Input::kFdAttached) {
                if (next_fd >= fds.size()) return fail(invalid_argument(spec.name + ": no descriptor attached"));
                spec.encoded = read_fd(fds[next_fd++]);
            } else {
                return fail(invalid_argument(spec.name + ": empty input"));
            }
        }
        job->inputs.push_back(std::move(spec));
    }
    for (int fd : fds) ::close(fd);
    fds.clear();
    const adapter::Manifest * m = job->adapter ? &job->adapter->manifest() : nullptr;
    job->modality               = m ? m->modality : job->inputs[0].modality;
    for (const auto & in : job->inputs)
        if (in.modality != job->modality)
            return fail(invalid_argument(in.name + ": all inputs of a request must share one modality"));
    if (m) {
        job->path = m->path;
    } else if (req.path() != v1::PATH_UNSPECIFIED) {
        job->path = static_cast<model::Path>(req.path() - 1);
    } else {
        job->path = job->modality == model::Modality::Text ? model::Path::Backbone : model::Path::Encoder;
    }
    if ((job->path == model::Path::Backbone) != (job->modality == model::Modality::Text))
        return fail(invalid_argument(std::string("the ") + model::path_name(job->path) + " path cannot take " +
                                     model::modality_name(job->modality) + " input"));
    job->generate = job->path != model::Path::Encoder && (!m || m->task == adapter::Task::Generate);
    job->gen      = m ? m->generation : model::GenerateOptions{};
    if (req.max_new_tokens()) job->gen.max_new_tokens = static_cast<int>(req.max_new_tokens());
    if (req.temperature() > 0) job->gen.temperature = req.temperature();
    if (req.top_k()) job->gen.top_k = static_cast<int>(req.top_k());
    if (req.top_p() > 0) job->gen.top_p = req.top_p();
    job->gen.seed     = req.seed();
    job->gen.kv_dtype = config_.kv_dtype;
    job->prompt   = req.prompt();
    if (job->generate) {
        const auto & bc  = job->engine->model().config().backbone;
        uint64_t     kv  = 2ull * bc.layers * bc.max_seq * bc.kv_heads * bc.head_dim() *
                      dtype_size(config_.kv_dtype) * job->inputs.size();
        if (kv > config_.kv_budget_bytes)
            return fail(resource_exhausted("generation needs up to " + std::to_string(kv >> 20) +
                                           " MiB of KV cache, the budget is " + std::to_string(config_.kv_budget_bytes >> 20) +
                                           " MiB"));
    }
    job->id        = id;
    job->uid       = c->uid;
    job->priority  = req.priority() == v1::PRIORITY_BACKGROUND ? 1 : 0;
    job->items     = static_cast<int>(job->inputs.size());
    job->conn      = c;
    if (req.deadline_ms()) job->deadline = job->arrival + std::chrono::milliseconds(req.deadline_ms());
    // Same path + modality (+ generation settings) may share one forward pass.
    job->batch_key = fmt::format("{}/{}/{}", model::path_name(job->path), model::modality_name(job->modality),
                                 job->generate ? fmt::format("gen:{}:{}:{}:{}", job->gen.max_new_tokens,
                                                             job->gen.temperature, job->gen.top_k, job->gen.top_p)
                                               : "run");
    std::weak_ptr<Connection> weak = c;
    job->on_dropped                = [this, weak, id](JobEnd why) {
        auto conn = weak.lock();
        if (!conn) return;
        v1::Response r;
        r.set_id(id);
        r.set_status(why == JobEnd::Expired ? v1::STATUS_DEADLINE_EXCEEDED : v1::STATUS_CANCELLED);
        r.set_message(why == JobEnd::Expired     ? "infer: the deadline passed before the request ran"
                      : why == JobEnd::Cancelled ? "infer: cancelled"
                                                 : "infer: cancelled, the daemon is shutting down");
        conn->send(r);
        log_request(*conn, "infer", r.status(), 0);
    };
    Admission adm = scheduler_->submit(job);
    if (!adm.ok) {
        {
            std::lock_guard<std::mutex> lock(counters_mu_);
            counters(c->uid).busy++;
        }
        v1::Response r;
        r.set_id(id);
        r.set_status(v1::STATUS_BUSY);
        r.set_retry_after_ms(adm.retry_after_ms);
        r.set_message("infer: busy: " + adm.reason);
        c->send(r);
        log_request(*c, "infer", r.status(), 0);
        return;
    }
    if (c->pending.size() > 256)
        for (auto it = c->pending.begin(); it != c->pending.end();) it = it->second.expired() ? c->pending.erase(it) : ++it;
    c->pending[id] = job;
}

void Daemon::run_batch(std::vector<std::shared_ptr<Job>> & batch) {
    auto                                 t0 = Clock::now();
    auto                                 e  = engine();
    std::vector<std::shared_ptr<InferJob>> jobs;
    std::vector<model::Request>          items;
    std::vector<size_t>                  first;
    auto answer_error = [&](InferJob & j, const Status & st) {
        {
            std::lock_guard<std::mutex> lock(counters_mu_);
            counters(j.uid).errors++;
        }
        respond_error(*j.conn, j.id, st, "infer");
    };
    for (auto & b : batch) {
        auto j = std::static_pointer_cast<InferJob>(b);
        // The firmware switched since admission: bind the adapter again (or refuse it).
        if (j->engine != e) {
            j->engine = e;
            if (j->adapter) {
                auto a = e->adapter(j->adapter_path);
                if (!a) {
                    answer_error(*j, a.status());
                    continue;
                }
                j->adapter = *a;
            }
        }
        const adapter::Manifest * m = j->adapter ? &j->adapter->manifest() : nullptr;
        std::vector<model::Request> mine;
        Status                      st;
        for (const auto & in : j->inputs) {
            auto r = runtime::prepare_item(e->model(), j->path, m, in, j->prompt);
            if (!r) {
                st = r.status();
                break;
            }
            r->adapter = j->adapter ? &j->adapter->weights() : nullptr;
            mine.push_back(std::move(r).value());
        }
        if (!st.is_ok() || !(st = e->model().validate(j->path, j->modality, mine)).is_ok()) {
            answer_error(*j, st);
            continue;
        }
        first.push_back(items.size());
        for (auto & r : mine) items.push_back(std::move(r));
        jobs.push_back(j);
    }
    if (jobs.empty()) return;
    const auto &       head = *jobs[0];
    std::vector<model::Output>     outs;
    std::vector<model::Generation> gens;
    Status                         st;
    if (head.generate) {
        auto g = e->model().generate(head.path, head.modality, items, head.gen);
        if (g) gens = std::move(g).value();
        else st = g.status();
    } else {
        auto o = e->model().run(head.path, head.modality, items);
        if (o) outs = std::move(o).value();
        else st = o.status();
    }
    const double run_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    for (size_t k = 0; k < jobs.size(); ++k) {
        InferJob & j = *jobs[k];
        if (!st.is_ok()) {
            answer_error(j, st);
            continue;
        }
        v1::Response r;
        r.set_id(j.id);
        r.set_status(v1::STATUS_OK);
        auto * rep = r.mutable_infer();
        rep->set_batch_rows(static_cast<uint32_t>(items.size()));
        rep->set_queue_ms(static_cast<float>(std::chrono::duration<double, std::milli>(t0 - j.arrival).count()));
        rep->set_run_ms(static_cast<float>(run_ms));
        const adapter::Manifest * m = j.adapter ? &j.adapter->manifest() : nullptr;
        for (size_t i = 0; i < j.inputs.size(); ++i) {
            auto * res = rep->add_results();
            if (head.generate) {
                res->set_text(gens[first[k] + i].text);
                for (int32_t t : gens[first[k] + i].tokens) res->add_tokens(t);
            } else {
                fill_result(m, outs[first[k] + i], res);
            }
        }
        {
            std::lock_guard<std::mutex> lock(counters_mu_);
            counters(j.uid).items += j.inputs.size();
        }
        j.conn->send(r);
        log_request(*j.conn, "infer", v1::STATUS_OK,
                    std::chrono::duration<double, std::milli>(Clock::now() - j.arrival).count());
    }
}

}  // namespace m4::svc
