// The pretraining recipe runner (pretrain.h).
#include "bench/pretrain.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "base/crypto.h"
#include "base/mapped_file.h"
#include "bench/samples.h"
#include "train/export.h"

namespace m4::bench {
namespace {

namespace fs = std::filesystem;
using Clock  = std::chrono::steady_clock;

double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string sha256_hex(const std::string & bytes) {
    return to_hex(sha256(bytes.data(), bytes.size()));
}

// ---- recipe ---------------------------------------------------------------------------------------

Result<nlohmann::json> member(const nlohmann::json & j, const char * key, const std::string & where,
                              nlohmann::json::value_t type) {
    if (!j.is_object() || !j.contains(key)) return invalid_argument(where + ": missing \"" + key + "\"");
    const auto & v = j.at(key);
    const bool ok  = type == nlohmann::json::value_t::number_float ? v.is_number() : v.type() == type;
    if (!ok) return invalid_argument(where + ": \"" + key + "\" has the wrong type");
    return v;
}

template <typename T>
Result<T> value_or(const nlohmann::json & j, const char * key, T def, const std::string & where) {
    if (!j.is_object() || !j.contains(key)) return def;
    try {
        return j.at(key).get<T>();
    } catch (const std::exception &) {
        return invalid_argument(where + ": \"" + key + "\" has the wrong type");
    }
}

Result<PretrainObjective> parse_objective(const nlohmann::json & j, const std::string & where) {
    PretrainObjective o;
    M4_ASSIGN_OR_RETURN(o.name, value_or<std::string>(j, "name", "", where));
    M4_ASSIGN_OR_RETURN(o.kind, value_or<std::string>(j, "kind", "", where));
    M4_ASSIGN_OR_RETURN(o.split, value_or<std::string>(j, "split", "", where));
    M4_ASSIGN_OR_RETURN(o.weight, value_or<float>(j, "weight", 1.0f, where));
    M4_ASSIGN_OR_RETURN(o.batch, value_or<int64_t>(j, "batch", 0, where));
    M4_ASSIGN_OR_RETURN(o.prompt, value_or<std::string>(j, "prompt", "", where));
    M4_ASSIGN_OR_RETURN(o.task, value_or<std::string>(j, "task", "", where));
    M4_ASSIGN_OR_RETURN(o.foreground_weight, value_or<float>(j, "foreground_weight", 1.0f, where));
    M4_ASSIGN_OR_RETURN(std::string mod, value_or<std::string>(j, "modality", "text", where));
    if (o.name.empty() || o.split.empty())
        return invalid_argument(where + ": every objective needs \"name\" and \"split\"");
    if (o.kind != "lm" && o.kind != "contrastive" && o.kind != "caption" && o.kind != "reconstruct" &&
        o.kind != "draw" && o.kind != "mel_regress")
        return invalid_argument(
            where + ": \"kind\" must be lm, contrastive, caption, reconstruct, draw or mel_regress (got \"" + o.kind +
            "\")");
    if (!model::parse_modality(mod, &o.modality)) return invalid_argument(where + ": unknown modality \"" + mod + "\"");
    if (o.kind == "draw") {  // text → image: reads a benchmark task's split, not the corpus
        if (o.task.empty())
            return invalid_argument(where +
                                    ": \"draw\" needs \"task\": the task whose split it reads (img.draw_scene)");
        if (!(o.foreground_weight > 0)) return invalid_argument(where + ": \"foreground_weight\" must be > 0");
        if (!(o.weight > 0) || o.batch < 0)
            return invalid_argument(where + ": \"weight\" must be > 0 and \"batch\" ≥ 0");
        return o;
    }
    // The decoders' objectives may read a benchmark task's split (aud.tts, img.super_resolution)
    // instead of the corpus, so that one pretraining covers every path; the others read the corpus.
    if (!o.task.empty() && o.kind != "mel_regress" && o.kind != "reconstruct")
        return invalid_argument(where + ": only draw, reconstruct and mel_regress objectives name a \"task\"");
    if ((o.kind == "lm") != (o.modality == model::Modality::Text))
        return invalid_argument(where +
                                ": \"lm\" objectives read text; contrastive and caption ones image, audio or imu");
    if (o.kind == "reconstruct" && o.modality != model::Modality::Image)
        return invalid_argument(where + ": \"reconstruct\" trains the image decoder: \"modality\": \"image\"");
    if (o.kind == "mel_regress" && o.modality != model::Modality::Audio)
        return invalid_argument(where + ": \"mel_regress\" trains the speech decoder: \"modality\": \"audio\"");
    if (!(o.weight > 0) || o.batch < 0) return invalid_argument(where + ": \"weight\" must be > 0 and \"batch\" ≥ 0");
    return o;
}

Status parse_training(const nlohmann::json & t, const std::string & where, PretrainRecipe * r) {
    train::TrainerOptions & o = r->trainer;
    M4_ASSIGN_OR_RETURN(o.steps, value_or<int64_t>(t, "steps", 1000, where));
    M4_ASSIGN_OR_RETURN(o.batch_size, value_or<int64_t>(t, "batch", 16, where));
    M4_ASSIGN_OR_RETURN(o.accum, value_or<int64_t>(t, "accum", 1, where));
    M4_ASSIGN_OR_RETURN(o.schedule.peak_lr, value_or<float>(t, "lr", 1e-3f, where));
    M4_ASSIGN_OR_RETURN(o.schedule.warmup, value_or<int64_t>(t, "warmup", o.steps / 20, where));
    M4_ASSIGN_OR_RETURN(o.schedule.min_ratio, value_or<float>(t, "min_lr_ratio", 0.1f, where));
    M4_ASSIGN_OR_RETURN(o.adamw.weight_decay, value_or<float>(t, "weight_decay", 0.05f, where));
    M4_ASSIGN_OR_RETURN(o.adamw.beta1, value_or<float>(t, "beta1", 0.9f, where));
    M4_ASSIGN_OR_RETURN(o.adamw.beta2, value_or<float>(t, "beta2", 0.999f, where));
    M4_ASSIGN_OR_RETURN(o.clip, value_or<float>(t, "clip", 1.0f, where));
    M4_ASSIGN_OR_RETURN(o.eval_every, value_or<int64_t>(t, "eval_every", 0, where));
    M4_ASSIGN_OR_RETURN(o.eval_batch, value_or<int64_t>(t, "eval_batch", 64, where));
    M4_ASSIGN_OR_RETURN(o.checkpoint_every, value_or<int64_t>(t, "checkpoint_every", 100, where));
    M4_ASSIGN_OR_RETURN(o.log_every, value_or<int64_t>(t, "log_every", 10, where));
    M4_ASSIGN_OR_RETURN(r->bf16, value_or<bool>(t, "bf16", true, where));
    if (o.steps <= 0 || o.batch_size <= 0 || o.accum <= 0 || o.schedule.warmup < 0 || !(o.schedule.peak_lr > 0))
        return invalid_argument(where + ": training.steps, batch, accum and lr must be positive, warmup ≥ 0");
    return Status::ok();
}

// ---- data -----------------------------------------------------------------------------------------

struct DataCheck {
    nlohmann::json digests;  // manifest + split files (recorded in the header and the checkpoint)
    std::vector<std::string> splits;
};

Result<DataCheck> check_data(const std::string & dir, const PretrainRecipe & r) {
    const std::string task_dir = dir + "/" + r.data_task;
    const std::string manifest = task_dir + "/manifest.json";
    if (!fs::exists(manifest))
        return not_found(manifest + ": the pretraining corpus is not built; run `m4fw data build " + r.data_task +
                         " --dir " + dir + "`");
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(manifest));
    nlohmann::json m;
    try {
        m = nlohmann::json::parse(text);
    } catch (const std::exception & e) {
        return invalid_argument(manifest + ": not valid JSON (" + e.what() + ")");
    }
    DataCheck d;
    std::set<std::string> used;
    for (const auto & o : r.objectives)
        if (o.task.empty()) used.insert(o.split);
    used.insert("text");  // the tokenizer's corpus
    d.digests = {{"dir", dir},
                 {"task", r.data_task},
                 {"manifest_sha256", sha256_hex(text)},
                 {"generator", m.value("generator", nlohmann::json::object())},
                 {"splits", nlohmann::json::object()}};
    for (const auto & s : used) {
        if (!m.contains("splits") || !m["splits"].contains(s))
            return not_found(manifest + ": no split \"" + s + "\" (rebuild: `m4fw data build " + r.data_task +
                             " --dir " + dir + " --force`)");
        const auto & e         = m["splits"][s];
        const std::string file = task_dir + "/" + e.value("file", s + ".m4ds");
        if (!fs::exists(file))
            return not_found(file + ": split file missing; run `m4fw data build " + r.data_task + " --dir " + dir +
                             "`");
        M4_ASSIGN_OR_RETURN(std::string sha, data::file_sha256(file));
        if (sha != e.value("sha256", ""))
            return invalid_argument(file + ": SHA-256 differs from " + manifest + " (rebuild: `m4fw data build " +
                                    r.data_task + " --dir " + dir + " --force`)");
        d.digests["splits"][s] = {
            {"file", e.value("file", s + ".m4ds")}, {"sha256", sha}, {"count", e.value("count", 0)}};
        d.splits.push_back(s);
    }
    return d;
}

// ---- tokenizer and initial firmware (cached in the work dir) -------------------------------------

// Reuses `<work>/<name>` when `<work>/<name>.key` holds `key`; otherwise `make` writes it, then the key.
Result<bool> cached(const std::string & work, const std::string & name, const std::string & key,
                    const std::function<Status(const std::string &)> & make) {
    const std::string path = work + "/" + name, key_path = path + ".key";
    if (fs::exists(path) && fs::exists(key_path)) {
        auto k = read_file_bytes(key_path);
        if (k && *k == key) return true;
    }
    std::error_code ec;
    fs::remove(key_path, ec);
    M4_RETURN_IF_ERROR(make(path));
    M4_RETURN_IF_ERROR(write_file_atomic(key_path, key.data(), key.size()));
    return false;
}

// The tokenizer corpus: every line of the training-side text documents and every distinct caption
// of the modality splits (validation shares left out), one per line, longer lines cut.
Result<int64_t> write_corpus(const std::string & path, const std::string & dir, const PretrainRecipe & r) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) return io_error(path + ": cannot write the tokenizer corpus");
    int64_t lines = 0;
    auto put_line = [&](std::string_view s) {
        while (!s.empty() && (s.back() == ' ' || s.back() == '\r' || s.back() == '\t')) s.remove_suffix(1);
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        if (s.empty()) return;
        if (s.size() > 2000) {
            size_t b = 2000;
            while (b > 0 && (static_cast<uint8_t>(s[b]) & 0xC0) == 0x80) --b;
            s = s.substr(0, b);
        }
        f.write(s.data(), static_cast<std::streamsize>(s.size()));
        f.put('\n');
        ++lines;
    };
    M4_ASSIGN_OR_RETURN(data::Dataset text, data::Dataset::open(dir, r.data_task, "text"));
    for (size_t i = 0; i < text.size(); ++i) {
        const data::Example ex = text.at(i);
        if (in_validation(ex, r.val_share)) continue;
        std::string_view doc = ex.text();
        for (size_t a = 0; a < doc.size();) {
            size_t b = doc.find('\n', a);
            if (b == std::string_view::npos) b = doc.size();
            put_line(doc.substr(a, b - a));
            a = b + 1;
        }
    }
    std::set<std::string> splits;
    for (const auto & o : r.objectives)
        if (o.kind != "lm" && o.task.empty()) splits.insert(o.split);
    for (const auto & s : splits) {  // (the text split's own lines are above)
        M4_ASSIGN_OR_RETURN(data::Dataset ds, data::Dataset::open(dir, r.data_task, s));
        std::set<std::string_view> seen;
        for (size_t i = 0; i < ds.size(); ++i) {
            const data::Example ex = ds.at(i);
            if (in_validation(ex, r.val_share) || ex.target.empty() || !seen.insert(ex.target).second) continue;
            put_line(ex.target);
        }
    }
    f.close();
    if (!f) return io_error(path + ": write failed");
    return lines;
}

