// The firmware m4fw and m4fwd use when none is named: $M4_FIRMWARE, else this build's source
// tree's firmware/m4-small.m4fw, else the installed share/m4/firmware/m4-small.m4fw (the name is
// M4_DEFAULT_FIRMWARE in the top CMakeLists.txt). Both tools'
// CMakeLists define M4_SOURCE_FIRMWARE and M4_INSTALLED_FIRMWARE.
#pragma once

#include <sys/stat.h>

#include <cstdlib>
#include <string>

namespace m4::tools {

inline std::string default_firmware() {
    if (const char * env = std::getenv("M4_FIRMWARE"); env && *env) return env;
    struct stat st {};
    if (::stat(M4_SOURCE_FIRMWARE, &st) == 0) return M4_SOURCE_FIRMWARE;
    return M4_INSTALLED_FIRMWARE;
}

}  // namespace m4::tools
