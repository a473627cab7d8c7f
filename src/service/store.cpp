#include "service/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/mapped_file.h"

namespace m4::svc {
namespace {

// Store directories are private to the daemon (0700) and files 0600: no other uid can list which
// apps have adapters or copy one. Directories of an older, more open store are tightened here.
Status make_dir(const std::string & d) {
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return io_error(d + ": mkdir failed (" + std::strerror(errno) + ")");
    if (::chmod(d.c_str(), 0700) != 0) return io_error(d + ": chmod failed (" + std::strerror(errno) + ")");
    return Status::ok();
}

void tighten_files(const std::string & dir) {
    DIR * d = ::opendir(dir.c_str());
    if (!d) return;
    while (dirent * e = ::readdir(d)) {
        std::string p = dir + "/" + e->d_name;
        struct stat st {};
        if (::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) ::chmod(p.c_str(), 0600);
    }
    ::closedir(d);
}

void fsync_dir(const std::string & d) {
    int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) ::fsync(fd), ::close(fd);
}

std::vector<StoredAdapter> scan(const std::string & dir) {
    std::vector<StoredAdapter> out;
    DIR *                      d = ::opendir(dir.c_str());
    if (!d) return out;
    while (dirent * e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n.size() <= 4 || n.compare(n.size() - 4, 4, ".m4a") != 0 || n[0] == '.') continue;
        struct stat st {};
        std::string p = dir + "/" + n;
        if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        out.push_back({n.substr(0, n.size() - 4), p, static_cast<uint64_t>(st.st_size)});
    }
    ::closedir(d);
    std::sort(out.begin(), out.end(), [](auto & a, auto & b) { return a.name < b.name; });
    return out;
}

void sweep_temps(const std::string & dir) {
    DIR * d = ::opendir(dir.c_str());
    if (!d) return;
    while (dirent * e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n.rfind(".tmp-", 0) == 0) ::unlink((dir + "/" + n).c_str());
    }
    ::closedir(d);
}

// Writes bytes to `tmp` durably (write + fsync); the caller renames it into place.
Status write_durable(const std::string & tmp, const std::string & bytes) {
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return io_error(tmp + ": create failed (" + std::strerror(errno) + ")");
    size_t off = 0;
    while (off < bytes.size()) {
        ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            int e = errno;
            ::close(fd), ::unlink(tmp.c_str());
            return io_error(tmp + ": write failed (" + std::strerror(e) + ")");
        }
        off += static_cast<size_t>(w);
    }
    if (::fsync(fd) != 0) {
        int e = errno;
        ::close(fd), ::unlink(tmp.c_str());
        return io_error(tmp + ": fsync failed (" + std::strerror(e) + ")");
    }
    ::close(fd);
    return Status::ok();
}

}  // namespace

std::string AdapterStore::app_dir(uint32_t uid) const { return root_ + "/apps/" + std::to_string(uid); }

Status AdapterStore::open() {
    M4_RETURN_IF_ERROR(make_dir(root_));
    M4_RETURN_IF_ERROR(make_dir(root_ + "/apps"));
    M4_RETURN_IF_ERROR(make_dir(root_ + "/shared"));
    sweep_temps(root_ + "/shared");
    tighten_files(root_ + "/shared");
    for (uint32_t uid : apps()) {
        M4_RETURN_IF_ERROR(make_dir(app_dir(uid)));
        sweep_temps(app_dir(uid));
        tighten_files(app_dir(uid));
    }
    return Status::ok();
}

Status AdapterStore::check_name(const std::string & n) {
    if (n.empty() || n.size() > 64 || n[0] == '.')
        return invalid_argument("adapter name '" + n + "' must be 1–64 characters and not start with '.'");
    for (char c : n)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
            return invalid_argument("adapter name '" + n + "' may only use letters, digits, '.', '_' and '-'");
    return Status::ok();
}