// ---- sources --------------------------------------------------------------------------------------

Result<std::unique_ptr<train::DataSource>> make_source(const PretrainObjective & obj, const std::string & dir,
                                                       const PretrainRecipe & r, const model::Model & fw) {
    train::TaskSpec spec;
    spec.name     = obj.name;
    spec.modality = obj.modality;
    if (obj.kind == "lm") {
        spec.objective = train::Objective::LanguageModel;
        spec.path      = model::Path::Backbone;
        TextWindowOptions o;
        o.split     = obj.split;
        o.val_share = r.val_share;
        o.eval_size = r.eval_size;
        M4_ASSIGN_OR_RETURN(auto src, TextWindowSource::create(spec, dir, r.data_task, fw, o));
        return std::unique_ptr<train::DataSource>(std::move(src));
    }
    SampleRecipe sr;
    if (obj.kind == "contrastive") {
        spec.objective = sr.objective = train::Objective::Contrastive;
        spec.path = sr.path = model::Path::Encoder;
    } else if (obj.kind == "draw") {
        // The full path into the image decoder: a task's descriptions → its drawings.
        spec.objective = sr.objective = train::Objective::Draw;
        spec.path = sr.path    = model::Path::Full;
        spec.modality          = model::Modality::Text;
        spec.foreground_weight = obj.foreground_weight;
        SourceOptions so;
        so.split     = obj.split;
        so.val_share = r.val_share;
        so.eval_size = r.eval_size;
        M4_ASSIGN_OR_RETURN(auto src, DatasetSource::create(spec, sr, dir, obj.task, fw, so));
        return std::unique_ptr<train::DataSource>(std::move(src));
    } else if (obj.kind == "reconstruct") {
        // The image decoder: ×2 / ×4 reductions of the split's images back to their originals
        // (bench/super_resolution.h); the captions are not used.
        spec.objective = sr.objective = train::Objective::Reconstruct;
        spec.path = sr.path = model::Path::Generator;
    } else if (obj.kind == "mel_regress") {
        // The speech decoder: each example's word → its reference rendering's log-mel (bench/tts.h).
        spec.objective = sr.objective = train::Objective::MelRegress;
        spec.path = sr.path = model::Path::Generator;
    } else {
        spec.objective = sr.objective = train::Objective::LanguageModel;
        spec.path = sr.path = model::Path::Full;
        sr.prompt           = obj.prompt;
    }
    SourceOptions so;
    so.split     = obj.split;
    so.val_share = r.val_share;
    so.eval_size = r.eval_size;
    M4_ASSIGN_OR_RETURN(auto src,
                        DatasetSource::create(spec, sr, dir, obj.task.empty() ? r.data_task : obj.task, fw, so));
    const auto want = static_cast<data::Modality>(static_cast<int>(obj.modality));
    if (src->dataset().modality() != want)
        return invalid_argument(src->dataset().path() + ": objective \"" + obj.name + "\" expects " +
                                data::modality_name(want) + " examples, the split holds " +
                                data::modality_name(src->dataset().modality()));
    return std::unique_ptr<train::DataSource>(std::move(src));
}

}  // namespace

