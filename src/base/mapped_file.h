// A whole file mapped read-only (MAP_SHARED, PROT_READ): firmware tensors are used in place and the
// page cache shares them between every process that maps the same file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace m4 {

class MappedFile {
  public:
    MappedFile() = default;
    ~MappedFile();
    MappedFile(MappedFile && o) noexcept;
    MappedFile & operator=(MappedFile && o) noexcept;
    MappedFile(const MappedFile &)             = delete;
    MappedFile & operator=(const MappedFile &) = delete;

    static Result<MappedFile> open(const std::string & path);

    const uint8_t * data() const { return data_; }
    size_t size() const { return size_; }
    const std::string & path() const { return path_; }

  private:
    const uint8_t * data_ = nullptr;
    size_t size_          = 0;
    std::string path_;
};

// Reads a whole (small) file into memory.
Result<std::string> read_file_bytes(const std::string & path);

// Writes bytes durably: temp file in the same directory, fsync, rename over `path`, fsync the
// directory. A crash at any point leaves either the old file or the new one, never a mix.
Status write_file_atomic(const std::string & path, const void * data, size_t size);

}  // namespace m4
