#include "data/sources.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "base/mapped_file.h"

namespace m4::data {

namespace fs = std::filesystem;

namespace {

const std::map<std::string, std::string> & installed_packages() {
    static std::map<std::string, std::string> pkgs;
    static std::once_flag once;
    std::call_once(once, [] {
        const char * env = std::getenv("M4_DPKG_STATUS");
        std::ifstream in(env ? env : "/var/lib/dpkg/status");
        std::string line, name, version, status;
        auto flush = [&] {
            if (!name.empty() && status.find(" installed") != std::string::npos &&
                status.find("not-installed") == std::string::npos)
                pkgs[name] = version;
            name.clear();
            version.clear();
            status.clear();
        };
        while (std::getline(in, line)) {
            if (line.empty())
                flush();
            else if (line.rfind("Package: ", 0) == 0)
                name = line.substr(9);
            else if (line.rfind("Version: ", 0) == 0)
                version = line.substr(9);
            else if (line.rfind("Status: ", 0) == 0)
                status = line.substr(8);
        }
        flush();
    });
    return pkgs;
}

}  // namespace

Result<std::string> package_version(const std::string & package) {
    const auto & p = installed_packages();
    auto it        = p.find(package);
    if (it == p.end()) return not_found("Debian package '" + package + "' is not installed");
    return it->second;
}

Status require_packages(const std::string & task, const std::vector<std::string> & packages) {
    std::vector<std::string> missing;
    for (const auto & p : packages)
        if (!package_version(p)) missing.push_back(p);
    if (missing.empty()) return Status::ok();
    return not_found(task + ": missing Debian package" + (missing.size() > 1 ? "s " : " ") + join(missing, ", ") +
                     " (install with: apt-get install " + join(missing, " ") +
                     "; scripts/install-deps.sh installs every benchmark source)");
}

Result<std::string> read_text_file(const std::string & path) {
    return read_file_bytes(path);
}

Result<std::vector<uint8_t>> read_gz(const std::string & path) {
    M4_ASSIGN_OR_RETURN(std::string raw, read_file_bytes(path));
    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return io_error(path + ": zlib init failed");
    zs.next_in  = reinterpret_cast<Bytef *>(raw.data());
    zs.avail_in = static_cast<uInt>(raw.size());
    std::vector<uint8_t> out;
    uint8_t buf[1 << 16];
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        zs.next_out  = buf;
        zs.avail_out = sizeof buf;
        rc           = inflate(&zs, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&zs);
            return invalid_argument(path + ": corrupt gzip stream");
        }
        out.insert(out.end(), buf, buf + (sizeof buf - zs.avail_out));
        if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
            inflateEnd(&zs);
            return invalid_argument(path + ": truncated gzip stream");
        }
    }
    inflateEnd(&zs);
    return out;
}

std::vector<std::string> list_files(const std::string & dir, const std::string & suffix, bool recursive) {
    std::vector<std::string> out;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return out;
    auto take = [&](const fs::directory_entry & e) {
        if (!e.is_regular_file(ec)) return;
        std::string p = e.path().string();
        if (p.size() >= suffix.size() && p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0)
            out.push_back(p);
    };
    if (recursive)
        for (const auto & e : fs::recursive_directory_iterator(dir, ec)) take(e);
    else
        for (const auto & e : fs::directory_iterator(dir, ec)) take(e);
    std::sort(out.begin(), out.end());
    return out;
}

bool file_exists(const std::string & path) {
    std::error_code ec;
    return fs::exists(path, ec);
}

std::vector<std::string> split_lines(std::string_view s) {
    std::vector<std::string> out;
    size_t a = 0;
    while (a <= s.size()) {
        size_t b = s.find('\n', a);
        if (b == std::string_view::npos) b = s.size();
        std::string line(s.substr(a, b - a));
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out.push_back(std::move(line));
        a = b + 1;
    }
    if (!out.empty() && out.back().empty()) out.pop_back();
    return out;
}

std::vector<std::string> split_words(std::string_view s) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (!cur.empty()) out.push_back(std::move(cur));
            cur.clear();
        } else {
            cur.push_back(c);
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

std::string to_lower_ascii(std::string_view s) {
    std::string o(s);
    for (char & c : o)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return o;
}

std::string trim(std::string_view s) {
    size_t a = 0, b = s.size();
    while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
    while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
    return std::string(s.substr(a, b - a));
}

std::string join(const std::vector<std::string> & v, std::string_view sep) {
    std::string o;
    for (size_t i = 0; i < v.size(); ++i) {
        if (i) o += sep;
        o += v[i];
    }
    return o;
}

bool is_ascii_alpha_word(std::string_view w) {
    if (w.empty()) return false;
    for (char c : w)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
    return true;
}

size_t utf8_length(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++n;
    return n;
}

std::string utf8_clean(std::string_view s) {
    std::string o;
    size_t i = 0;
    while (i < s.size()) {
        unsigned char c = s[i];
        size_t len      = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok         = len > 0 && i + len <= s.size();
        for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
        if (ok) o.append(s.substr(i, len));
        i += ok ? len : 1;
    }
    return o;
}

}  // namespace m4::data
