// Where the benchmark's raw material comes from: installed Debian packages (their versions, from
// dpkg's status file), files under /usr/share, gzip members, and small text helpers.
// The builders install nothing: a missing package is reported by name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace m4::data {

// Version of an installed Debian package, or NotFound. Reads /var/lib/dpkg/status (override with
// M4_DPKG_STATUS for tests) once per process.
Result<std::string> package_version(const std::string & package);
// OK when every package is installed; otherwise NotFound naming the task, each missing package
// and the apt-get line that installs them.
Status require_packages(const std::string & task, const std::vector<std::string> & packages);

Result<std::string> read_text_file(const std::string & path);
// A .gz file (one or more gzip members) decompressed in memory.
Result<std::vector<uint8_t>> read_gz(const std::string & path);
// Regular files under `dir` (recursively when asked) whose names end with `suffix`, sorted.
std::vector<std::string> list_files(const std::string & dir, const std::string & suffix, bool recursive);
bool file_exists(const std::string & path);

// Text helpers.
std::vector<std::string> split_lines(std::string_view s);
std::vector<std::string> split_words(std::string_view s);  // on ASCII whitespace
std::string to_lower_ascii(std::string_view s);
std::string trim(std::string_view s);
std::string join(const std::vector<std::string> & v, std::string_view sep);
bool is_ascii_alpha_word(std::string_view w);
// Number of UTF-8 code points (invalid bytes count as one each).
size_t utf8_length(std::string_view s);
// A valid UTF-8 string (invalid sequences dropped).
std::string utf8_clean(std::string_view s);

}  // namespace m4::data