Result<std::string> AdapterStore::put(uint32_t uid, const std::string & name, const std::string & bytes, bool replace,
                                      const StoreQuota & quota,
                                      const std::function<Status(const std::string &)> & verify) {
    M4_RETURN_IF_ERROR(check_name(name));
    std::lock_guard<std::mutex> lock(mu_);
    const std::string dir = app_dir(uid), final_path = dir + "/" + name + ".m4a";
    M4_RETURN_IF_ERROR(make_dir(dir));
    uint64_t used = 0, existing = 0;
    uint32_t count = 0;
    for (const auto & a : scan(dir)) {
        used += a.bytes, ++count;
        if (a.name == name) existing = a.bytes;
    }
    bool exists = ::access(final_path.c_str(), F_OK) == 0;
    if (exists && !replace) return invalid_argument("adapter '" + name + "' already exists (set replace to overwrite)");
    if (!exists && count + 1 > quota.max_count)
        return resource_exhausted("quota: " + std::to_string(quota.max_count) + " adapters per app");
    if (used - existing + bytes.size() > quota.max_bytes)
        return resource_exhausted("quota: adapters would take " + std::to_string(used - existing + bytes.size()) +
                                                   " bytes, the limit is " + std::to_string(quota.max_bytes));
    const std::string tmp = dir + "/.tmp-" + name + "-" + std::to_string(::getpid());
    ::unlink(tmp.c_str());
    M4_RETURN_IF_ERROR(write_durable(tmp, bytes));
    Status ok = verify ? verify(tmp) : Status::ok();
    if (!ok.is_ok()) {
        ::unlink(tmp.c_str());
        return ok;
    }
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return io_error(final_path + ": rename failed (" + std::strerror(e) + ")");
    }
    fsync_dir(dir);  // the rename itself is durable before we acknowledge
    return final_path;
}

Status AdapterStore::remove(uint32_t uid, const std::string & name) {
    M4_RETURN_IF_ERROR(check_name(name));
    std::lock_guard<std::mutex> lock(mu_);
    const std::string           p = app_dir(uid) + "/" + name + ".m4a";
    if (::unlink(p.c_str()) != 0) return not_found("no adapter '" + name + "'");
    fsync_dir(app_dir(uid));
    return Status::ok();
}

std::vector<StoredAdapter> AdapterStore::list(uint32_t uid) const {
    std::lock_guard<std::mutex> lock(mu_);
    return scan(app_dir(uid));
}

std::vector<StoredAdapter> AdapterStore::list_shared() const {
    std::lock_guard<std::mutex> lock(mu_);
    return scan(root_ + "/shared");
}

std::vector<uint32_t> AdapterStore::apps() const {
    std::vector<uint32_t> out;
    DIR *                 d = ::opendir((root_ + "/apps").c_str());
    if (!d) return out;
    while (dirent * e = ::readdir(d)) {
        char * end = nullptr;
        long   v   = std::strtol(e->d_name, &end, 10);
        if (end && *end == '\0' && e->d_name[0] != '\0' && v >= 0) out.push_back(static_cast<uint32_t>(v));
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

Result<std::string> AdapterStore::find(uint32_t uid, const std::string & name) const {
    M4_RETURN_IF_ERROR(check_name(name));
    std::string p = app_dir(uid) + "/" + name + ".m4a";
    if (::access(p.c_str(), R_OK) != 0) return not_found("no adapter '" + name + "' for this app");
    return p;
}

Result<std::string> AdapterStore::find_shared(const std::string & name) const {
    M4_RETURN_IF_ERROR(check_name(name));
    std::string p = root_ + "/shared/" + name + ".m4a";
    if (::access(p.c_str(), R_OK) != 0) return not_found("no shared adapter '" + name + "'");
    return p;
}

Status AdapterStore::publish(uint32_t uid, const std::string & name, bool shared) {
    M4_RETURN_IF_ERROR(check_name(name));
    std::lock_guard<std::mutex> lock(mu_);
    const std::string           dst = root_ + "/shared/" + name + ".m4a";
    if (!shared) {
        if (::unlink(dst.c_str()) != 0) return not_found("no shared adapter '" + name + "'");
        fsync_dir(root_ + "/shared");
        return Status::ok();
    }
    M4_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(app_dir(uid) + "/" + name + ".m4a"));
    const std::string tmp = root_ + "/shared/.tmp-" + name + "-" + std::to_string(::getpid());
    ::unlink(tmp.c_str());
    M4_RETURN_IF_ERROR(write_durable(tmp, bytes));
    if (::rename(tmp.c_str(), dst.c_str()) != 0) return io_error(dst + ": rename failed");
    fsync_dir(root_ + "/shared");
    return Status::ok();
}

void AdapterStore::usage(uint32_t uid, uint64_t * bytes, uint32_t * count) const {
    *bytes = 0, *count = 0;
    for (const auto & a : list(uid)) *bytes += a.bytes, ++*count;
}

}  // namespace m4::svc