Result<PretrainRecipe> parse_pretrain_recipe(const nlohmann::json & j, const std::string & where) {
    using VT = nlohmann::json::value_t;
    PretrainRecipe r;
    r.json = j;
    if (!j.is_object()) return invalid_argument(where + ": a recipe is a JSON object");
    M4_ASSIGN_OR_RETURN(r.name, value_or<std::string>(j, "name", r.name, where));
    M4_ASSIGN_OR_RETURN(r.version, value_or<std::string>(j, "version", r.version, where));
    M4_ASSIGN_OR_RETURN(r.seed, value_or<uint64_t>(j, "seed", 1, where));
    M4_ASSIGN_OR_RETURN(r.architecture, member(j, "architecture", where, VT::object));
    r.architecture["name"]    = r.name;
    r.architecture["version"] = r.version;
    M4_ASSIGN_OR_RETURN(nlohmann::json tok, member(j, "tokenizer", where, VT::object));
    M4_ASSIGN_OR_RETURN(r.vocab_size, value_or<int32_t>(tok, "vocab_size", r.vocab_size, where + ": tokenizer"));
    M4_ASSIGN_OR_RETURN(r.tokenizer_type, value_or<std::string>(tok, "type", r.tokenizer_type, where + ": tokenizer"));
    M4_ASSIGN_OR_RETURN(r.max_sentences, value_or<int64_t>(tok, "max_sentences", 0, where + ": tokenizer"));
    if (r.vocab_size < 16 || (r.tokenizer_type != "bpe" && r.tokenizer_type != "unigram"))
        return invalid_argument(where + ": tokenizer: vocab_size ≥ 16 and type bpe or unigram");
    {
        nlohmann::json probe = r.architecture;  // the architecture must parse (the tokenizer fills "text")
        probe["text"]        = {{"vocab_size", r.vocab_size}};
        auto c               = model::parse_model_config(probe);
        if (!c) return c.status().with_context(where + ": architecture");
    }
    M4_ASSIGN_OR_RETURN(nlohmann::json data, member(j, "data", where, VT::object));
    M4_ASSIGN_OR_RETURN(r.data_dir, value_or<std::string>(data, "dir", r.data_dir, where + ": data"));
    M4_ASSIGN_OR_RETURN(r.data_task, value_or<std::string>(data, "task", r.data_task, where + ": data"));
    M4_ASSIGN_OR_RETURN(r.val_share, value_or<double>(data, "val_share", r.val_share, where + ": data"));
    M4_ASSIGN_OR_RETURN(r.eval_size, value_or<int64_t>(data, "eval_size", r.eval_size, where + ": data"));
    if (r.val_share < 0 || r.val_share >= 0.5) return invalid_argument(where + ": data.val_share must be in [0, 0.5)");
    M4_ASSIGN_OR_RETURN(nlohmann::json objs, member(j, "objectives", where, VT::array));
    std::set<std::string> names;
    for (size_t i = 0; i < objs.size(); ++i) {
        M4_ASSIGN_OR_RETURN(PretrainObjective o,
                            parse_objective(objs[i], where + ": objectives[" + std::to_string(i) + "]"));
        if (!names.insert(o.name).second) return invalid_argument(where + ": objective \"" + o.name + "\" twice");
        r.objectives.push_back(std::move(o));
    }
    if (r.objectives.empty()) return invalid_argument(where + ": \"objectives\" is empty");
    for (const auto & o : r.objectives)
        if (o.kind == "reconstruct" &&
            !(r.architecture.contains("decoders") && r.architecture["decoders"].is_object() &&
              r.architecture["decoders"].contains("image")))
            return invalid_argument(
                where + ": objective \"" + o.name +
                "\" trains the image decoder, but the architecture has no \"decoders\": {\"image\"}");
    for (const auto & o : r.objectives) {
        if (o.kind == "draw") {
            const auto & a = r.architecture;
            if (!(a.contains("decoders") && a["decoders"].is_object() && a["decoders"].contains("image") &&
                  a["decoders"]["image"].is_object() && a["decoders"]["image"].contains("from_backbone")))
                return invalid_argument(where + ": objective \"" + o.name +
                                        "\" draws through the full path, but the architecture has no "
                                        "\"decoders\": {\"image\": {\"from_backbone\": …}}");
        }
        if (o.kind == "mel_regress" &&
            !(r.architecture.contains("decoders") && r.architecture["decoders"].is_object() &&
              r.architecture["decoders"].contains("speech")))
            return invalid_argument(
                where + ": objective \"" + o.name +
                "\" trains the speech decoder, but the architecture has no \"decoders\": {\"speech\"}");
    }
    M4_ASSIGN_OR_RETURN(nlohmann::json training, member(j, "training", where, VT::object));
    M4_RETURN_IF_ERROR(parse_training(training, where + ": training", &r));
    for (const auto & o : r.objectives) {
        r.trainer.source_weights.push_back(o.weight);
        r.trainer.source_batch.push_back(o.batch > 0 ? o.batch : r.trainer.batch_size);
    }
    M4_ASSIGN_OR_RETURN(std::string dt, value_or<std::string>(j.value("export", nlohmann::json::object()),
                                                              "weight_dtype", "f32", where + ": export"));
    if (!parse_dtype(dt, &r.weight_dtype) || r.weight_dtype == DType::U8)
        return invalid_argument(where + ": export.weight_dtype must be f32, bf16 or i8");
    return r;
}

