// The engine a long-running process (the m4fwd daemon, a benchmark) keeps: one verified, mapped
// firmware and an LRU cache of bound adapters within a memory budget.
//
//     auto engine = Engine::open("m4-tiny.m4fw", {.adapter_budget_bytes = 64 << 20});
//     auto ad = (*engine)->adapter("/var/lib/m4/apps/1000/shirt.m4a");   // loads + binds on a miss
//     auto item = prepare_item((*engine)->model(), &(*ad)->manifest(), input, "");
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "adapter/adapter.h"

namespace m4::runtime {

struct EngineOptions {
    const PublicKey * public_key           = nullptr;  // require a firmware signed by this key
    uint64_t          adapter_budget_bytes = 256ull << 20;
};

class Engine {
  public:
    static Result<std::unique_ptr<Engine>> open(const std::string & firmware_path, const EngineOptions & options = {});

    const model::Model & model() const { return *model_; }
    const std::string &  firmware_path() const { return firmware_path_; }

    // The adapter at `path`, loaded and bound to this firmware on a cache miss. The returned
    // pointer stays valid for its holder even if the cache evicts the entry.
    Result<std::shared_ptr<const adapter::Adapter>> adapter(const std::string & path);
    void                                            evict(const std::string & path);

    size_t   adapters_cached() const;
    uint64_t adapter_cache_bytes() const;
    // Bytes of the cached adapters whose path starts with `prefix` (one app's store directory).
    uint64_t adapter_cache_bytes(const std::string & prefix) const;

  private:
    struct Entry {
        std::shared_ptr<const adapter::Adapter> adapter;
        std::list<std::string>::iterator        lru;
    };
    std::unique_ptr<model::Model>          model_;
    std::string                            firmware_path_;
    EngineOptions                          options_;
    mutable std::mutex                     mu_;
    std::unordered_map<std::string, Entry> cache_;
    std::list<std::string>                 lru_;  // front = most recent
    uint64_t                               cache_bytes_ = 0;
};

// One input as a client sends it.
struct InputSpec {
    model::Modality    modality = model::Modality::Text;
    std::string        text;            // text inputs
    std::vector<float> signal;          // already decoded values
    std::string        encoded;         // an image / audio / CSV file's bytes
    std::string        name = "input";  // for error messages
};

// Text longer than this many bytes cannot fit in the backbone's context whatever it tokenises to;
// check_text_length refuses it (naming `name`) before any tokenising, and text that is not UTF-8.
uint64_t max_text_bytes(const model::Model & m);
Status   check_text_length(const model::Model & m, const std::string & text, const std::string & name);

// Turns an input into a model request for the adapter's path (or, without an adapter, the path
// given): decodes, tokenizes with the adapter's prompt template, checks sizes and that every value
// is finite. Errors name `name`.
Result<model::Request> prepare_item(const model::Model & m, model::Path path, const adapter::Manifest * manifest,
                                    const InputSpec & input, const std::string & prompt);

}  // namespace m4::runtime
