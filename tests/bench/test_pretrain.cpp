// The pretraining recipe (src/bench/pretrain.h) at a tiny scale: the committed recipe file with a
// tiny architecture patched in, on a pretraining corpus built at scale 0.01. Checks that the
// firmware loads and runs every path, that its header records the recipe, the data digests, seed,
// steps and time, that a run stopped half-way and rerun ends with the same weights as an
// uninterrupted one (resume + determinism, tokenizer included), and the error messages.
// Skipped (visibly) only when the benchmark's source packages are not installed.
#include <gtest/gtest.h>

#include <set>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "base/crypto.h"
#include "base/mapped_file.h"
#include "bench/pretrain.h"
#include "bench/samples.h"
#include "data/build.h"
#include "data/sources.h"
#include "data/task.h"
#include "model/model.h"

namespace fs = std::filesystem;
using namespace m4;

namespace {

const std::string kRecipe = std::string(M4_SOURCE_DIR) + "/recipes/m4-tiny.json";

std::string temp_dir(const std::string & name) {
    auto d = fs::temp_directory_path() / ("m4_test_pretrain_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d.string();
}

// A tiny architecture and schedule patched onto the committed recipe.
nlohmann::json tiny() {
    nlohmann::json enc = {{"width", 16}, {"layers", 1}, {"heads", 2}, {"ffn", 32}};
    nlohmann::json img = enc;
    img["patch_size"]  = 8;  // 16 image tokens in front of a caption
    return {{"architecture",
             {{"embed_dim", 16},
              {"backbone", {{"width", 32}, {"layers", 1}, {"heads", 2}, {"kv_heads", 1}, {"ffn", 64}, {"max_seq", 64}}},
              {"encoders", {{"image", img}, {"audio", enc}, {"imu", enc}}}}},
            {"tokenizer", {{"vocab_size", 300}}},
            {"data", {{"eval_size", 8}, {"val_share", 0.2}}},
            {"training", {{"batch", 4}, {"warmup", 1}, {"eval_every", 0}, {"checkpoint_every", 2}, {"log_every", 1}}}};
}

// Every tensor's bytes except the header (which holds the wall-clock time).
std::map<std::string, std::string> tensors(const std::string & path) {
    std::map<std::string, std::string> out;
    auto f = format::ContainerFile::open(path, format::FileKind::Firmware);
    EXPECT_TRUE(f.is_ok()) << f.status().message();
    if (!f) return out;
    for (const auto & e : f->entries()) {
        Tensor t = f->tensor(e.name);
        out[e.name].assign(static_cast<const char *>(t.data()), t.nbytes());
    }
    return out;
}

}  // namespace

TEST(Pretrain, ErrorsNameTheFileAndTheFault) {
    const std::string dir = temp_dir("errors");
    bench::PretrainOptions o;
    o.recipe   = kRecipe;
    o.out      = dir + "/fw.m4fw";
    o.work_dir = dir + "/work";
    o.data_dir = dir + "/no-data";
    o.log      = nullptr;
    auto r     = bench::run_pretrain(o);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::NotFound);
    EXPECT_NE(r.status().message().find(dir + "/no-data/pretrain/manifest.json"), std::string::npos);
    EXPECT_NE(r.status().message().find("m4fw data build pretrain"), std::string::npos) << r.status().message();

    o.recipe = dir + "/missing.json";
    r        = bench::run_pretrain(o);
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find(dir + "/missing.json"), std::string::npos);

    nlohmann::json bad = {{"objectives", {{{"name", "x"}, {"kind", "dance"}, {"split", "text"}}}}};
    auto j             = nlohmann::json::parse(read_file_bytes(kRecipe).value());
    j.merge_patch(bad);
    auto p = bench::parse_pretrain_recipe(j, "r.json");
    ASSERT_FALSE(p.is_ok());
    EXPECT_NE(p.status().message().find("r.json: objectives[0]"), std::string::npos) << p.status().message();
    j.erase("architecture");
    p = bench::parse_pretrain_recipe(j, "r.json");
    ASSERT_FALSE(p.is_ok());
    EXPECT_NE(p.status().message().find("\"architecture\""), std::string::npos);
}

