#include "service/slots.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/mapped_file.h"

namespace m4::svc {

Status FirmwareSlots::open() {
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) return io_error(dir_ + ": mkdir failed");
    ::chmod(dir_.c_str(), 0700);
    ::unlink(staging_path().c_str());  // a crash during an install leaves only this behind
    return Status::ok();
}

std::string FirmwareSlots::active() const {
    auto text = read_file_bytes(dir_ + "/active");
    if (!text) return "";
    std::string s = *text;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return (s == "a" || s == "b") ? s : "";
}

bool FirmwareSlots::has_active() const {
    std::string s = active();
    return !s.empty() && ::access(path(s).c_str(), R_OK) == 0;
}

Status FirmwareSlots::commit_staging(const std::string & slot) {
    if (::rename(staging_path().c_str(), path(slot).c_str()) != 0)
        return io_error(path(slot) + ": rename failed (" + std::strerror(errno) + ")");
    int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) ::fsync(fd), ::close(fd);
    return Status::ok();
}

Status FirmwareSlots::activate(const std::string & slot) {
    std::string text = slot + "\n";
    return write_file_atomic(dir_ + "/active", text.data(), text.size());
}

}  // namespace m4::svc
