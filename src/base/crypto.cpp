#include "base/crypto.h"

#include <sodium.h>

#include "base/mapped_file.h"

namespace m4 {
namespace {
void ensure_sodium() {
    static const int ok = sodium_init();
    M4_CHECK(ok >= 0);
}
static_assert(sizeof(crypto_hash_sha256_state) <= 128, "Sha256 state buffer too small");
}  // namespace

Sha256::Sha256() {
    ensure_sodium();
    crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state *>(state_));
}

void Sha256::update(const void * data, size_t size) {
    crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state *>(state_),
                              static_cast<const unsigned char *>(data), size);
}

Digest Sha256::finish() {
    Digest d;
    crypto_hash_sha256_final(reinterpret_cast<crypto_hash_sha256_state *>(state_), d.data());
    return d;
}

Digest sha256(const void * data, size_t size) {
    Sha256 h;
    h.update(data, size);
    return h.finish();
}

std::string to_hex(const uint8_t * data, size_t size) {
    static const char * digits = "0123456789abcdef";
    std::string s(size * 2, '0');
    for (size_t i = 0; i < size; ++i) {
        s[2 * i]     = digits[data[i] >> 4];
        s[2 * i + 1] = digits[data[i] & 15];
    }
    return s;
}

bool from_hex(const std::string & hex, uint8_t * out, size_t size) {
    if (hex.size() != size * 2) return false;
    auto val = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (size_t i = 0; i < size; ++i) {
        int hi = val(hex[2 * i]), lo = val(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = static_cast<uint8_t>(hi * 16 + lo);
    }
    return true;
}

void ed25519_keypair(PublicKey * pk, SecretKey * sk) {
    ensure_sodium();
    crypto_sign_keypair(pk->data(), sk->data());
}

Signature ed25519_sign(const SecretKey & sk, const void * msg, size_t size) {
    ensure_sodium();
    Signature sig;
    crypto_sign_detached(sig.data(), nullptr, static_cast<const unsigned char *>(msg), size, sk.data());
    return sig;
}

bool ed25519_verify(const PublicKey & pk, const Signature & sig, const void * msg, size_t size) {
    ensure_sodium();
    return crypto_sign_verify_detached(sig.data(), static_cast<const unsigned char *>(msg), size, pk.data()) == 0;
}

namespace {
template <size_t N>
Result<std::array<uint8_t, N>> read_hex_key(const std::string & path, const char * what) {
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(path));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
    std::array<uint8_t, N> key;
    if (!from_hex(text, key.data(), N))
        return invalid_argument(path + ": not an Ed25519 " + what + " key (expected " + std::to_string(2 * N) +
                                " hex characters)");
    return key;
}
}  // namespace

Result<PublicKey> read_public_key(const std::string & path) {
    return read_hex_key<32>(path, "public");
}
Result<SecretKey> read_secret_key(const std::string & path) {
    return read_hex_key<64>(path, "secret");
}

}  // namespace m4
