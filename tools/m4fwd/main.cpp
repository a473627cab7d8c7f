// m4fwd — the m4 system service: owns the firmware, serves every app over a Unix socket.
//   m4fwd [--firmware F] [--config /etc/m4/m4fwd.json] [--socket PATH] [--state-dir DIR]
// Without --firmware (and none in the config) it installs the same default firmware as m4fw
// ($M4_FIRMWARE, else m4-small; tools/common/default_firmware.h) when no slot holds one.
// Runs in the foreground (systemd: Type=simple); SIGTERM shuts it down gracefully.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "../common/default_firmware.h"
#include "service/daemon.h"

int main(int argc, char ** argv) {
    CLI::App    app{"m4fwd — the m4 firmware service"};
    std::string config_path, socket, state_dir, firmware, public_key;
    long        admin_uid = -1;
    app.add_option("--config", config_path, "JSON configuration file (docs/service.md)");
    app.add_option("--socket", socket, "Unix socket path (default $XDG_RUNTIME_DIR/m4/m4fwd.sock or /run/m4/m4fwd.sock)");
    app.add_option("--state-dir", state_dir, "adapter store and firmware slots (default /var/lib/m4)");
    app.add_option("--firmware", firmware,
                   "firmware to install into slot a when none is installed (default: " + m4::tools::default_firmware() + ")");
    app.add_option("--public-key", public_key, "require firmware signed by this Ed25519 key");
    app.add_option("--admin-uid", admin_uid, "uid allowed to install firmware and publish adapters (default 0)");
    CLI11_PARSE(app, argc, argv);

    m4::svc::ServiceConfig cfg;
    if (!config_path.empty()) {
        auto c = m4::svc::load_service_config(config_path);
        if (!c) {
            fmt::print(stderr, "m4fwd: error: {}\n", c.status().message());
            return 3;
        }
        cfg = std::move(c).value();
    }
    if (!socket.empty()) cfg.socket_path = socket;
    if (!state_dir.empty()) cfg.state_dir = state_dir;
    if (!firmware.empty()) cfg.firmware = firmware;
    if (cfg.firmware.empty()) cfg.firmware = m4::tools::default_firmware();
    if (!public_key.empty()) cfg.public_key = public_key;
    if (admin_uid >= 0) cfg.admin_uid = static_cast<uint32_t>(admin_uid);
    m4::svc::Daemon daemon(cfg);
    m4::Status      st = daemon.start();
    if (!st.is_ok()) {
        fmt::print(stderr, "m4fwd: error: {}\n", st.message());
        return 1;
    }
    daemon.run();
    return 0;
}
