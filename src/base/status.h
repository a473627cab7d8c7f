// Status / Result<T> and M4_CHECK: two of m4's three kinds of error.
//
//  (a) M4_CHECK(cond) guards invariants — programmer errors. It stays on in release builds and
//      aborts with file:line, because continuing after a broken invariant corrupts results.
//  (b) Status / Result<T> carry input, file and compatibility faults back to the caller, with a
//      message that names the file (or input) and the fault:
//          "model.m4fw: digest mismatch (file is corrupt or was modified)"
//  (c) The service boundary maps Status codes onto a closed protocol enum (later issue).
//
// Example:
//     Result<FirmwareImage> fw = FirmwareImage::open("m4-tiny.m4fw");
//     if (!fw) { fmt::print(stderr, "{}\n", fw.status().message()); return 1; }
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace m4 {

enum class StatusCode {
    Ok = 0,
    InvalidArgument,   // malformed input: bad file contents, wrong shape, empty text …
    NotFound,          // a file, tensor, label or adapter that does not exist
    Incompatible,      // adapter bound to another firmware, path/modality the firmware lacks
    PermissionDenied,  // signature or access refused
    IoError,           // the OS refused a read / write / mmap
    Unsupported,       // a valid request this build or CPU cannot serve
    ResourceExhausted, // a quota or budget is used up
    Internal,
};

const char * status_code_name(StatusCode code);

class [[nodiscard]] Status {
  public:
    Status() = default;
    Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
    static Status ok() { return Status(); }

    bool is_ok() const { return code_ == StatusCode::Ok; }
    explicit operator bool() const { return is_ok(); }
    StatusCode code() const { return code_; }
    const std::string & message() const { return message_; }
    // Prefixes context, e.g. the file name: status.with_context("m4-tiny.m4fw").
    Status with_context(const std::string & context) const {
        if (is_ok()) return *this;
        return Status(code_, context + ": " + message_);
    }

  private:
    StatusCode code_ = StatusCode::Ok;
    std::string message_;
};

inline Status invalid_argument(std::string m) {
    return Status(StatusCode::InvalidArgument, std::move(m));
}
inline Status not_found(std::string m) {
    return Status(StatusCode::NotFound, std::move(m));
}
inline Status incompatible(std::string m) {
    return Status(StatusCode::Incompatible, std::move(m));
}
inline Status permission_denied(std::string m) {
    return Status(StatusCode::PermissionDenied, std::move(m));
}
inline Status io_error(std::string m) {
    return Status(StatusCode::IoError, std::move(m));
}
inline Status unsupported(std::string m) {
    return Status(StatusCode::Unsupported, std::move(m));
}
inline Status resource_exhausted(std::string m) { return Status(StatusCode::ResourceExhausted, std::move(m)); }

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : value_(std::move(value)) {}
    Result(Status status) : status_(std::move(status)) {
        if (status_.is_ok()) status_ = Status(StatusCode::Internal, "Result built from an OK status without a value");
    }
    bool is_ok() const { return value_.has_value(); }
    explicit operator bool() const { return is_ok(); }
    const Status & status() const { return status_; }
    T & value() & { return *value_; }
    const T & value() const & { return *value_; }
    T && value() && { return std::move(*value_); }
    T * operator->() { return &*value_; }
    const T * operator->() const { return &*value_; }
    T & operator*() { return *value_; }

  private:
    std::optional<T> value_;
    Status status_;
};

[[noreturn]] void check_failed(const char * file, int line, const char * expr, const std::string & detail);

}  // namespace m4

// Invariant check, always on. Usage: M4_CHECK(n > 0); M4_CHECK_MSG(a == b, fmt::format("{} vs {}", a, b));
#define M4_CHECK(cond)                                                  \
    do {                                                                \
        if (!(cond)) ::m4::check_failed(__FILE__, __LINE__, #cond, ""); \
    } while (0)
#define M4_CHECK_MSG(cond, detail)                                            \
    do {                                                                      \
        if (!(cond)) ::m4::check_failed(__FILE__, __LINE__, #cond, (detail)); \
    } while (0)

// Propagates a non-OK Status (or a failed Result's status) to the caller.
#define M4_RETURN_IF_ERROR(expr)                    \
    do {                                            \
        ::m4::Status m4_status_ = (expr);           \
        if (!m4_status_.is_ok()) return m4_status_; \
    } while (0)

#define M4_CONCAT_INNER(a, b) a##b
#define M4_CONCAT(a, b) M4_CONCAT_INNER(a, b)
// auto x = M4_TRY(f()); works for Result<T>-returning functions inside a Status/Result function.
#define M4_ASSIGN_OR_RETURN(lhs, expr) M4_ASSIGN_OR_RETURN_IMPL(M4_CONCAT(m4_result_, __LINE__), lhs, expr)
#define M4_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
    auto tmp = (expr);                           \
    if (!tmp.is_ok()) return tmp.status();       \
    lhs = std::move(tmp).value()
