// src/data: the .m4ds format (round trip, refusing corrupt files), deterministic builds, and the
// audit catching a test example planted in a train split.
#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>

#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "base/mapped_file.h"
#include "data/build.h"
#include "data/dataset.h"
#include "data/sources.h"
#include "data/task.h"

namespace fs = std::filesystem;
using namespace m4;
using namespace m4::data;

namespace {

std::string temp_dir(const std::string & name) {
    auto d = fs::temp_directory_path() / ("m4_test_data_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d.string();
}

// Tasks whose sources are installed, from `want`; the test is skipped (visibly) when none is.
std::vector<std::string> available(const std::vector<std::string> & want) {
    std::vector<std::string> out;
    for (const auto & t : want)
        if (require_packages(t, find_task(t)->info.packages).is_ok()) out.push_back(t);
    return out;
}

}  // namespace

TEST(DataFormat, RoundTripEveryModality) {
    const std::string dir  = temp_dir("rt");
    const std::string path = dir + "/x.m4ds";
    {
        DatasetWriter w(path, Modality::Audio);
        ExampleIn a = ExampleIn::audio({0.0f, 0.5f, -0.5f, 1.5f});
        a.label     = 3;
        a.target    = "hello";
        a.prompt    = "say it";
        a.value     = 2.5f;
        a.group     = 7;
        ASSERT_TRUE(w.add(a).value());
        EXPECT_FALSE(w.add(a).value());  // duplicate dropped
        ExampleIn b = ExampleIn::audio({0.25f});
        ASSERT_TRUE(w.add(b).value());
        ASSERT_TRUE(w.finish().is_ok());
        EXPECT_EQ(w.count(), 2u);
        EXPECT_EQ(w.dropped(), 1u);
    }
    auto ds = Dataset::open_file(path);
    ASSERT_TRUE(ds.is_ok()) << ds.status().message();
    ASSERT_EQ(ds->size(), 2u);
    EXPECT_EQ(ds->modality(), Modality::Audio);
    Example e = ds->at(0);
    EXPECT_EQ(e.label, 3);
    EXPECT_EQ(e.target, "hello");
    EXPECT_EQ(e.prompt, "say it");
    EXPECT_FLOAT_EQ(e.value, 2.5f);
    EXPECT_EQ(e.group, 7u);
    EXPECT_EQ(e.dims[0], 4u);
    auto s = ds->audio_f32(0);
    ASSERT_EQ(s.size(), 4u);
    EXPECT_NEAR(s[1], 0.5f, 1e-4);
    EXPECT_NEAR(s[3], 1.0f, 1e-4);  // clamped
    EXPECT_TRUE(ds->verify().is_ok());

    for (Modality m : {Modality::Image, Modality::Imu, Modality::Text}) {
        DatasetWriter w(dir + "/m.m4ds", m);
        ExampleIn x = m == Modality::Image ? ExampleIn::image({1, 2, 3, 4, 5, 6}, 1, 2, 3)
                      : m == Modality::Imu ? ExampleIn::imu({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
                                           : ExampleIn::text("héllo wörld");
        ASSERT_TRUE(w.add(x).value());
        ASSERT_TRUE(w.finish().is_ok());
        auto r = Dataset::open_file(dir + "/m.m4ds");
        ASSERT_TRUE(r.is_ok());
        Example y = r->at(0);
        ASSERT_EQ(y.payload_len, x.payload.size());
        EXPECT_EQ(0, std::memcmp(y.payload, x.payload.data(), x.payload.size()));
        EXPECT_EQ(y.dims[0], x.dims[0]);
        EXPECT_EQ(y.label, -1);
        if (m == Modality::Imu) {
            EXPECT_FLOAT_EQ(r->imu_f32(0)[11], 12.0f);
        }
        if (m == Modality::Text) {
            EXPECT_EQ(y.text(), "héllo wörld");
        }
    }
    fs::remove_all(dir);
}

TEST(DataFormat, RefusesCorruptFiles) {
    const std::string dir  = temp_dir("bad");
    const std::string path = dir + "/x.m4ds";
    DatasetWriter w(path, Modality::Text);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(w.add(ExampleIn::text("example " + std::to_string(i))).is_ok());
    ASSERT_TRUE(w.finish().is_ok());
    std::string bytes = read_file_bytes(path).value();
    auto write        = [&](const std::string & b) { std::ofstream(path, std::ios::binary) << b; };

    write(bytes.substr(0, bytes.size() - 10));
    auto r = Dataset::open_file(path);
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("x.m4ds"), std::string::npos);
    EXPECT_NE(r.status().message().find("truncated"), std::string::npos);

    write("XXXX" + bytes.substr(4));
    r = Dataset::open_file(path);
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("bad magic"), std::string::npos);

    std::string flipped = bytes;
    flipped[64 + 2] ^= 0x20;  // a payload byte of the first example
    write(flipped);
    r = Dataset::open_file(path);
    ASSERT_TRUE(r.is_ok());
    Status v = r->verify();
    ASSERT_FALSE(v.is_ok());
    EXPECT_NE(v.message().find("content hash"), std::string::npos);

    auto missing = Dataset::open(dir, "no.such_task", "train");
    ASSERT_FALSE(missing.is_ok());
    EXPECT_NE(missing.status().message().find("m4fw data build no.such_task"), std::string::npos);
    fs::remove_all(dir);
}

TEST(DataBuild, EveryGroupHasAtLeastFourTasks) {
    std::map<std::string, int> per_group;
    for (const auto & t : all_tasks()) per_group[t.info.group]++;
    for (const char * g : {"image", "text", "audio", "imu", "multimodal"}) EXPECT_GE(per_group[g], 4) << g;
    EXPECT_GE(all_tasks().size() - per_group["pretrain"], 32u);
}

TEST(DataBuild, TwoBuildsAreIdentical) {
    auto tasks = available({"img.shapes", "img.char_ocr", "txt.lang_id", "aud.kws", "imu.har", "mm.vqa"});
    if (tasks.size() < 3) GTEST_SKIP() << "benchmark sources not installed (scripts/install-deps.sh)";
    BuildOptions opt;
    opt.scale = 0.01;
    opt.quiet = true;
    opt.dir   = temp_dir("det_a");
    ASSERT_TRUE(build_tasks(tasks, opt).is_ok());
    const std::string a = opt.dir;
    opt.dir             = temp_dir("det_b");
    opt.jobs            = 1;  // a different schedule must not matter
    ASSERT_TRUE(build_tasks(tasks, opt).is_ok());
    for (const auto & t : tasks) {
        for (const char * split : {"train", "test"}) {
            auto ha = file_sha256(a + "/" + t + "/" + split + ".m4ds");
            auto hb = file_sha256(opt.dir + "/" + t + "/" + split + ".m4ds");
            ASSERT_TRUE(ha.is_ok() && hb.is_ok()) << t;
            EXPECT_EQ(ha.value(), hb.value()) << t << "/" << split;
        }
    }
    fs::remove_all(a);
    fs::remove_all(opt.dir);
}

TEST(DataAudit, CatchesAPlantedLeak) {
    auto tasks = available({"img.shapes", "txt.topic", "imu.har"});
    if (tasks.empty()) GTEST_SKIP() << "benchmark sources not installed";
    BuildOptions opt;
    opt.scale = 0.01;
    opt.quiet = true;
    opt.dir   = temp_dir("audit");
    ASSERT_TRUE(build_tasks(tasks, opt).is_ok());
    AuditReport rep;
    Status st = audit(opt.dir, &rep);
    ASSERT_TRUE(st.is_ok()) << st.message();
    EXPECT_EQ(rep.leaks, 0u);
    EXPECT_GT(rep.test_examples, 0u);

    // Plant: rewrite one task's train split with test example 0 appended, and update the manifest
    // so that only the content hashes can tell.
    const std::string t = tasks[0], tdir = opt.dir + "/" + t;
    auto train = Dataset::open(opt.dir, t, "train").value();
    auto test  = Dataset::open(opt.dir, t, "test").value();
    DatasetWriter w(tdir + "/train.new", train.modality());
    auto copy = [&](const Dataset & d, size_t i) {
        Example e = d.at(i);
        ExampleIn x;
        x.payload.assign(e.payload, e.payload + e.payload_len);
        std::copy(e.dims, e.dims + 3, x.dims);
        x.prompt = std::string(e.prompt);
        x.target = std::string(e.target);
        x.label  = e.label;
        return x;
    };
    for (size_t i = 0; i < train.size(); ++i) ASSERT_TRUE(w.add(copy(train, i)).is_ok());
    ASSERT_TRUE(w.add(copy(test, 0)).value());
    ASSERT_TRUE(w.finish().is_ok());
    fs::rename(tdir + "/train.new", tdir + "/train.m4ds");
    auto man                         = nlohmann::json::parse(read_file_bytes(tdir + "/manifest.json").value());
    man["splits"]["train"]["count"]  = w.count();
    man["splits"]["train"]["bytes"]  = w.bytes();
    man["splits"]["train"]["sha256"] = w.sha256_hex();
    std::ofstream(tdir + "/manifest.json") << man.dump(2);

    st = audit(opt.dir, &rep);
    EXPECT_FALSE(st.is_ok());
    EXPECT_EQ(rep.leaks, 1u);
    ASSERT_FALSE(rep.findings.empty());
    EXPECT_NE(rep.findings[0].find("LEAK " + t + "/test example 0"), std::string::npos) << rep.findings[0];

    // A file changed after the build (manifest not updated) is a fault, not silently accepted.

    {
        std::fstream f(tdir + "/test.m4ds", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(70);
        f.put('\x55');
    }
    st = audit(opt.dir, &rep);
    EXPECT_FALSE(st.is_ok());
    fs::remove_all(opt.dir);
}

// A test text that occurs, up to case and spacing, in an excluded set (earlier splits, pretraining
// text) is dropped; a different text is kept.
TEST(DataFormat, ExcludedTextsAreDroppedUpToCaseAndSpacing) {
    const std::string dir = temp_dir("exclude_texts");
    HashSet banned        = {text_hash("There is NO WARRANTY, to the extent permitted by law.")};
    DatasetWriter w(dir + "/test.m4ds", Modality::Text);
    w.exclude_texts(banned);
    auto a = w.add(ExampleIn::text("there is no warranty,  to the extent permitted by law."));
    ASSERT_TRUE(a.is_ok());
    EXPECT_FALSE(a.value());
    auto b = w.add(ExampleIn::text("Another sentence."));
    ASSERT_TRUE(b.is_ok());
    EXPECT_TRUE(b.value());
    ASSERT_TRUE(w.finish().is_ok());
    EXPECT_EQ(w.count(), 1u);
    EXPECT_EQ(w.dropped(), 1u);
    EXPECT_EQ(w.text_hashes().size(), 1u);
}

// Every pretraining text line is in the index the text tasks' test splits are filtered by.
TEST(DataBuild, PretrainTextIndexCoversDocumentLines) {
    if (available({"txt.translate"}).empty()) GTEST_SKIP() << "benchmark sources not installed";
    auto idx = pretrain_text_index();
    ASSERT_TRUE(idx.is_ok()) << idx.status().message();
    EXPECT_GT(idx.value()->size(), 10000u);
    EXPECT_TRUE(idx.value()->count(text_hash("There is NO WARRANTY, to the extent permitted by law.")));
}

// The IMU window is a build option: every simulated IMU task (and the pretraining corpus's
// imu_caption) writes windows of exactly `imu_rows` rows; a non-default length changes the cache
// key and is recorded in the manifest, the default leaves both as they were; bad lengths are refused.
TEST(DataBuild, ImuWindowLengthIsABuildOption) {
    auto tasks = available({"imu.har", "imu.gesture", "mm.imu_caption"});
    if (tasks.empty()) GTEST_SKIP() << "benchmark sources not installed";
    BuildOptions opt;
    opt.scale = 0.01;
    opt.quiet = true;
    for (int rows : {kImuRowsDefault, 150}) {
        opt.imu_rows = rows;
        opt.dir      = temp_dir("imu_rows_" + std::to_string(rows));
        ASSERT_TRUE(build_tasks(tasks, opt).is_ok());
        for (const auto & t : tasks) {
            for (const char * split : {"train", "test"}) {
                auto ds = Dataset::open(opt.dir, t, split);
                ASSERT_TRUE(ds.is_ok()) << ds.status().message();
                ASSERT_GT(ds->size(), 0u);
                for (size_t i = 0; i < ds->size(); ++i) {
                    const Example e = ds->at(i);
                    ASSERT_EQ(e.dims[0], uint32_t(rows)) << t << "/" << split << " example " << i;
                    ASSERT_EQ(e.dims[1], 6u);
                    ASSERT_EQ(e.payload_len, size_t(rows) * 6 * sizeof(float));
                }
            }
            auto man = nlohmann::json::parse(read_file_bytes(opt.dir + "/" + t + "/manifest.json").value());
            if (rows == kImuRowsDefault) {
                EXPECT_FALSE(man.contains("imu_rows")) << t;
            } else {
                EXPECT_EQ(man.value("imu_rows", 0), rows) << t;
            }
        }
        fs::remove_all(opt.dir);
    }
    BuildOptions def, longer;
    longer.imu_rows = 150;
    EXPECT_NE(cache_key("imu.har", def).value(), cache_key("imu.har", longer).value());
    if (!available({"img.shapes"}).empty()) {  // tasks without IMU windows keep their key
        EXPECT_EQ(cache_key("img.shapes", def).value(), cache_key("img.shapes", longer).value());
    }
    longer.imu_rows = 5;
    Status st       = build_tasks(tasks, longer);
    ASSERT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find("IMU window of 5 rows"), std::string::npos) << st.message();
}

// aud.tts holds out words and voices: a small build audits clean, its test words are exactly the
// recognisers' 20 labels; a val word (with another voice and audio, so no content hash matches)
// planted in train is a held-out-word leak, and a train example re-labelled with a held-out voice
// a held-out-voice leak.
TEST(DataAudit, TtsHeldOutWordsAndVoices) {
    auto tasks = available({"aud.tts"});
    if (tasks.empty()) GTEST_SKIP() << "benchmark sources not installed";
    BuildOptions opt;
    opt.scale = 0.005;
    opt.quiet = true;
    opt.dir   = temp_dir("audit_tts");
    ASSERT_TRUE(build_tasks(tasks, opt).is_ok());
    AuditReport rep;
    Status st = audit(opt.dir, &rep);
    ASSERT_TRUE(st.is_ok()) << st.message();
    auto train = Dataset::open(opt.dir, "aud.tts", "train").value();
    auto val   = Dataset::open(opt.dir, "aud.tts", "val").value();
    auto test  = Dataset::open(opt.dir, "aud.tts", "test").value();
    std::set<std::string> test_words;
    for (size_t i = 0; i < test.size(); ++i) test_words.insert(std::string(test.at(i).target));
    EXPECT_EQ(test_words.size(), 20u);
    EXPECT_TRUE(test_words.count("seven") && test_words.count("left"));
    const std::string tdir = opt.dir + "/aud.tts";
    auto rewrite           = [&](const std::function<void(ExampleIn &, size_t)> & edit) {
        DatasetWriter w(tdir + "/train.new", train.modality());
        for (size_t i = 0; i < train.size(); ++i) {
            Example e = train.at(i);
            ExampleIn x;
            x.payload.assign(e.payload, e.payload + e.payload_len);
            x.target = std::string(e.target);
            x.label  = e.label;
            x.group  = e.group;
            edit(x, i);
            ASSERT_TRUE(w.add(x).is_ok());
        }
        ASSERT_TRUE(w.finish().is_ok());
        fs::rename(tdir + "/train.new", tdir + "/train.m4ds");
        auto man                         = nlohmann::json::parse(read_file_bytes(tdir + "/manifest.json").value());
        man["splits"]["train"]["count"]  = w.count();
        man["splits"]["train"]["bytes"]  = w.bytes();
        man["splits"]["train"]["sha256"] = w.sha256_hex();
        std::ofstream(tdir + "/manifest.json") << man.dump(2);
        train = Dataset::open(opt.dir, "aud.tts", "train").value();
    };
    const std::string val_word = std::string(val.at(0).target);
    const uint32_t train_voice = train.at(0).group, val_voice = val.at(0).group;
    rewrite([&](ExampleIn & x, size_t i) {
        if (i == 0) x.target = val_word;  // the audio stays train example 0's
    });
    st = audit(opt.dir, &rep);
    EXPECT_FALSE(st.is_ok());
    ASSERT_FALSE(rep.findings.empty());
    EXPECT_NE(rep.findings[0].find("held-out word '" + val_word + "' occurs in aud.tts/train"), std::string::npos)
        << rep.findings[0];
    rewrite([&](ExampleIn & x, size_t i) {
        if (i == 0) x.target = "zzzq", x.group = val_voice;
    });
    EXPECT_NE(train_voice, val_voice);
    st = audit(opt.dir, &rep);
    EXPECT_FALSE(st.is_ok());
    ASSERT_FALSE(rep.findings.empty());
    EXPECT_NE(rep.findings[0].find("held-out voice"), std::string::npos) << rep.findings[0];
    fs::remove_all(opt.dir);
}
