// The adapter store: one directory per app (by uid) plus a shared directory for adapters the admin
// published. Writes are durable and atomic — temp file, fsync, verify, rename, fsync the directory
// — so a kill -9 at any moment leaves every acknowledged adapter intact and no half-written one
// visible (temp files are swept at start-up).
//
//     <root>/apps/<uid>/<name>.m4a      <root>/shared/<name>.m4a
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"

namespace m4::svc {

struct StoreQuota {
    uint64_t max_bytes = 64ull << 20;  // per app
    uint32_t max_count = 64;           // per app
};

struct StoredAdapter {
    std::string name;
    std::string path;
    uint64_t    bytes = 0;
};

class AdapterStore {
  public:
    explicit AdapterStore(std::string root) : root_(std::move(root)) {}
    // Creates the directories and removes temp files a crash left behind.
    Status open();

    static Status check_name(const std::string & name);  // [A-Za-z0-9._-]{1,64}, not starting with '.'

    // Stores `bytes` as app `uid`'s adapter `name`. `verify(temp_path)` runs on the durable temp
    // file before it becomes visible; an error there leaves the store unchanged.
    Result<std::string> put(uint32_t uid, const std::string & name, const std::string & bytes, bool replace,
                            const StoreQuota & quota, const std::function<Status(const std::string &)> & verify);
    Status              remove(uint32_t uid, const std::string & name);
    std::vector<StoredAdapter> list(uint32_t uid) const;
    std::vector<StoredAdapter> list_shared() const;
    std::vector<uint32_t>      apps() const;  // uids with a directory
    // The file of an app's (or a shared) adapter, or NOT_FOUND.
    Result<std::string> find(uint32_t uid, const std::string & name) const;
    Result<std::string> find_shared(const std::string & name) const;
    // Publishes (copies durably) or withdraws an app's adapter as shared/<name>.
    Status publish(uint32_t uid, const std::string & name, bool shared);
    void   usage(uint32_t uid, uint64_t * bytes, uint32_t * count) const;

  private:
    std::string app_dir(uint32_t uid) const;
    std::string            root_;
    mutable std::mutex     mu_;
};

}  // namespace m4::svc
