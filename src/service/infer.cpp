// Inference requests, in three stages:
//   1. submit_infer (event loop): cheap checks only — input count, sizes from the frame and from
//      fstat() of passed descriptors (regular files only), the app's queued-input quota, a
//      reservation in the scheduler (BUSY when full). Nothing here reads or decodes.
//   2. prepare_job (prep pool, fair across apps): reads the descriptors (pread, bounded by the size
//      checked), loads the adapter, decodes / tokenises, validates, then queues the job.
//   3. run_batch (scheduler worker): every job of a batch (any app, any adapter, same path and
//      modality) goes through ONE Model::run / generate call: one shared GEMM per base weight, the
//      per-adapter LoRA terms as a segmented gather-matmul.
// Each request is answered exactly once (InferJob::state): by its result, its error, its deadline
// (at the deadline, by the event loop, if it has not started), a cancel, or shutdown.
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>
#include <numeric>

#include "base/mapped_file.h"
#include "proto/framing.h"
#include "runtime/audio_out.h"
#include "runtime/images.h"
#include "runtime/inputs.h"
#include "service/daemon.h"

namespace m4::svc {

struct InferJob : Job {
    enum State : int { Waiting = 0, Running = 1, Answered = 2 };
    std::atomic<int> state{Waiting};
    std::atomic<bool> reserved{false};     // holds a scheduler reservation
    std::atomic<uint64_t> input_bytes{0};  // counted in the app's queued input
    std::shared_ptr<Connection> conn;
    std::shared_ptr<runtime::Engine> engine;          // the firmware the inputs were prepared for
    std::shared_ptr<const adapter::Adapter> adapter;  // null: firmware only
    std::string adapter_name;
    model::Path path         = model::Path::Encoder;
    model::Modality modality = model::Modality::Text;
    v1::Path requested_path  = v1::PATH_UNSPECIFIED;
    bool generate            = false;
    model::GenerationOverrides overrides;  // the request's values (checked on the loop)
    model::GenerateOptions gen;            // the adapter's defaults with the overrides
    std::vector<runtime::InputSpec> inputs;
    std::vector<int> fds;                  // per input: a passed descriptor or -1 (owned)
    std::vector<uint64_t> fd_bytes;        // its size when it was checked
    std::vector<model::Request> prepared;  // the inputs as the model takes them
    std::string prompt;
    ~InferJob() override {
        for (int fd : fds)
            if (fd >= 0) ::close(fd);
    }
};

namespace {

void fill_result(const adapter::Manifest * m, const model::Output & o, v1::Result * r) {
    if (m && m->task == adapter::Task::Classify) {
        std::vector<float> p(o.head);
        float mx = *std::max_element(p.begin(), p.end());
        double s = 0;
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

// The most bytes stb's PNG writer gives for an S×S RGB image: each filtered row (1 + 3S bytes) as
// fixed-Huffman literals of at most 9 bits, plus the chunks and zlib framing.
uint64_t max_png_bytes(uint64_t S) {
    return S * (3 * S + 1) * 9 / 8 + 1024;
}

// The generator path's output: the decoder's image, encoded once straight into the reply.
Status fill_image(const model::Output & o, v1::Result * r) {
    auto * im = r->mutable_image();
    im->set_width(static_cast<uint32_t>(o.image_size));
    im->set_height(static_cast<uint32_t>(o.image_size));
    return runtime::encode_png(o.image.data(), o.image_size, o.image_size, im->mutable_png());
}

// The generator path over text: the speech decoder's waveform, encoded once as WAV into the reply.
Status fill_audio(const model::Output & o, v1::Result * r) {
    auto * au = r->mutable_audio();
    au->set_sample_rate(static_cast<uint32_t>(o.audio_rate));
    au->set_samples(static_cast<uint64_t>(o.audio.size()));
    return runtime::encode_wav(o.audio.data(), static_cast<int64_t>(o.audio.size()), o.audio_rate, au->mutable_wav());
}

// Reads a passed regular file: exactly the `size` bytes checked on the loop, by pread (the
// sender's file offset is not moved); a file that shrank since is an error, growth is ignored.
Result<std::string> read_descriptor(int fd, uint64_t size, const std::string & name) {
    std::string out(size, '\0');
    uint64_t off = 0;
    while (off < size) {
        ssize_t n = ::pread(fd, out.data() + off, size - off, static_cast<off_t>(off));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return invalid_argument(name + ": the descriptor cannot be read");
        if (n == 0) return invalid_argument(name + ": the file shrank while it was queued");
        off += static_cast<uint64_t>(n);
    }
    return out;
}

// The request's generation settings: the values present, checked against the firmware before the
// request costs anything (bounds: model/sampler.h).
Result<model::GenerationOverrides> wire_overrides(const v1::Infer & req, const model::ModelConfig & mc) {
    model::GenerationOverrides o;
    auto as_int = [](uint32_t v) { return static_cast<int>(std::min<uint32_t>(v, INT32_MAX)); };
    if (req.max_new_tokens()) o.max_new_tokens = as_int(req.max_new_tokens());
    if (req.has_temperature()) o.temperature = req.temperature();
    if (req.has_top_k()) o.top_k = as_int(req.top_k());
    if (req.has_top_p()) o.top_p = req.top_p();
    if (req.has_seed()) o.seed = req.seed();
    if (req.stop_size() > static_cast<int>(model::kMaxStopStrings))
        return invalid_argument("request: " + std::to_string(req.stop_size()) + " stop strings; at most " +
                                std::to_string(model::kMaxStopStrings));
    if (req.stop_size()) o.stop = std::vector<std::string>(req.stop().begin(), req.stop().end());
    M4_RETURN_IF_ERROR(model::check_overrides(o, mc.text.vocab_size, mc.backbone.max_seq, "request"));
    // Constrained output: syntax and sizes here; the vocabulary check when it is compiled (prep).
    if (req.choices_size() && !req.json_schema().empty())
        return invalid_argument("request: choices and json_schema cannot be combined");
    if (req.choices_size() > static_cast<int>(model::kMaxLiterals))
        return invalid_argument("request: " + std::to_string(req.choices_size()) + " choices; at most " +
                                std::to_string(model::kMaxLiterals));
    if (req.choices_size()) {
        o.choices.assign(req.choices().begin(), req.choices().end());
        M4_RETURN_IF_ERROR(model::TokenConstraint::check_choices(o.choices).with_context("request"));
    }
    if (!req.json_schema().empty()) {
        M4_RETURN_IF_ERROR(model::TokenConstraint::check_schema(req.json_schema()).with_context("request"));
        o.json_schema = req.json_schema();
    }
    return o;
}

v1::Response error_response(uint64_t id, const Status & st, const std::string & message) {
    v1::Response r;
    r.set_id(id);
    r.set_status(to_wire(st.code()));
    r.set_message(message);
    return r;
}

}  // namespace

void Daemon::count(uint32_t uid, uint64_t AppCounters::*field, uint64_t n) {
    std::lock_guard<std::mutex> lock(counters_mu_);
    counters(uid).*field += n;
}

void Daemon::count_peak(uint32_t uid, uint64_t AppCounters::*field, uint64_t v) {
    std::lock_guard<std::mutex> lock(counters_mu_);
    uint64_t & peak = counters(uid).*field;
    peak            = std::max(peak, v);
}

void Daemon::account_input(uint32_t uid, int64_t delta) {
    std::lock_guard<std::mutex> lock(input_mu_);
    uint64_t & v = queued_input_[uid];
    v = delta < 0 ? v - std::min<uint64_t>(v, static_cast<uint64_t>(-delta)) : v + static_cast<uint64_t>(delta);
}

void Daemon::finish_job(InferJob & j, const v1::Response & r, const char * what) {
    // Only the caller that moved the job to Answered gets here (see answer_if_waiting below).
    if (j.reserved.exchange(false)) scheduler_->release(j.uid, j.items);
    account_input(j.uid, -static_cast<int64_t>(j.input_bytes.exchange(0)));
    for (int & fd : j.fds)
        if (fd >= 0) ::close(fd), fd = -1;
    if (r.status() != v1::STATUS_OK)
        count(j.uid, r.status() == v1::STATUS_BUSY ? &AppCounters::busy : &AppCounters::errors);
    j.conn->send(r);
    j.conn->in_flight--;
    log_request(*j.conn, what, r.status(), std::chrono::duration<double, std::milli>(Clock::now() - j.arrival).count());
}

namespace {
// Answers a job that has not started; false when it already ran or was answered.
bool answer_if_waiting(Daemon * d, InferJob & j, const v1::Response & r,
                       void (Daemon::*finish)(InferJob &, const v1::Response &, const char *)) {
    int expected = InferJob::Waiting;
    if (!j.state.compare_exchange_strong(expected, InferJob::Answered)) return false;
    (d->*finish)(j, r, "infer");
    return true;
}
}  // namespace

void Daemon::submit_infer(const std::shared_ptr<Connection> & c, uint64_t id, const v1::Infer & req,
                          std::vector<int> fds) {
    auto refuse = [&](const Status & st) {
        for (int fd : fds) ::close(fd);
        count(c->uid, st.code() == StatusCode::Ok ? &AppCounters::busy : &AppCounters::errors);
        respond_error(*c, id, st, "infer");
    };
    const auto & b = config_.bounds;
    auto e         = engine();
    const int n    = req.inputs_size();
    if (n == 0) return refuse(invalid_argument("no inputs"));
    if (static_cast<uint32_t>(n) > config_.max_inputs())
        return refuse(invalid_argument(std::to_string(n) + " inputs in one request; the limit is " +
                                       std::to_string(config_.max_inputs()) + " (send several requests)"));
    int attached = 0;
    for (const auto & in : req.inputs()) attached += in.value_case() == v1::Input::kFdAttached;
    if (static_cast<size_t>(attached) != fds.size())
        return refuse(invalid_argument(std::to_string(attached) + " inputs are marked fd_attached but " +
                                       std::to_string(fds.size()) + " descriptors came with the request"));
    auto job          = std::make_shared<InferJob>();
    job->engine       = e;
    job->adapter_name = req.adapter();
    job->fds.assign(static_cast<size_t>(n), -1);
    job->fd_bytes.assign(static_cast<size_t>(n), 0);
    uint64_t bytes = req.prompt().size() + job->overrides.json_schema.size();
    for (const auto & s : job->overrides.choices) bytes += s.size();
    size_t next_fd                = 0;
    const model::ModelConfig & mc = e->model().config();
    M4_CHECK(mc.backbone.max_seq >= 0);
    auto overrides = wire_overrides(req, mc);
    if (!overrides) return refuse(overrides.status());
    job->overrides = std::move(overrides).value();
    // An unknown path number (proto3 keeps any value) is refused here, before it is cast.
    if (!v1::Path_IsValid(req.path()))
        return refuse(invalid_argument("request: path " + std::to_string(static_cast<int>(req.path())) +
                                       " is not encoder, backbone, full or generator"));
    const bool to_decoder = req.path() == v1::PATH_GENERATOR;
    if (to_decoder && !mc.has_decoder(model::Modality::Image) && !mc.has_decoder(model::Modality::Audio))
        return refuse(
            incompatible("request: the generator path needs an image decoder; the firmware has none "
                         "(\"decoders.image\", nor a speech decoder \"decoders.speech\")"));
    for (int i = 0; i < n; ++i) {
        const v1::Input & in = req.inputs(i);
        runtime::InputSpec spec;
        spec.name = "input " + std::to_string(i);
        if (in.value_case() == v1::Input::kText) {
            spec.modality = model::Modality::Text;
            if (to_decoder) {  // text on path 4: the speech decoder's characters
                if (!mc.speech_decoder)
                    return refuse(incompatible(spec.name + ": the generator path over text needs a speech decoder; "
                                                           "the firmware has none (\"decoders.speech\")"));
                auto ids = model::speech_symbols(*mc.speech_decoder, in.text());
                if (!ids) return refuse(ids.status().with_context(spec.name));
            }
            Status st = to_decoder ? Status::ok() : runtime::check_text_length(e->model(), in.text(), spec.name);
            if (!st.is_ok()) return refuse(st);
            spec.text = in.text();
            bytes += spec.text.size();
            job->inputs.push_back(std::move(spec));
            continue;
        }
        if (!model::parse_modality(in.modality(), &spec.modality) || spec.modality == model::Modality::Text)
            return refuse(invalid_argument(spec.name + ": \"modality\" must be image, audio or imu"));
        // An image goes to the image decoder on the generator path (asked for, or — with an
        // adapter, known only once it is loaded — when the firmware has only the decoder).
        const bool decoder_input = spec.modality == model::Modality::Image && mc.has_decoder(spec.modality) &&
                                   (to_decoder || !mc.has_encoder(spec.modality));
        if (!decoder_input && !mc.has_encoder(spec.modality))
            return refuse(
                incompatible(spec.name + ": the firmware has no " + model::modality_name(spec.modality) + " encoder"));
        const auto & ec          = decoder_input ? *mc.image_decoder : mc.encoder(spec.modality);
        const uint64_t max_bytes = runtime::max_encoded_bytes(ec, b.max_input_file_bytes);
        // Until its adapter is loaded, an image without a path may be for the encoder or the decoder:
        // the larger bound here, the exact size when it is prepared.
        int64_t max_values = ec.input_values();
        if (spec.modality == model::Modality::Image && mc.has_decoder(spec.modality) &&
            req.path() == v1::PATH_UNSPECIFIED)
            max_values = std::max(max_values, mc.image_decoder->input_values());
        if (in.value_case() == v1::Input::kSignal) {
            if (in.signal().values_size() > max_values)
                return refuse(invalid_argument(spec.name + ": " + std::to_string(in.signal().values_size()) +
                                               " values; the " + model::modality_name(spec.modality) +
                                               (decoder_input ? " decoder" : " encoder") + " takes at most " +
                                               std::to_string(max_values)));
            spec.signal.assign(in.signal().values().begin(), in.signal().values().end());
            bytes += spec.signal.size() * sizeof(float);
        } else if (in.value_case() == v1::Input::kEncoded) {
            if (in.encoded().size() > max_bytes)
                return refuse(invalid_argument(spec.name + ": " + std::to_string(in.encoded().size()) + " bytes; a " +
                                               model::modality_name(spec.modality) + " input is at most " +
                                               std::to_string(max_bytes) + " bytes"));
            spec.encoded = in.encoded();
            bytes += spec.encoded.size();
        } else if (in.value_case() == v1::Input::kFdAttached) {
            // Only a regular file can be read without blocking on its owner; its size is checked
            // here, it is read later on the prep pool.
            int fd = fds[next_fd];
            struct stat st {};
            if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
                return refuse(invalid_argument(spec.name + ": the descriptor is not a regular file (pipes, "
                                                           "sockets and devices are refused)"));
            if (static_cast<uint64_t>(st.st_size) > max_bytes)
                return refuse(invalid_argument(spec.name + ": the file has " + std::to_string(st.st_size) +
                                               " bytes; a " + model::modality_name(spec.modality) +
                                               " input is at most " + std::to_string(max_bytes) + " bytes"));
            job->fds[i]      = fd;
            job->fd_bytes[i] = static_cast<uint64_t>(st.st_size);
            fds[next_fd++]   = -1;  // owned by the job now
            bytes += job->fd_bytes[i];
        } else {
            return refuse(invalid_argument(spec.name + ": empty input"));
        }
        job->inputs.push_back(std::move(spec));
    }
    fds.clear();
    // Input held for queued requests is bounded per app: a request that alone exceeds the bound
    // can never run; one that exceeds it with the app's other queued inputs waits its turn.
    if (bytes > b.max_queued_input_per_app)
        return refuse(invalid_argument("the request's inputs take " + std::to_string(bytes) +
                                       " bytes; an app may queue at most " +
                                       std::to_string(b.max_queued_input_per_app)));
    {
        std::lock_guard<std::mutex> lock(input_mu_);
        uint64_t & held = queued_input_[c->uid];
        if (held + bytes > b.max_queued_input_per_app) {
            v1::Response r;
            r.set_id(id);
            r.set_status(v1::STATUS_BUSY);
            r.set_retry_after_ms(100);
            r.set_message("infer: busy: this app's queued requests already hold " + std::to_string(held) +
                          " bytes of input");
            c->send(r);
            count(c->uid, &AppCounters::busy);
            log_request(*c, "infer", r.status(), 0);
            return;
        }
        held += bytes;
    }
    job->input_bytes = bytes;
    Admission adm    = scheduler_->reserve(c->uid, n);
    if (!adm.ok) {
        account_input(c->uid, -static_cast<int64_t>(job->input_bytes.exchange(0)));
        v1::Response r;
        r.set_id(id);
        r.set_status(v1::STATUS_BUSY);
        r.set_retry_after_ms(adm.retry_after_ms);
        r.set_message("infer: busy: " + adm.reason);
        c->send(r);
        count(c->uid, &AppCounters::busy);
        log_request(*c, "infer", r.status(), 0);
        return;
    }
    job->reserved       = true;
    job->requested_path = req.path();
    job->prompt         = req.prompt();
    job->id             = id;
    job->uid            = c->uid;
    job->priority       = req.priority() == v1::PRIORITY_BACKGROUND ? 1 : 0;
    job->items          = n;
    job->conn           = c;
    if (req.deadline_ms()) {
        job->deadline = job->arrival + std::chrono::milliseconds(req.deadline_ms());
        deadlines_.emplace_back(job->deadline, job);
        std::push_heap(deadlines_.begin(), deadlines_.end(), [](auto & a, auto & b) { return a.first > b.first; });
    }
    std::weak_ptr<Connection> weak = c;
    job->on_dropped                = [this, weak, raw = job.get()](JobEnd why) {
        v1::Response r;
        r.set_id(raw->id);
        r.set_status(why == JobEnd::Expired ? v1::STATUS_DEADLINE_EXCEEDED : v1::STATUS_CANCELLED);
        r.set_message(why == JobEnd::Expired     ? "infer: the deadline passed before the request ran"
                                     : why == JobEnd::Cancelled ? "infer: cancelled"
                                                                : "infer: cancelled, the daemon is shutting down");
        answer_if_waiting(this, *raw, r, &Daemon::finish_job);
    };
    c->in_flight++;
    if (c->pending.size() > 256)
        for (auto it = c->pending.begin(); it != c->pending.end();)
            it = it->second.expired() ? c->pending.erase(it) : ++it;
    c->pending[id] = job;
    prep_->submit(c->uid, {[this, job] { prepare_job(job); }, [job] { job->on_dropped(JobEnd::Shutdown); }});
}

void Daemon::expire_deadlines(Clock::time_point now) {
    auto later = [](auto & a, auto & b) { return a.first > b.first; };
    while (!deadlines_.empty() && deadlines_.front().first <= now) {
        std::pop_heap(deadlines_.begin(), deadlines_.end(), later);
        auto job = deadlines_.back().second.lock();
        deadlines_.pop_back();
        if (!job) continue;
        job->cancelled.store(true);  // the scheduler and the prep pool skip it from now on
        job->on_dropped(JobEnd::Expired);
    }
}

namespace {
uint64_t cpu_now_us(clockid_t clock) {
    timespec ts{};
    ::clock_gettime(clock, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}
}  // namespace

void Daemon::prepare_job(const std::shared_ptr<InferJob> & job) {
    // The prep thread's CPU time for this request is the app's (decoding, tokenising, loading).
    const uint64_t cpu0 = cpu_now_us(CLOCK_THREAD_CPUTIME_ID);
    prepare_job_on_thread(job);
    count(job->uid, &AppCounters::cpu_us, cpu_now_us(CLOCK_THREAD_CPUTIME_ID) - cpu0);
}

void Daemon::prepare_job_on_thread(const std::shared_ptr<InferJob> & job) {
    InferJob & j = *job;
    if (j.state.load() != InferJob::Waiting) return;
    if (j.cancelled.load()) return j.on_dropped(JobEnd::Cancelled);
    auto fail = [&](const Status & st) {
        answer_if_waiting(this, j, error_response(j.id, st, scrub("infer: " + st.message())), &Daemon::finish_job);
    };
    auto e = j.engine;
    // Which adapter: the app's own, or a shared one; never another app's.
    if (!j.adapter_name.empty()) {
        Result<std::string> p = j.adapter_name.rfind("shared/", 0) == 0 ? store_.find_shared(j.adapter_name.substr(7))
                                                                        : store_.find(j.uid, j.adapter_name);
        if (!p) return fail(p.status());
        auto a = e->adapter(*p);
        if (!a) return fail(a.status());
        j.adapter = *a;
        // Memory held for this app's own adapters (shared ones belong to no app).
        if (j.adapter_name.rfind("shared/", 0) != 0)
            count_peak(j.uid, &AppCounters::peak_adapter_bytes,
                       e->adapter_cache_bytes(p->substr(0, p->rfind('/') + 1)));
    }
    for (size_t i = 0; i < j.fds.size(); ++i) {
        if (j.fds[i] < 0) continue;
        auto bytes = read_descriptor(j.fds[i], j.fd_bytes[i], j.inputs[i].name);
        ::close(j.fds[i]);
        j.fds[i] = -1;
        if (!bytes) return fail(bytes.status());
        j.inputs[i].encoded = std::move(bytes).value();
    }
    const adapter::Manifest * m = j.adapter ? &j.adapter->manifest() : nullptr;
    if (m) {
        // An adapter's output kind must be the one the request asks for: an image-output adapter on
        // a text path, or a text adapter on the generator path, is refused by name.
        const std::string what = "adapter " + j.adapter_name + " (" + adapter::output_kind_name(m->output) +
                                 " output, " + model::path_name(m->path) + " path)";
        const bool gen_asked = j.requested_path == v1::PATH_GENERATOR;
        if (j.requested_path != v1::PATH_UNSPECIFIED && gen_asked != (m->path == model::Path::Generator))
            return fail(incompatible(what + " cannot serve a request on the " +
                                     model::path_name(static_cast<model::Path>(j.requested_path - 1)) + " path"));
        // An image-output adapter on the full path (text → the image decoder) serves that path only.
        if (j.requested_path != v1::PATH_UNSPECIFIED && m->output == adapter::OutputKind::Image &&
            static_cast<model::Path>(j.requested_path - 1) != m->path)
            return fail(incompatible(what + " cannot serve a request on the " +
                                     model::path_name(static_cast<model::Path>(j.requested_path - 1)) + " path"));
        // An audio-output adapter (the speech decoder) reads text.
        const model::Modality wants = m->output == adapter::OutputKind::Audio ? model::Modality::Text : m->modality;
        for (const auto & in : j.inputs)
            if (in.modality != wants)
                return fail(invalid_argument(in.name + ": " + what + " takes " + model::modality_name(wants) +
                                             " input, not " + model::modality_name(in.modality)));
    }
    // The speech decoder: text in, audio out (the model's modality is the decoder's, audio).
    const bool speech                 = m ? m->output == adapter::OutputKind::Audio
                                          : j.requested_path == v1::PATH_GENERATOR && j.inputs[0].modality == model::Modality::Text;
    const model::Modality in_modality = speech ? model::Modality::Text : m ? m->modality : j.inputs[0].modality;
    j.modality                        = speech ? model::Modality::Audio : in_modality;
    for (const auto & in : j.inputs)
        if (in.modality != in_modality)
            return fail(invalid_argument(in.name + ": all inputs of a request must share one modality"));
    if (m)
        j.path = m->path;
    else if (j.requested_path != v1::PATH_UNSPECIFIED)
        j.path = static_cast<model::Path>(j.requested_path - 1);
    else
        j.path = j.modality == model::Modality::Text ? model::Path::Backbone : model::Path::Encoder;
    // Text on the encoder path: its embedding in the shared space (no adapter head).
    const bool text_embed = j.path == model::Path::Encoder && j.modality == model::Modality::Text;
    // Text on the full path: a description drawn by the image decoder (an image reply).
    const bool draw = j.path == model::Path::Full && j.modality == model::Modality::Text;
    if (draw && !e->model().config().has_draw_path())
        return fail(incompatible(
            std::string("the full path over text ends in the image decoder; the firmware has ") +
            (e->model().config().has_decoder(model::Modality::Image)
                 ? "no projector from the backbone into it (\"decoders.image.from_backbone\")"
                 : "no image decoder (\"decoders.image\")")));
    if (!text_embed && !draw && (j.path == model::Path::Backbone) != (j.modality == model::Modality::Text))
        return fail(invalid_argument(std::string("the ") + model::path_name(j.path) + " path cannot take " +
                                     model::modality_name(j.modality) + " input"));
    if (j.path == model::Path::Generator && speech) {
        // Path 4 over text answers with WAV files of a fixed length: they must fit in one reply.
        if (!e->model().config().speech_decoder)
            return fail(
                incompatible("the generator path over text needs a speech decoder; the firmware has none "
                             "(\"decoders.speech\")"));
        const uint64_t wav   = 44 + 2 * static_cast<uint64_t>(e->model().config().speech_decoder->samples());
        const uint64_t reply = std::min<uint64_t>(wire::kMaxFrameBytes, config_.bounds.max_output_bytes);
        if (j.inputs.size() * (wav + 64) + 4096 > reply)
            return fail(invalid_argument(std::to_string(j.inputs.size()) + " sounds of " + std::to_string(wav) +
                                         " bytes may not fit in one reply of at most " + std::to_string(reply) +
                                         " bytes (send fewer per request)"));
    } else if (j.path == model::Path::Generator || draw) {
        // Path 4 (and the full path into the decoder) answers with images: their PNGs must fit in one reply (a frame, and what a
        // connection may hold unread), whatever the pixels.
        if (!e->model().config().has_decoder(model::Modality::Image))
            return fail(
                incompatible("the generator path needs an image decoder; the firmware has none "
                             "(\"decoders.image\")"));
        const uint64_t S     = static_cast<uint64_t>(e->model().config().image_decoder->image_size);
        const uint64_t reply = std::min<uint64_t>(wire::kMaxFrameBytes, config_.bounds.max_output_bytes);
        if (j.inputs.size() * max_png_bytes(S) + 4096 > reply)
            return fail(invalid_argument(std::to_string(j.inputs.size()) + " images of " + std::to_string(S) + "x" +
                                         std::to_string(S) + " may not fit in one reply of at most " +
                                         std::to_string(reply) + " bytes (send fewer per request)"));
    }
    j.generate = j.path != model::Path::Encoder && j.path != model::Path::Generator && !draw &&
                 (!m || m->task == adapter::Task::Generate);
    model::GenerateOptions defaults;  // without an adapter: 32 tokens (fewer if the context is shorter), greedy
    defaults.max_new_tokens = static_cast<int>(std::min<int64_t>(32, e->model().config().backbone.max_seq));
    j.gen                   = model::with_overrides(m ? m->generation : defaults, j.overrides);
    j.gen.kv_dtype          = config_.kv_dtype;
    if (j.generate) {
        Status opt = e->model().check_options(j.gen, "generation settings");
        if (!opt.is_ok()) return fail(opt);
        // Constrained output: compiled once for the request (schema + vocabulary), shared by its rows.
        const auto & tok = e->model().tokenizer();
        if (!j.overrides.choices.empty()) {
            auto c = model::TokenConstraint::choices(j.overrides.choices, tok, j.gen.max_new_tokens);
            if (!c) return fail(c.status());
            j.gen.constraint = std::move(c).value();
        } else if (!j.overrides.json_schema.empty()) {
            auto c = model::TokenConstraint::json_schema(j.overrides.json_schema, tok, j.gen.max_new_tokens);
            if (!c) return fail(c.status());
            j.gen.constraint = std::move(c).value();
        }
    } else if (!j.overrides.choices.empty() || !j.overrides.json_schema.empty()) {
        return fail(invalid_argument("constrained output needs generation (the backbone or full path, no head)"));
    }
    if (j.generate) {
        const auto & bc = e->model().config().backbone;
        uint64_t kv     = 2ull * bc.layers * bc.max_seq * bc.kv_heads * bc.head_dim() * dtype_size(config_.kv_dtype) *
                      j.inputs.size();
        if (kv > config_.kv_budget_bytes)
            return fail(resource_exhausted("generation needs up to " + std::to_string(kv >> 20) +
                                           " MiB of KV cache, the budget is " +
                                           std::to_string(config_.kv_budget_bytes >> 20) + " MiB"));
        count_peak(j.uid, &AppCounters::peak_kv_bytes, kv);
    }
    uint64_t prepared = 0;
    for (auto & in : j.inputs) {
        if (j.cancelled.load()) return j.on_dropped(JobEnd::Cancelled);
        auto r = runtime::prepare_item(e->model(), j.path, m, in, j.prompt);
        if (!r) return fail(r.status());
        r->adapter = j.adapter ? &j.adapter->weights() : nullptr;
        prepared += (r->signal.size() + r->tokens.size()) * sizeof(float);
        j.prepared.push_back(std::move(r).value());
        in = runtime::InputSpec{in.modality, {}, {}, {}, in.name};  // the raw bytes are not needed any more
    }
    Status st = e->model().validate(j.path, j.modality, j.prepared);
    if (!st.is_ok()) return fail(st);
    if (j.gen.constraint) {
        // The constrained output must fit in what each item may generate (Model::generate's check,
        // made here so one request cannot fail a batch).
        const auto & mc  = e->model().config();
        const int64_t mt = j.path == model::Path::Full ? mc.encoder(j.modality).tokens() : 0;
        for (size_t i = 0; i < j.prepared.size(); ++i) {
            const int64_t len    = 1 + mt + static_cast<int64_t>(j.prepared[i].tokens.size());
            const int64_t budget = std::min<int64_t>(
                j.gen.max_new_tokens, std::min<int64_t>(mc.backbone.max_seq, len + j.gen.max_new_tokens) - len + 1);
            if (j.gen.constraint->min_bytes() > budget)
                return fail(invalid_argument(j.inputs[i].name + ": the constrained output needs up to " +
                                             std::to_string(j.gen.constraint->min_bytes()) + " tokens; " +
                                             std::to_string(std::max<int64_t>(budget, 0)) + " fit after the prompt"));
        }
    }
    // What the job holds now is its prepared inputs.
    const int64_t delta = static_cast<int64_t>(prepared) - static_cast<int64_t>(j.input_bytes.exchange(prepared));
    account_input(j.uid, delta);
    // Same path + modality may share one forward pass; generation settings are per row.
    j.batch_key =
        fmt::format("{}/{}/{}", model::path_name(j.path), model::modality_name(j.modality), j.generate ? "gen" : "run");
    if (!j.reserved.exchange(false)) return;  // answered meanwhile (deadline, cancel): released there
    scheduler_->enqueue_reserved(job);
}

void Daemon::run_batch(std::vector<std::shared_ptr<Job>> & batch) {
    auto t0 = Clock::now();
    auto e  = engine();
    std::vector<std::shared_ptr<InferJob>> jobs;
    std::vector<model::Request> items;
    std::vector<model::GenerateOptions> opts;  // generation: each row's settings
    std::vector<size_t> first;
    for (auto & b : batch) {
        auto j       = std::static_pointer_cast<InferJob>(b);
        int expected = InferJob::Waiting;
        if (!j->state.compare_exchange_strong(expected, InferJob::Running)) continue;  // answered already
        if (j->engine != e) {
            // The firmware switched after the inputs were prepared for the old one.
            j->state = InferJob::Answered;
            finish_job(*j,
                       error_response(j->id, Status(StatusCode::Internal, ""),
                                      "infer: the firmware changed while the request was queued; send it again"),
                       "infer");
            continue;
        }
        first.push_back(items.size());
        for (auto & r : j->prepared) {
            if (j->generate) {
                opts.push_back(j->gen);
                opts.back().seed = j->gen.seed * 0x9e3779b97f4a7c15ull + (items.size() - first.back());
            }
            items.push_back(std::move(r));
        }
        jobs.push_back(j);
    }
    if (jobs.empty()) return;
    const auto & head = *jobs[0];
    std::vector<model::Output> outs;
    std::vector<model::Generation> gens;
    Status st;
    const uint64_t cpu0 = cpu_now_us(CLOCK_PROCESS_CPUTIME_ID);
    if (head.generate) {
        auto g = e->model().generate(head.path, head.modality, items, opts);
        if (g)
            gens = std::move(g).value();
        else
            st = g.status();
    } else {
        auto o = e->model().run(head.path, head.modality, items);
        if (o)
            outs = std::move(o).value();
        else
            st = o.status();
    }
    const double run_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    // The batch's CPU time (every thread of the process while it ran) is split between its
    // requests by their share of the work: positions read plus tokens generated.
    const uint64_t cpu = cpu_now_us(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    std::vector<uint64_t> work(jobs.size(), 0), prompt(jobs.size(), 0), generated(jobs.size(), 0);
    uint64_t total_work = 0;
    for (size_t k = 0; k < jobs.size(); ++k) {
        for (size_t i = 0; i < jobs[k]->inputs.size(); ++i) {
            prompt[k] += items[first[k] + i].tokens.size();
            if (st.is_ok() && head.generate) generated[k] += gens[first[k] + i].tokens.size();
        }
        work[k] = prompt[k] + generated[k] + jobs[k]->inputs.size();
        total_work += work[k];
    }
    for (size_t k = 0; k < jobs.size(); ++k) {
        InferJob & j = *jobs[k];
        j.state      = InferJob::Answered;
        if (!st.is_ok()) {
            finish_job(j, error_response(j.id, st, scrub("infer: " + st.message())), "infer");
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
        Status image_st;
        for (size_t i = 0; i < j.inputs.size() && image_st.is_ok(); ++i) {
            auto * res = rep->add_results();
            if (head.path == model::Path::Generator && head.modality == model::Modality::Audio) {
                image_st = fill_audio(outs[first[k] + i], res);
            } else if (head.path == model::Path::Generator ||
                       (head.path == model::Path::Full && head.modality == model::Modality::Text)) {
                image_st = fill_image(outs[first[k] + i], res);
            } else if (head.generate) {
                res->set_text(gens[first[k] + i].text);
                for (int32_t t : gens[first[k] + i].tokens) res->add_tokens(t);
                res->set_stop_reason(gens[first[k] + i].stop_reason);
            } else {
                fill_result(m, outs[first[k] + i], res);
            }
        }
        if (!image_st.is_ok()) {
            finish_job(j, error_response(j.id, image_st, scrub("infer: " + image_st.message())), "infer");
            continue;
        }
        count(j.uid, &AppCounters::items, j.inputs.size());
        count(j.uid, &AppCounters::prompt_tokens, prompt[k]);
        count(j.uid, &AppCounters::generated_tokens, generated[k]);
        count(j.uid, &AppCounters::cpu_us, total_work ? cpu * work[k] / total_work : 0);
        count(j.uid, &AppCounters::queue_us,
              static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(t0 - j.arrival).count()));
        finish_job(j, r, "infer");
    }
}

}  // namespace m4::svc
