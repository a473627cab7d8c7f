// m4fw commands that talk to the m4fwd daemon (the in-process `m4fw run` needs no daemon):
//   m4fw adapter register NAME FILE [--replace]     m4fw adapter list      m4fw adapter remove NAME
//   m4fw adapter publish APP NAME [--withdraw]      (admin)
//   m4fw infer [--adapter NAME] INPUT…              m4fw status
//   m4fw infer --path generator|--adapter SR IMAGE --out BIG.png   (the image the daemon returns)
//   m4fw infer --path generator|--adapter TTS "TEXT" --out SAID.wav (the audio the daemon returns)
//   m4fw firmware install FILE [--activate]          m4fw firmware rollback   (admin)
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <google/protobuf/util/json_util.h>

#include "base/mapped_file.h"
#include "commands.h"
#include "m4/client.h"
#include "runtime/images.h"
#include "runtime/inputs.h"

namespace m4::cli {
namespace {

struct ServiceArgs {
    std::string socket = client::default_socket_path();
    std::string name, file, adapter, modality, path, prompt, app, out;
    std::vector<std::string> inputs;
    bool replace = false, activate = false, withdraw = false, background = false, json = false;
    uint32_t deadline_ms = 0;
    model::GenerationOverrides gen;  // sent as given: the daemon checks the values
};

// Prints a non-OK protocol answer and returns its exit status (10 + the protocol status).
int answer(const Result<v1::Response> & r) {
    if (!r) return report(r.status());
    if (r->status() == v1::STATUS_OK) return 0;
    fmt::print(stderr, "m4fw: {}: {}{}\n", v1::Status_Name(r->status()), r->message(),
               r->retry_after_ms() ? fmt::format(" (retry after {} ms)", r->retry_after_ms()) : "");
    return 10 + static_cast<int>(r->status());
}

int with_client(const ServiceArgs & a, const std::function<int(client::Client &)> & fn) {
    auto c = client::Client::connect(a.socket);
    if (!c) return report(c.status());
    return fn(**c);
}

void print_infer(const v1::InferReply & rep, const std::vector<std::string> & inputs, size_t first,
                 const std::string & out) {
    for (int i = 0; i < rep.results_size(); ++i) {
        const auto & res = rep.results(i);
        const size_t k   = first + static_cast<size_t>(i);
        fmt::print("[{}] {}\n", k + 1, k < inputs.size() ? inputs[k] : "");
        for (int k = 0; k < std::min(5, res.scores_size()); ++k)
            fmt::print("  {:<24} {:.4f}\n", res.scores(k).label(), res.scores(k).score());
        if (res.values_size()) {
            fmt::print("  values [{}]: ", res.values_size());
            for (int k = 0; k < std::min(8, res.values_size()); ++k) fmt::print("{:+.4f} ", res.values(k));
            fmt::print("\n");
        }
        if (!res.text().empty() || res.tokens_size())
            fmt::print("  → {}  ({} tokens, stop: {})\n", res.text(), res.tokens_size(), res.stop_reason());
        if (res.has_image())
            fmt::print("  → {}x{} image ({} bytes of PNG{})\n", res.image().width(), res.image().height(),
                       res.image().png().size(), out.empty() ? "; --out FILE.png writes it" : ", written to " + out);
        if (res.has_audio())
            fmt::print("  → {:.2f} s of audio at {} Hz ({} bytes of WAV{})\n",
                       double(res.audio().samples()) / double(std::max<uint32_t>(1, res.audio().sample_rate())),
                       res.audio().sample_rate(), res.audio().wav().size(),
                       out.empty() ? "; --out FILE.wav writes it" : ", written to " + out);
    }
    fmt::print("batch of {} rows · queued {:.1f} ms · ran {:.1f} ms\n", rep.batch_rows(), rep.queue_ms(), rep.run_ms());
}

// One line of JSON (the protobuf JSON mapping of the reply: field names in lowerCamelCase).
void print_json(const google::protobuf::Message & m) {
    std::string out;
    google::protobuf::util::JsonPrintOptions o;
    o.always_print_primitive_fields = true;
    if (google::protobuf::util::MessageToJsonString(m, &out, o).ok()) fmt::print("{}\n", out);
}

// Sends inputs [first, last) as one request: files travel as descriptors (the daemon reads them,
// nothing is copied into the message), .npy arrays as signals, anything else as text.
int infer_chunk(const ServiceArgs & a, client::Client & c, size_t first, size_t last) {
    v1::Infer req;
    req.set_adapter(a.adapter);
    req.set_prompt(a.prompt);
    req.set_priority(a.background ? v1::PRIORITY_BACKGROUND : v1::PRIORITY_FOREGROUND);
    req.set_deadline_ms(a.deadline_ms);
    // Negative counts cannot travel (unsigned fields); every other range is the daemon's check.
    if (a.gen.max_new_tokens && *a.gen.max_new_tokens <= 0)
        return report(invalid_argument("--max-new-tokens " + std::to_string(*a.gen.max_new_tokens) +
                                       " is out of range (at least 1)"));
    if (a.gen.top_k && *a.gen.top_k < 0)
        return report(invalid_argument("--top-k " + std::to_string(*a.gen.top_k) + " is out of range (0: off)"));
    if (a.gen.max_new_tokens) req.set_max_new_tokens(static_cast<uint32_t>(*a.gen.max_new_tokens));
    if (a.gen.temperature) req.set_temperature(*a.gen.temperature);
    if (a.gen.top_k) req.set_top_k(static_cast<uint32_t>(*a.gen.top_k));
    if (a.gen.top_p) req.set_top_p(*a.gen.top_p);
    if (a.gen.seed) req.set_seed(*a.gen.seed);
    if (a.gen.stop)
        for (const auto & s : *a.gen.stop) req.add_stop(s);
    for (const auto & s : a.gen.choices) req.add_choices(s);
    if (!a.gen.json_schema.empty()) {
        auto schema = runtime::read_text_input(a.gen.json_schema);
        if (!schema) return report(schema.status().with_context("--json-schema"));
        req.set_json_schema(*schema);
    }
    if (a.path == "encoder") req.set_path(v1::PATH_ENCODER);
    if (a.path == "backbone") req.set_path(v1::PATH_BACKBONE);
    if (a.path == "full") req.set_path(v1::PATH_FULL);
    if (a.path == "generator") req.set_path(v1::PATH_GENERATOR);
    std::vector<int> fds;
    auto close_all = [&] {
        for (int fd : fds) ::close(fd);
    };
    for (size_t k = first; k < last; ++k) {
        const std::string & in = a.inputs[k];
        auto * x               = req.add_inputs();
        model::Modality mod    = runtime::guess_modality(in);
        if (!a.modality.empty()) model::parse_modality(a.modality, &mod);
        if (mod == model::Modality::Text) {
            auto text = runtime::read_text_input(in);
            if (!text) return close_all(), report(text.status());
            x->set_text(*text);
            continue;
        }
        x->set_modality(model::modality_name(mod));
        if (in.size() > 4 && in.substr(in.size() - 4) == ".npy") {
            auto arr = runtime::read_npy(in);
            if (!arr) return close_all(), report(arr.status());
            x->mutable_signal()->mutable_values()->Add(arr->f32.begin(), arr->f32.end());
            continue;
        }
        int fd = ::open(in.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return close_all(), report(not_found(in + ": cannot open"));
        fds.push_back(fd);
        x->set_fd_attached(true);
    }
    auto r = c.infer(req, fds);
    close_all();
    if (int rc = answer(r)) return rc;
    if (!a.out.empty() && r->infer().results_size() == 1 && r->infer().results(0).has_audio()) {
        // The audio travels as WAV bytes: written as they came, nothing re-encoded.
        const std::string & wav = r->infer().results(0).audio().wav();
        if (a.out.size() < 4 || a.out.compare(a.out.size() - 4, 4, ".wav") != 0)
            return report(invalid_argument(a.out + ": the reply carries audio; --out must name a .wav file"));
        if (Status st = write_file_atomic(a.out, wav.data(), wav.size()); !st.is_ok()) return report(st);
    } else if (!a.out.empty()) {
        // The image travels as PNG bytes: written as they came, nothing re-encoded.
        if (r->infer().results_size() != 1 || !r->infer().results(0).has_image())
            return report(
                invalid_argument("--out: the reply carries no image (only the generator path or an "
                                 "image-output adapter answers with one)"));
        if (a.out.size() < 4 || a.out.compare(a.out.size() - 4, 4, ".png") != 0)
            return report(invalid_argument(a.out + ": the reply carries an image; --out must name a .png file"));
        const std::string & png = r->infer().results(0).image().png();
        if (Status st = write_file_atomic(a.out, png.data(), png.size()); !st.is_ok()) return report(st);
    }
    if (a.json)
        print_json(r->infer());
    else
        print_infer(r->infer(), a.inputs, first, a.out);
    return 0;
}

int run_infer(const ServiceArgs & a, client::Client & c) {
    if (!a.out.empty()) {
        if (a.inputs.size() != 1) return report(invalid_argument("--out: one input per request when writing an image"));
        // .wav: the speech decoder's audio (path 4 over text); otherwise the image decoder's PNG.
        const bool wav = a.out.size() > 4 && a.out.compare(a.out.size() - 4, 4, ".wav") == 0;
        if (Status st = runtime::check_output_path(a.out, wav ? "wav" : "png"); !st.is_ok()) return report(st);
    }
    // More inputs than the daemon takes in one request are sent as several requests.
    const size_t per =
        std::max<uint32_t>(1, c.hello().max_inputs_per_request() ? c.hello().max_inputs_per_request() : 4);
    for (size_t first = 0; first < a.inputs.size(); first += per)
        if (int rc = infer_chunk(a, c, first, std::min(a.inputs.size(), first + per))) return rc;
    return 0;
}

int run_status(client::Client & c, bool json) {
    auto r = c.status();
    if (int rc = answer(r)) return rc;
    const auto & s = r->status_reply();
    if (json) return print_json(s), 0;
    fmt::print("firmware: {} {}\nslot: {}\nkernels: {}\nresident: {:.1f} MiB\nadapters cached: {} ({:.1f} KiB)\n",
               s.firmware_name(), s.firmware_fingerprint(), s.active_slot(), s.isa(), s.resident_bytes() / 1048576.0,
               s.adapters_cached(), s.adapter_cache_bytes() / 1024.0);
    fmt::print("queues: foreground {} background {}\nuptime: {:.1f} s\nconnections: {}\nqueued input: {:.1f} KiB\n",
               s.queue_foreground(), s.queue_background(), s.uptime_ms() / 1000.0, s.connections(),
               s.queued_input_bytes() / 1024.0);
    for (const auto & n : s.notices()) fmt::print("notice: {}\n", n);
    for (const auto & a : s.apps())
        fmt::print(
            "app {} (uid {}): {} requests, {} items, {} errors, {} busy, {} adapters ({} bytes)\n"
            "  tokens: {} prompt, {} generated · cpu {:.1f} ms · queued {:.1f} ms in all · peak adapters "
            "{:.1f} KiB, peak KV {:.1f} KiB\n",
            a.app(), a.uid(), a.requests(), a.items(), a.errors(), a.busy(), a.adapters(), a.adapter_bytes(),
            a.prompt_tokens(), a.generated_tokens(), a.cpu_us() / 1000.0, a.queue_us() / 1000.0,
            a.peak_adapter_bytes() / 1024.0, a.peak_kv_bytes() / 1024.0);
    return 0;
}

}  // namespace

void add_service_commands(CLI::App & app, CLI::App & adapter_group, int * rc) {
    auto a          = std::make_shared<ServiceArgs>();
    auto add_socket = [&](CLI::App * cmd) { cmd->add_option("--socket", a->socket, "m4fwd socket"); };

    auto * reg = adapter_group.add_subcommand("register", "store an adapter with the daemon (for this app)");
    reg->add_option("name", a->name, "adapter name")->required();
    reg->add_option("file", a->file, ".m4a file")->required();
    reg->add_flag("--replace", a->replace, "overwrite an adapter of the same name");
    add_socket(reg);
    reg->callback([a, rc] {
        *rc = with_client(*a, [&](client::Client & c) {
            auto bytes = read_file_bytes(a->file);
            if (!bytes) return report(bytes.status());
            auto r = c.register_adapter(a->name, *bytes, a->replace);
            if (int e = answer(r)) return e;
            fmt::print("registered {} ({} bytes, digest {})\n", a->name, bytes->size(), r->register_adapter().digest());
            return 0;
        });
    });
    auto * list = adapter_group.add_subcommand("list", "list this app's adapters (and shared ones)");
    add_socket(list);
    list->callback([a, rc] {
        *rc = with_client(*a, [&](client::Client & c) {
            auto r = c.list_adapters(true);
            if (int e = answer(r)) return e;
            for (const auto & x : r->list_adapters().adapters())
                fmt::print("{:<24} {:<8} {:<9} {:<8} {:<6} {:>8} bytes  {}\n", x.name(), x.owner(), x.task(), x.path(),
                           x.modality(), x.bytes(), x.compatible() ? "compatible" : "NEEDS RETRAINING");
            return 0;
        });
    });
    auto * rm = adapter_group.add_subcommand("remove", "remove one of this app's adapters");
    rm->add_option("name", a->name, "adapter name")->required();
    add_socket(rm);
    rm->callback(
        [a, rc] { *rc = with_client(*a, [&](client::Client & c) { return answer(c.remove_adapter(a->name)); }); });
    auto * pub = adapter_group.add_subcommand("publish", "publish an app's adapter as shared (admin)");
    pub->add_option("app", a->app, "owner app name")->required();
    pub->add_option("name", a->name, "adapter name")->required();
    pub->add_flag("--withdraw", a->withdraw, "stop sharing it");
    add_socket(pub);
    pub->callback([a, rc] {
        *rc = with_client(*a, [&](client::Client & c) {
            v1::Request r;
            r.mutable_publish_adapter()->set_app(a->app);
            r.mutable_publish_adapter()->set_name(a->name);
            r.mutable_publish_adapter()->set_shared(!a->withdraw);
            return answer(c.call(r));
        });
    });

    auto * inf = app.add_subcommand("infer", "run inputs through the daemon");
    inf->add_option("--adapter", a->adapter, "adapter name (shared/NAME for a shared one)");
    inf->add_option("--modality", a->modality, "image | audio | imu | text (default: from the file name)");
    inf->add_option("--path", a->path, "without an adapter: encoder | backbone | full | generator")
        ->check(CLI::IsMember({"encoder", "backbone", "full", "generator"}));
    inf->add_option("--out", a->out, "write the returned image here (.png; generator path)");
    inf->add_option("--prompt", a->prompt, "text after the modality tokens (full path)");
    inf->add_flag("--background", a->background, "background priority");
    inf->add_option("--deadline-ms", a->deadline_ms, "give up if not started within this time");
    add_generation_options(inf, &a->gen);
    inf->add_flag("--json", a->json, "print the replies as JSON");
    inf->add_option("inputs", a->inputs, "files (sent as descriptors), .npy arrays, or text")->required();
    add_socket(inf);
    inf->callback([a, rc] { *rc = with_client(*a, [&](client::Client & c) { return run_infer(*a, c); }); });

    auto * st = app.add_subcommand("status", "daemon status: firmware, memory, caches, queues, per-app usage");
    add_socket(st);
    st->add_flag("--json", a->json, "print the reply as JSON (protobuf JSON mapping, lowerCamelCase names)");
    st->callback([a, rc] { *rc = with_client(*a, [&](client::Client & c) { return run_status(c, a->json); }); });

    auto * fw = app.add_subcommand("firmware", "firmware slots of the daemon (admin)");
    fw->require_subcommand(1);
    auto * ins = fw->add_subcommand("install", "write a firmware into the inactive slot, check every adapter");
    ins->add_option("file", a->file, ".m4fw file")->required();
    ins->add_flag("--activate", a->activate, "switch to it after the check");
    add_socket(ins);
    ins->callback([a, rc] {
        *rc = with_client(*a, [&](client::Client & c) {
            // The image travels as a descriptor: no frame limit, no copy into the message.
            int fd = ::open(a->file.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) return report(not_found(a->file + ": cannot open"));
            v1::Request r;
            r.mutable_install_firmware()->set_fd_attached(true);
            r.mutable_install_firmware()->set_activate(a->activate);
            auto resp = c.call(r, {fd});
            ::close(fd);
            if (int e = answer(resp)) return e;
            const auto & x = resp->install_firmware();
            fmt::print("installed into slot {}: {}{}\n", x.slot(), x.fingerprint(), x.activated() ? " (active)" : "");
            for (const auto & n : x.needs_retraining()) fmt::print("needs retraining: {}\n", n);
            return 0;
        });
    });
    auto * rb = fw->add_subcommand("rollback", "switch back to the other slot");
    add_socket(rb);
    rb->callback([a, rc] {
        *rc = with_client(*a, [&](client::Client & c) {
            v1::Request r;
            r.mutable_rollback();
            auto resp = c.call(r);
            if (int e = answer(resp)) return e;
            fmt::print("active slot {}: {}\n", resp->rollback().slot(), resp->rollback().fingerprint());
            return 0;
        });
    });
}

}  // namespace m4::cli
