#include "base/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace m4::log {

Level level() {
    static const Level lvl = [] {
        const char * env = std::getenv("M4_LOG");
        if (!env) return Level::Warn;
        if (!std::strcmp(env, "error")) return Level::Error;
        if (!std::strcmp(env, "info")) return Level::Info;
        if (!std::strcmp(env, "debug")) return Level::Debug;
        return Level::Warn;
    }();
    return lvl;
}

void write(Level lvl, std::string_view msg) {
    static std::mutex mu;
    static const char * names[] = {"error", "warn", "info", "debug"};
    std::lock_guard<std::mutex> lock(mu);
    std::fprintf(stderr, "m4 %s: %.*s\n", names[static_cast<int>(lvl)], static_cast<int>(msg.size()), msg.data());
}

}  // namespace m4::log
