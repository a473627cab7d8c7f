#include "base/status.h"

namespace m4 {

const char * status_code_name(StatusCode code) {
    switch (code) {
        case StatusCode::Ok:
            return "OK";
        case StatusCode::InvalidArgument:
            return "INVALID_ARGUMENT";
        case StatusCode::NotFound:
            return "NOT_FOUND";
        case StatusCode::Incompatible:
            return "INCOMPATIBLE";
        case StatusCode::PermissionDenied:
            return "PERMISSION_DENIED";
        case StatusCode::IoError:
            return "IO_ERROR";
        case StatusCode::Unsupported:
            return "UNSUPPORTED";
        case StatusCode::ResourceExhausted: return "RESOURCE_EXHAUSTED";
        case StatusCode::Internal:
            return "INTERNAL";
    }
    return "UNKNOWN";
}

void check_failed(const char * file, int line, const char * expr, const std::string & detail) {
    std::fprintf(stderr, "m4: invariant violated at %s:%d: %s%s%s\n", file, line, expr, detail.empty() ? "" : " — ",
                 detail.c_str());
    std::fflush(stderr);
    std::abort();
}

}  // namespace m4
