// Test harness for m4fwd: starts the real daemon binary on a temp socket and state directory,
// runs client code as other uids (fork + setuid; needs root, as CI has), kills and restarts it.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "m4/client.h"

namespace m4::test {

class DaemonProcess {
  public:
    DaemonProcess(std::string dir, std::string firmware, std::string config_json = "{}")
        : dir_(std::move(dir)), firmware_(std::move(firmware)), config_json_(std::move(config_json)) {}
    ~DaemonProcess() { kill(SIGKILL); }

    std::string socket() const { return dir_ + "/m4fwd.sock"; }
    std::string state() const { return dir_ + "/state"; }
    pid_t pid() const { return pid_; }

    // Starts m4fwd and waits until its socket accepts a client.
    bool start() {
        spawn();
        for (int i = 0; i < 200; ++i) {
            if (client::Client::connect(socket(), 2000).is_ok()) return true;
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {  // it exited: it refused to start
                pid_ = -1, exit_status_ = st;
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
        return false;
    }
    // For a daemon expected to refuse to start: its exit status (or -1 if still running after 10 s).
    int start_expecting_exit() {
        if (start()) return -1;
        return exit_status_;
    }
    std::string log() const {
        std::ifstream f(dir_ + "/daemon.log");
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }
    // A line of /proc/<pid>/status in KiB (VmRSS, VmHWM), or -1.
    long status_kib(const std::string & key) const {
        std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
        std::string line;
        while (std::getline(f, line))
            if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
        return -1;
    }

  private:
    void spawn() {
        std::ofstream(dir_ + "/config.json") << config_json_;
        pid_ = ::fork();
        if (pid_ == 0) {
            std::string log = dir_ + "/daemon.log";
            FILE * f        = std::freopen(log.c_str(), "a", stderr);
            (void)f;
            // No descriptor of the test process (a build lock, another daemon's socket) leaks into
            // a daemon that may outlive it.
            for (int fd = 3; fd < 4096; ++fd) ::close(fd);
            ::execl(M4FWD_PATH, "m4fwd", "--config", (dir_ + "/config.json").c_str(), "--socket", socket().c_str(),
                    "--state-dir", state().c_str(), "--firmware", firmware_.c_str(), nullptr);
            _exit(127);
        }
    }

  public:
    // Sends a signal and reaps the process; returns its wait status (or -1).
    int kill(int sig) {
        if (pid_ <= 0) return -1;
        ::kill(pid_, sig);
        int st = 0;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
        return st;
    }

  private:
    std::string dir_, firmware_, config_json_;
    pid_t pid_       = -1;
    int exit_status_ = -1;
};

// base/name, emptied: a test's own state directory.
inline std::string fresh_dir_under(const std::string & base, const std::string & name) {
    std::string d = base + "/" + name;
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
}

// A plain socket to the daemon, no hello: for clients that misbehave on purpose.
inline int raw_connect(const std::string & path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Runs `fn` in a child process as `uid` and returns its exit status: 0 when all its checks passed,
// otherwise the source line of the first failed check (printed with a reason on stderr).
inline int as_uid(uid_t uid, const std::function<int()> & fn) {
    pid_t p = ::fork();
    if (p == 0) {
        if (::setgid(uid) != 0 || ::setuid(uid) != 0) _exit(250);
        int rc = 0;
        try {
            rc = fn();
        } catch (const std::exception & e) {
            std::fprintf(stderr, "child threw: %s\n", e.what());
            rc = 251;
        }
        _exit(rc);
    }
    int st = 0;
    ::waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

}  // namespace m4::test

// Inside an as_uid() body: fail with the line number when a condition does not hold.
#define CHILD_CHECK(cond, what)                                                            \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "child check failed at line %d: %s\n", __LINE__, (what)); \
            return __LINE__ % 250 + 1;                                                     \
        }                                                                                  \
    } while (0)