// m4-small (the default firmware's recipe to be) pretrains every path in one run: the encoders
// (contrastive), the backbone (lm), the full path (caption), path 4's image decoder (reconstruct),
// the full path into the image decoder (draw, img.draw_scene's train split) and path 4's speech
// decoder (mel_regress, aud.tts's train split); only the decoders' objectives may name a task.
TEST(Pretrain, SmallRecipeCoversEveryPath) {
    auto j = nlohmann::json::parse(read_file_bytes(std::string(M4_SOURCE_DIR) + "/recipes/m4-small.json").value());
    auto r = bench::parse_pretrain_recipe(j, "m4-small.json");
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    std::set<std::string> kinds;
    for (const auto & o : r->objectives) {
        kinds.insert(o.kind);
        if (o.kind == "draw") EXPECT_EQ(o.task, "img.draw_scene");
        if (o.kind == "mel_regress") EXPECT_EQ(o.task, "aud.tts");
        if (o.kind == "draw" || o.kind == "mel_regress") EXPECT_EQ(o.split, "train");  // never val or test
    }
    EXPECT_EQ(kinds, (std::set<std::string>{"lm", "contrastive", "caption", "reconstruct", "draw", "mel_regress"}));
    nlohmann::json arch = r->architecture;
    arch["text"]        = {{"vocab_size", r->vocab_size}};  // as the pretraining probes it
    auto c              = model::parse_model_config(arch);
    ASSERT_TRUE(c.is_ok()) << c.status().message();
    EXPECT_TRUE(c->has_draw_path());
    EXPECT_TRUE(c->has_decoder(model::Modality::Audio));
    for (auto m : {model::Modality::Image, model::Modality::Audio, model::Modality::Imu})
        EXPECT_TRUE(c->has_encoder(m));

    auto bad                     = j;
    bad["objectives"][0]["task"] = "txt.topic";  // an lm objective reads the corpus
    const auto st                = bench::parse_pretrain_recipe(bad, "r.json").status();
    EXPECT_NE(st.message().find("only draw, reconstruct and mel_regress objectives name a \"task\""), std::string::npos)
        << st.message();
}