Result<PretrainResult> run_pretrain(const PretrainOptions & o) {
    const auto t_start = Clock::now();
    std::FILE * log    = o.log;
    auto say           = [&](const std::string & s) {
        if (log) fmt::print(log, "{}\n", s), std::fflush(log);
    };
    // 1. the recipe (+ overrides)
    M4_ASSIGN_OR_RETURN(std::string recipe_text, read_file_bytes(o.recipe));
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(recipe_text);
    } catch (const std::exception & e) {
        return invalid_argument(o.recipe + ": not valid JSON (" + e.what() + ")");
    }
    if (!o.overrides.is_null() && !o.overrides.empty()) j.merge_patch(o.overrides);
    if (o.steps > 0) j["training"]["steps"] = o.steps;
    M4_ASSIGN_OR_RETURN(PretrainRecipe r, parse_pretrain_recipe(j, o.recipe));
    const std::string dir = o.data_dir.empty() ? r.data_dir : o.data_dir;
    const std::string work =
        o.work_dir.empty() ? "build-pretrain/" + fs::path(o.out).stem().string() : o.work_dir;  // /build*/ is ignored
    const std::string ckpt = o.checkpoint.empty() ? work + "/pretrain.ckpt" : o.checkpoint;
    nlohmann::json timing  = nlohmann::json::object();

    // 2. the data: manifest and split digests
    auto t0 = Clock::now();
    M4_ASSIGN_OR_RETURN(DataCheck data, check_data(dir, r));
    timing["data_check"] = since(t0);
    std::error_code ec;
    fs::create_directories(work, ec);
    if (ec) return io_error(work + ": cannot create the work directory (" + ec.message() + ")");
    say(fmt::format("pretrain {}: data {}/{} (manifest sha256 {}), {} objectives, {} steps", r.name, dir, r.data_task,
                    data.digests["manifest_sha256"].get<std::string>().substr(0, 16), r.objectives.size(),
                    r.trainer.steps));

    // 3. tokenizer
    t0 = Clock::now();
    std::set<std::string> caption_splits;
    for (const auto & obj : r.objectives)
        if (obj.kind != "lm") caption_splits.insert(obj.split);
    const nlohmann::json tok = {{"vocab_size", r.vocab_size},
                                {"type", r.tokenizer_type},
                                {"max_sentences", r.max_sentences},
                                {"corpus", "pretrain text lines + distinct captions, validation shares left out"},
                                {"builder", 1},  // bump when the corpus or the training call changes
                                {"val_share", r.val_share},
                                {"caption_splits", caption_splits},
                                {"splits", data.digests["splits"]}};
    int64_t corpus_lines     = -1;
    M4_ASSIGN_OR_RETURN(
        bool tok_cached, cached(work, "tokenizer.model", sha256_hex(tok.dump()), [&](const std::string & p) -> Status {
            const std::string corpus = work + "/tokenizer-corpus.txt";
            M4_ASSIGN_OR_RETURN(corpus_lines, write_corpus(corpus, dir, r));
            say(fmt::format("tokenizer: {} lines of train-side text → SentencePiece {} {}", corpus_lines,
                            r.tokenizer_type, r.vocab_size));
            model::TokenizerTrainOptions to;
            to.corpus_path   = corpus;
            to.vocab_size    = r.vocab_size;
            to.model_type    = r.tokenizer_type;
            to.path_free     = true;
            to.max_sentences = static_cast<uint64_t>(r.max_sentences > 0 ? r.max_sentences : corpus_lines + 1);
            M4_ASSIGN_OR_RETURN(std::string bytes, model::train_tokenizer(to));
            return write_file_atomic(p, bytes.data(), bytes.size());
        }));
    M4_ASSIGN_OR_RETURN(std::string tok_bytes, read_file_bytes(work + "/tokenizer.model"));
    timing["tokenizer"] = since(t0);
    say(fmt::format("tokenizer {}: {:.1f} s", tok_cached ? "(cached)" : "trained", timing["tokenizer"].get<double>()));

    // 4. initial firmware
    t0 = Clock::now();
    model::InitFirmware init;
    init.config          = r.architecture;
    init.tokenizer_model = tok_bytes;
    init.seed            = r.seed;
    init.clean_norms     = true;
    init.provenance      = {{"kind", "pretraining-init"}, {"seed", r.seed}, {"tokenizer", tok}};
    const std::string init_key =
        sha256_hex(nlohmann::json{{"arch", r.architecture}, {"seed", r.seed}, {"tok", sha256_hex(tok_bytes)}}.dump());
    M4_ASSIGN_OR_RETURN(bool init_cached, cached(work, "init.m4fw", init_key, [&](const std::string & p) -> Status {
                            return model::write_random_firmware(init, p, o.recipe).status();
                        }));
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(work + "/init.m4fw"));
    timing["init"] = since(t0);
    say(fmt::format("initial firmware {}{}: fingerprint {}", work + "/init.m4fw", init_cached ? " (cached)" : "",
                    fw->fingerprint().substr(0, 16)));

    // 5. sources, model, trainer
    t0 = Clock::now();
    std::vector<std::unique_ptr<train::DataSource>> owned;
    std::vector<train::DataSource *> sources;
    std::vector<train::TaskSpec> tasks;
    for (const auto & obj : r.objectives) {
        M4_ASSIGN_OR_RETURN(auto src, make_source(obj, dir, r, *fw));
        tasks.push_back(src->task());
        sources.push_back(src.get());
        owned.push_back(std::move(src));
    }
    train::ModelOptions mo;
    mo.mode = train::Mode::Full;
    mo.bf16 = r.bf16;
    mo.seed = r.seed;
    M4_ASSIGN_OR_RETURN(auto tm, train::TrainModel::create(*fw, tasks, mo));
    train::TrainerOptions to = r.trainer;
    to.seed                  = r.seed;
    to.checkpoint            = ckpt;
    to.resume                = !o.fresh;
    to.progress              = o.progress;
    to.stop_after            = o.stop_after;
    to.out                   = log;
    nlohmann::json objs      = nlohmann::json::array();
    for (const auto & obj : r.objectives)
        objs.push_back({{"name", obj.name}, {"kind", obj.kind}, {"split", obj.split}, {"prompt", obj.prompt}});
    to.run_extra = {{"objectives", objs},
                    {"data", data.digests["splits"]},
                    {"val_share", r.val_share},
                    {"beta1", r.trainer.adamw.beta1},
                    {"beta2", r.trainer.adamw.beta2}};
    if (o.fresh) fs::remove(ckpt, ec);
    timing["sources"] = since(t0);
    say(fmt::format("full-mode training{}: {} parameters, state {:.1f} MiB, checkpoint {}",
                    r.bf16 ? " (bf16 matmuls)" : "", tm->params().numel(), tm->state_bytes() / 1048576.0, ckpt));
    train::Trainer trainer(*tm, sources, to);
    trainer.on_eval([&](int64_t step, const std::vector<train::EvalResult> & ev) {
        for (const auto & e : ev)
            say(fmt::format("eval step {} {}: loss {:.4f}{}", step, e.task, e.loss,
                            e.accuracy >= 0 ? fmt::format(" accuracy {:.4f}", e.accuracy) : std::string()));
    });
    t0       = Clock::now();
    auto run = trainer.run();
    if (!run && run.status().code() == StatusCode::Incompatible)  // a checkpoint of another run
        return Status(run.status().code(),
                      run.status().message() + " (start over with --fresh, or name another --checkpoint)");
    M4_ASSIGN_OR_RETURN(train::TrainResult tr, std::move(run));
    timing["train"] = since(t0);
    say(fmt::format(
        "trained steps {}…{}: {:.1f} s of updates ({:.1f} samples/s, {:.1f} tokens/s), {:.1f} s with evaluations",
        tr.start_step, tr.end_step, tr.seconds, tr.seconds > 0 ? tr.samples / tr.seconds : 0.0,
        tr.seconds > 0 ? tr.tokens / tr.seconds : 0.0, timing["train"].get<double>()));
    PretrainResult res;
    res.parameters    = tm->params().numel();
    res.start_step    = tr.start_step;
    res.steps         = tr.end_step;
    res.train_seconds = tr.seconds;
    res.final_loss    = tr.losses.empty() ? 0.0f : tr.losses.back();
    res.eval          = tr.eval;
    if (tr.end_step < r.trainer.steps) {  // stopped early (stop_after): the checkpoint holds the state
        res.wall_seconds = since(t_start);
        return res;
    }

    // 6. export with the provenance
    train::FirmwareExport fx;
    fx.name           = r.name;
    fx.weight_dtype   = r.weight_dtype;
    nlohmann::json ev = nlohmann::json::array();
    for (const auto & e : tr.eval) ev.push_back(e.to_json());
    res.wall_seconds     = since(t_start);
    int64_t model_params = 0;
    for (const auto & spec : model::expected_tensors(fw->config())) model_params += spec.shape.numel();
    fx.provenance = {{"kind", "pretrained"},
                     {"recipe", r.json},
                     {"recipe_file", o.recipe},
                     {"recipe_sha256", sha256_hex(recipe_text)},
                     {"command", o.command},
                     {"data", data.digests},
                     {"seed", r.seed},
                     {"steps", r.trainer.steps},
                     {"resumed_at_step", tr.start_step},
                     {"parameters", model_params},
                     {"wall_seconds", res.wall_seconds},
                     {"timing", timing},
                     {"final_train_loss", res.final_loss},
                     {"eval", ev},
                     {"tokenizer",
                      {{"vocab_size", fw->tokenizer().vocab_size()},
                       {"type", r.tokenizer_type},
                       {"sha256", sha256_hex(tok_bytes)}}}};
    M4_RETURN_IF_ERROR(train::export_firmware(*tm, o.out, fx));
    M4_ASSIGN_OR_RETURN(format::ContainerFile f, format::ContainerFile::open(o.out, format::FileKind::Firmware));
    res.finished    = true;
    res.parameters  = model_params;
    res.fingerprint = f.fingerprint();
    res.file_bytes  = f.file_size();
    return res;
}

}  // namespace m4::bench
