// SHA-256 digests and Ed25519 signatures (libsodium). The firmware fingerprint is a SHA-256 digest.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace m4 {

using Digest    = std::array<uint8_t, 32>;
using PublicKey = std::array<uint8_t, 32>;
using SecretKey = std::array<uint8_t, 64>;
using Signature = std::array<uint8_t, 64>;

// Streaming SHA-256.
class Sha256 {
  public:
    Sha256();
    void update(const void * data, size_t size);
    Digest finish();

  private:
    alignas(64) uint8_t state_[128];
};

Digest sha256(const void * data, size_t size);
std::string to_hex(const uint8_t * data, size_t size);
template <size_t N>
std::string to_hex(const std::array<uint8_t, N> & a) {
    return to_hex(a.data(), N);
}
bool from_hex(const std::string & hex, uint8_t * out, size_t size);

void ed25519_keypair(PublicKey * pk, SecretKey * sk);
Signature ed25519_sign(const SecretKey & sk, const void * msg, size_t size);
bool ed25519_verify(const PublicKey & pk, const Signature & sig, const void * msg, size_t size);

// Key files hold one line of hex (64 hex chars for a public key, 128 for a secret key).
Result<PublicKey> read_public_key(const std::string & path);
Result<SecretKey> read_secret_key(const std::string & path);

}  // namespace m4
