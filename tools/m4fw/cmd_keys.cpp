// m4fw keygen --out NAME   → NAME.pub (public, 64 hex) and NAME.key (secret, 128 hex)
// m4fw sign FILE --key NAME.key   → rewrites FILE's trailer with a signature (fingerprint unchanged)
#include <fmt/format.h>

#include "base/crypto.h"
#include "base/mapped_file.h"
#include "commands.h"
#include "format/container.h"

namespace m4::cli {

void add_key_commands(CLI::App & app, int * rc) {
    auto out  = std::make_shared<std::string>();
    auto * kg = app.add_subcommand("keygen", "create an Ed25519 key pair for signing firmware");
    kg->add_option("--out", *out, "path prefix: writes PREFIX.pub and PREFIX.key")->required();
    kg->callback([out, rc] {
        PublicKey pk;
        SecretKey sk;
        ed25519_keypair(&pk, &sk);
        std::string pub = to_hex(pk) + "\n", sec = to_hex(sk) + "\n";
        Status st = write_file_atomic(*out + ".pub", pub.data(), pub.size());
        if (st.is_ok()) st = write_file_atomic(*out + ".key", sec.data(), sec.size());
        if (st.is_ok()) fmt::print("wrote {}.pub and {}.key\n", *out, *out);
        *rc = report(st);
    });
    auto file = std::make_shared<std::string>();
    auto key  = std::make_shared<std::string>();
    auto * sg = app.add_subcommand("sign", "sign a firmware image with an Ed25519 secret key");
    sg->add_option("file", *file, "firmware .m4fw")->required();
    sg->add_option("--key", *key, "secret key file")->required();
    sg->callback([file, key, rc] {
        auto sk = read_secret_key(*key);
        if (!sk) return void(*rc = report(sk.status()));
        Status st = format::sign_container_file(*file, format::FileKind::Firmware, *sk);
        if (st.is_ok()) fmt::print("signed {}\n", *file);
        *rc = report(st);
    });
}

}  // namespace m4::cli
