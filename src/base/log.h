// Minimal leveled logging to stderr. Level from M4_LOG=error|warn|info|debug (default warn).
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace m4::log {

enum class Level { Error = 0, Warn = 1, Info = 2, Debug = 3 };

Level level();
void write(Level lvl, std::string_view msg);

template <typename... Args>
void error(fmt::format_string<Args...> f, Args &&... args) {
    write(Level::Error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args &&... args) {
    if (level() >= Level::Warn) write(Level::Warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args &&... args) {
    if (level() >= Level::Info) write(Level::Info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args &&... args) {
    if (level() >= Level::Debug) write(Level::Debug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace m4::log
