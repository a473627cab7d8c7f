#include "base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace m4 {

MappedFile::~MappedFile() {
    if (data_ && size_) munmap(const_cast<uint8_t *>(data_), size_);
}

MappedFile::MappedFile(MappedFile && o) noexcept {
    *this = std::move(o);
}

MappedFile & MappedFile::operator=(MappedFile && o) noexcept {
    if (this != &o) {
        if (data_ && size_) munmap(const_cast<uint8_t *>(data_), size_);
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
        path_ = std::move(o.path_);
    }
    return *this;
}

Result<MappedFile> MappedFile::open(const std::string & path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return Status(e == ENOENT ? StatusCode::NotFound : StatusCode::IoError,
                      path + ": cannot open (" + std::strerror(e) + ")");
    }
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return io_error(path + ": not a regular file");
    }
    MappedFile f;
    f.path_ = path;
    f.size_ = static_cast<size_t>(st.st_size);
    if (f.size_ > 0) {
        void * p = mmap(nullptr, f.size_, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            f.size_ = 0;
            return io_error(path + ": mmap failed (" + std::strerror(e) + ")");
        }
        f.data_ = static_cast<const uint8_t *>(p);
    }
    ::close(fd);
    return f;
}

Result<std::string> read_file_bytes(const std::string & path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return Status(e == ENOENT ? StatusCode::NotFound : StatusCode::IoError,
                      path + ": cannot open (" + std::strerror(e) + ")");
    }
    std::string out;
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            return io_error(path + ": read failed (" + std::strerror(e) + ")");
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

Status write_file_atomic(const std::string & path, const void * data, size_t size) {
    std::string dir = ".";
    if (auto slash = path.find_last_of('/'); slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd          = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return io_error(path + ": cannot create temp file (" + std::strerror(errno) + ")");
    const auto * p = static_cast<const uint8_t *>(data);
    size_t left    = size;
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            return io_error(path + ": write failed (" + std::strerror(e) + ")");
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        int e = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return io_error(path + ": fsync failed (" + std::strerror(e) + ")");
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return io_error(path + ": rename failed (" + std::strerror(e) + ")");
    }
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return Status::ok();
}

}  // namespace m4
