// `m4fw data audit`: proves by content hash that no test example occurs in a train split (of any
// task) or in the pretraining corpus. Test texts are also compared after normalisation (case,
// whitespace) with every train text and every pretraining text record and line.
#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <set>

#include "data/build.h"
#include "data/dataset.h"
#include "data/sources.h"

namespace m4::data {

namespace fs = std::filesystem;

namespace {

struct SplitRef {
    std::string task, split;
};

bool is_test_split(const std::string & s) {
    return s.rfind("test", 0) == 0;
}

}  // namespace

Status audit(const std::string & dir, AuditReport * rep) {
    *rep = AuditReport{};
    std::vector<std::string> tasks;
    std::error_code ec;
    for (const auto & e : fs::directory_iterator(dir, ec))
        if (e.is_directory() && fs::exists(e.path() / "manifest.json")) tasks.push_back(e.path().filename().string());
    if (ec) return not_found(dir + ": cannot read the data directory (" + ec.message() + ")");
    std::sort(tasks.begin(), tasks.end());
    if (tasks.empty()) return not_found(dir + ": no built task (run `m4fw data build --all`)");

    auto finding = [&](std::string s) {
        if (rep->findings.size() < 50) rep->findings.push_back(std::move(s));
    };
    // Content hash → where it was first seen on the training side; same for normalised texts.
    std::map<ContentHash, SplitRef> train, pretrain;
    std::map<ContentHash, SplitRef> train_text, pretrain_text;
    std::vector<std::pair<SplitRef, Dataset>> tests;
    size_t faults = 0;

    for (const auto & task : tasks) {
        auto text = read_file_bytes(dir + "/" + task + "/manifest.json");
        auto man  = nlohmann::json::parse(text ? text.value() : "", nullptr, false);
        if (man.is_discarded() || !man.contains("splits")) {
            finding(task + ": manifest.json unreadable");
            ++faults;
            continue;
        }
        const bool is_pretrain = task == kPretrain;
        if (!is_pretrain) ++rep->tasks;
        for (auto & [split, sp] : man["splits"].items()) {
            auto ds = Dataset::open(dir, task, split);
            if (!ds) {
                finding(ds.status().message());
                ++faults;
                continue;
            }
            if (Status st = ds->verify(); !st.is_ok()) {
                finding(st.message());
                ++faults;
                continue;
            }
            auto sha = file_sha256(ds->path());
            if (!sha || sha.value() != sp.value("sha256", "")) {
                finding(ds->path() + ": SHA-256 differs from the manifest (file changed after the build)");
                ++faults;
                continue;
            }
            SplitRef ref{task, split};
            if (!is_pretrain && is_test_split(split)) {
                rep->test_examples += ds->size();
                tests.emplace_back(ref, std::move(ds.value()));
                continue;
            }
            auto & hashes = is_pretrain ? pretrain : train;
            auto & texts  = is_pretrain ? pretrain_text : train_text;
            (is_pretrain ? rep->pretrain_records : rep->train_examples) += ds->size();
            for (size_t i = 0; i < ds->size(); ++i) {
                Example ex = ds->at(i);
                hashes.emplace(ex.hash, ref);
                if (ds->modality() != Modality::Text) continue;
                texts.emplace(text_hash(ex.text()), ref);
                if (is_pretrain) {
                    // Every line of a pretraining document too: a test sentence must not hide in one.
                    std::string_view t = ex.text();
                    size_t a           = 0;
                    while (a < t.size()) {
                        size_t b = t.find('\n', a);
                        if (b == std::string_view::npos) b = t.size();
                        if (b > a) texts.emplace(text_hash(t.substr(a, b - a)), ref);
                        a = b + 1;
                    }
                }
            }
        }
    }

    for (const auto & [ref, ds] : tests) {
        for (size_t i = 0; i < ds.size(); ++i) {
            Example ex  = ds.at(i);
            auto report = [&](const char * what, const SplitRef & where) {
                ++rep->leaks;
                finding(fmt::format("LEAK {}/{} example {}: {} {}/{}", ref.task, ref.split, i, what, where.task,
                                    where.split));
            };
            if (auto it = train.find(ex.hash); it != train.end()) report("occurs in", it->second);
            if (auto it = pretrain.find(ex.hash); it != pretrain.end()) report("occurs in", it->second);
            if (ds.modality() == Modality::Text) {
                ContentHash th = text_hash(ex.text());
                if (auto it = train_text.find(th); it != train_text.end() && !train.count(ex.hash))
                    report("text occurs (normalised) in", it->second);
                if (auto it = pretrain_text.find(th); it != pretrain_text.end() && !pretrain.count(ex.hash))
                    report("text occurs (normalised) in", it->second);
            }
        }
    }
    // Tasks whose manifest says "held_out_words" (aud.tts): no word (the example's target text) and
    // no voice (its group) of a val or test split occurs in the task's train split.
    for (const auto & task : tasks) {
        auto text = read_file_bytes(dir + "/" + task + "/manifest.json");
        auto man  = nlohmann::json::parse(text ? text.value() : "", nullptr, false);
        if (man.is_discarded() || !man.value("held_out_words", false) || !man.contains("splits")) continue;
        auto train_ds = Dataset::open(dir, task, "train");
        if (!train_ds) continue;  // reported above
        std::set<std::string> words;
        std::set<uint32_t> voices;
        for (size_t i = 0; i < train_ds->size(); ++i) {
            Example ex = train_ds->at(i);
            words.insert(std::string(ex.target));
            voices.insert(ex.group);
        }
        for (auto & [split, sp] : man["splits"].items()) {
            if (split == "train" || split == "text") continue;
            auto ds = Dataset::open(dir, task, split);
            if (!ds) continue;
            for (size_t i = 0; i < ds->size(); ++i) {
                Example ex = ds->at(i);
                if (words.count(std::string(ex.target))) {
                    ++rep->leaks;
                    finding(fmt::format("LEAK {}/{} example {}: held-out word '{}' occurs in {}/train", task, split, i,
                                        std::string(ex.target), task));
                }
                if (voices.count(ex.group)) {
                    ++rep->leaks;
                    finding(fmt::format("LEAK {}/{} example {}: held-out voice {} occurs in {}/train", task, split, i,
                                        ex.group, task));
                }
            }
        }
    }
    if (rep->leaks || faults)
        return invalid_argument(
            fmt::format("{}: audit failed: {} leaked test examples, {} faulty files", dir, rep->leaks, faults));
    return Status::ok();
}

}  // namespace m4::data