TEST(Pretrain, TinyRecipeRecordsProvenanceAndResumesExactly) {
    const auto * task = data::find_task(data::kPretrain);
    ASSERT_NE(task, nullptr);
    if (!data::require_packages(data::kPretrain, task->info.packages).is_ok())
        GTEST_SKIP() << "benchmark sources not installed (scripts/install-deps.sh)";
    const std::string dir = temp_dir("run");
    data::BuildOptions bo;
    bo.dir   = dir + "/data";
    bo.scale = 0.01;
    bo.quiet = true;
    ASSERT_TRUE(data::build_tasks({data::kPretrain}, bo).is_ok());

    // 1. uninterrupted: 4 updates
    bench::PretrainOptions o;
    o.recipe    = kRecipe;
    o.data_dir  = bo.dir;
    o.overrides = tiny();
    o.steps     = 4;
    o.progress  = train::Progress::Off;
    o.log       = nullptr;
    o.out       = dir + "/a.m4fw";
    o.work_dir  = dir + "/a.work";
    o.command   = "test";
    auto a      = bench::run_pretrain(o);
    ASSERT_TRUE(a.is_ok()) << a.status().message();
    EXPECT_TRUE(a->finished);
    EXPECT_EQ(a->steps, 4);
    ASSERT_EQ(a->eval.size(), 7u);  // every objective of the recipe is evaluated
    for (const auto & e : a->eval) EXPECT_TRUE(std::isfinite(e.loss)) << e.task;

    // The firmware loads, runs every path, and its header records where it came from.
    auto fw = model::Model::load(o.out);
    ASSERT_TRUE(fw.is_ok()) << fw.status().message();
    EXPECT_EQ((*fw)->config().backbone.width, 32);
    EXPECT_EQ((*fw)->config().name, "m4-tiny");
    const nlohmann::json & prov = (*fw)->file().header()["provenance"];
    EXPECT_EQ(prov["kind"], "pretrained");
    EXPECT_EQ(prov["seed"], nlohmann::json::parse(read_file_bytes(kRecipe).value())["seed"]);
    EXPECT_EQ(prov["steps"], 4);
    EXPECT_EQ(prov["recipe"]["architecture"]["backbone"]["width"], 32);
    EXPECT_EQ(prov["recipe"]["training"]["steps"], 4);
    EXPECT_EQ(prov["recipe_sha256"],
              to_hex(sha256(read_file_bytes(kRecipe).value().data(), read_file_bytes(kRecipe).value().size())));
    const std::string manifest = read_file_bytes(bo.dir + "/pretrain/manifest.json").value();
    EXPECT_EQ(prov["data"]["manifest_sha256"], to_hex(sha256(manifest.data(), manifest.size())));
    for (const char * s : {"text", "image_caption", "audio_caption", "imu_caption"})
        EXPECT_EQ(prov["data"]["splits"][s]["sha256"], data::file_sha256(bo.dir + "/pretrain/" + s + ".m4ds").value())
            << s;
    EXPECT_GT(prov["wall_seconds"].get<double>(), 0.0);
    EXPECT_EQ(prov["parameters"], a->parameters);
    EXPECT_EQ(prov["tokenizer"]["vocab_size"], (*fw)->tokenizer().vocab_size());
    model::Request img;
    img.signal.assign(static_cast<size_t>((*fw)->config().encoder(model::Modality::Image).input_values()), 0.1f);
    img.tokens = (*fw)->tokenizer().encode("a photo of a bag").value();
    for (model::Path p : {model::Path::Encoder, model::Path::Full}) {
        auto out = (*fw)->run(p, model::Modality::Image, {&img, 1});
        EXPECT_TRUE(out.is_ok()) << out.status().message();
    }
    model::GenerateOptions go;
    go.max_new_tokens = 4;
    auto gen          = (*fw)->generate(model::Path::Backbone, model::Modality::Text, {&img, 1}, go);
    EXPECT_TRUE(gen.is_ok()) << gen.status().message();

    // Text windows of the LM objective: pieces of one document that fit the backbone; a long
    // document yields different windows at different offsets, each starting at a line or word start.
    train::TaskSpec lm;
    lm.name      = "lm";
    lm.objective = train::Objective::LanguageModel;
    lm.path      = model::Path::Backbone;
    lm.modality  = model::Modality::Text;
    auto src     = bench::TextWindowSource::create(lm, bo.dir, data::kPretrain, **fw, {});
    ASSERT_TRUE(src.is_ok()) << src.status().message();
    train::Rng rng(7);
    train::Batch batch;
    ASSERT_TRUE((*src)->next_batch(rng, 64, &batch).is_ok());
    for (const auto & s : batch) {
        EXPECT_GE(s.tokens.size(), 1u);
        EXPECT_LE(s.tokens.size(), 63u);  // max_seq 64 − BOS
        EXPECT_EQ(s.loss_mask.size(), s.tokens.size());
    }
    const data::Dataset & ds = (*src)->dataset();
    size_t longest           = 0;
    for (size_t i = 0; i < ds.size(); ++i)
        if (ds.at(i).payload_len > ds.at(longest).payload_len) longest = i;
    const std::string_view doc = ds.at(longest).text();
    ASSERT_GT(doc.size(), 2000u);
    auto w0 = (*src)->window(longest, 0).value(), w1 = (*src)->window(longest, doc.size() / 2).value();
    EXPECT_EQ(w0.tokens.size(), 63u);
    EXPECT_NE(w0.tokens, w1.tokens);
    const std::string t1 = (*fw)->tokenizer().decode(w1.tokens);
    const size_t at      = doc.find(t1.substr(0, 6));
    ASSERT_NE(at, std::string_view::npos) << t1;
    EXPECT_TRUE(at == 0 || doc[at - 1] == '\n' || doc[at - 1] == ' ') << t1;

    // 2. the same run stopped after 2 updates (own work dir: tokenizer trained again), then rerun:
    //    it continues from the checkpoint and ends with the same weights.
    o.out        = dir + "/b.m4fw";
    o.work_dir   = dir + "/b.work";
    o.stop_after = 2;
    auto b1      = bench::run_pretrain(o);
    ASSERT_TRUE(b1.is_ok()) << b1.status().message();
    EXPECT_FALSE(b1->finished);
    EXPECT_FALSE(fs::exists(o.out));
    o.stop_after = -1;
    auto b2      = bench::run_pretrain(o);
    ASSERT_TRUE(b2.is_ok()) << b2.status().message();
    EXPECT_TRUE(b2->finished);
    EXPECT_EQ(b2->start_step, 2);
    EXPECT_EQ(b2->final_loss, a->final_loss);
    EXPECT_EQ(read_file_bytes(dir + "/a.work/tokenizer.model").value(),
              read_file_bytes(dir + "/b.work/tokenizer.model").value());
    const auto ta = tensors(dir + "/a.m4fw"), tb = tensors(dir + "/b.m4fw");
    ASSERT_EQ(ta.size(), tb.size());
    int differ = 0;
    for (const auto & [name, bytes] : ta) {
        auto it = tb.find(name);
        if (it == tb.end() || it->second != bytes) ADD_FAILURE() << name << " differs", ++differ;
        if (differ > 5) break;
    }

    // 3. a changed recipe does not silently continue another run's checkpoint
    o.overrides["training"]["lr"] = 5e-3;
    auto c                        = bench::run_pretrain(o);
    ASSERT_FALSE(c.is_ok());
    EXPECT_EQ(c.status().code(), StatusCode::Incompatible);
    EXPECT_NE(c.status().message().find("--fresh"), std::string::npos) << c.status().message();
    if (!HasFailure()) fs::remove_all(dir);
}
