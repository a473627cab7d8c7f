// The .m4fw / .m4a container (docs/formats.md): fixed header, JSON header, tensor directory,
// 64-byte-aligned tensor data, and a trailer with the SHA-256 digest and an optional Ed25519
// signature of that digest.
//
//     auto fw = ContainerFile::open("m4-tiny.m4fw", FileKind::Firmware, {.public_key = &pk});
//     if (!fw) return fw.status();                    // names the file and the fault
//     Tensor w = fw->tensor("backbone.norm.weight");  // a view into the read-only mapping
//
//     ContainerWriter out(FileKind::Adapter);
//     out.set_header(manifest_json);
//     out.add("head.weight", head_w);
//     M4_RETURN_IF_ERROR(out.write("task.m4a"));     // atomic: temp + fsync + rename
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/crypto.h"
#include "base/mapped_file.h"
#include "tensor/tensor.h"

namespace m4::format {

enum class FileKind { Firmware, Adapter };
const char * file_kind_name(FileKind kind);  // "firmware" / "adapter"

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kFixedHeaderSize = 40;
inline constexpr size_t kTrailerSize     = 104;

struct TensorEntry {
    std::string name;
    DType dtype = DType::F32;
    Shape shape;
    uint64_t offset = 0;  // relative to the data section
    uint64_t nbytes = 0;
};

// Bytes a tensor of this dtype and shape occupies in the data section.
uint64_t tensor_nbytes(DType dtype, const Shape & shape);

enum class SignatureState { Unsigned, Verified, NotChecked };  // NotChecked: signed, no key given
const char * signature_state_name(SignatureState s);

struct OpenOptions {
    const PublicKey * public_key = nullptr;  // when set, the file must carry a valid signature
    bool verify_digest           = true;     // false only for tools that inspect damaged files
};

// A parsed container over memory someone else owns (a mapping, or a fuzzer's buffer).
struct ContainerView {
    FileKind kind = FileKind::Firmware;
    nlohmann::json header;
    std::vector<TensorEntry> entries;
    std::map<std::string, size_t> index;  // name → entries position
    const uint8_t * data_section = nullptr;
    uint64_t data_len            = 0;
    Digest digest{};
    SignatureState signature = SignatureState::Unsigned;
    uint64_t file_size       = 0;

    const TensorEntry * find(const std::string & name) const;
    Tensor tensor(const TensorEntry & e) const;  // view into data_section
};

// Parses and checks a container in memory. `name` is used in error messages.
Result<ContainerView> parse_container(const uint8_t * data, size_t size, const std::string & name, FileKind expected,
                                      const OpenOptions & options = {});

// A container file mapped read-only; its tensors are views into the mapping.
class ContainerFile {
  public:
    static Result<ContainerFile> open(const std::string & path, FileKind expected, const OpenOptions & options = {});

    const std::string & path() const { return file_.path(); }
    const ContainerView & view() const { return view_; }
    const nlohmann::json & header() const { return view_.header; }
    const std::vector<TensorEntry> & entries() const { return view_.entries; }
    const TensorEntry * find(const std::string & name) const { return view_.find(name); }
    bool has(const std::string & name) const { return find(name) != nullptr; }
    // The named tensor as a view; M4_CHECKs that it exists (check with has()/find() for input faults).
    Tensor tensor(const std::string & name) const;
    std::string fingerprint() const { return to_hex(view_.digest); }
    SignatureState signature() const { return view_.signature; }
    uint64_t file_size() const { return view_.file_size; }

  private:
    MappedFile file_;
    ContainerView view_;
};

class ContainerWriter {
  public:
    explicit ContainerWriter(FileKind kind) : kind_(kind) {}
    void set_header(nlohmann::json header) { header_ = std::move(header); }
    // Keeps a reference to the tensor's memory until write() (the Tensor handle shares ownership).
    void add(const std::string & name, const Tensor & t);
    // Serialises, signs the digest when a key is given, and writes atomically.
    Status write(const std::string & path, const SecretKey * sign_key = nullptr) const;
    // The bytes write() would produce (used by tests and fuzz seeds).
    std::string serialize(const SecretKey * sign_key = nullptr) const;

  private:
    FileKind kind_;
    nlohmann::json header_ = nlohmann::json::object();
    std::vector<std::pair<std::string, Tensor>> tensors_;
};

// Rewrites only the trailer of an existing container with a signature by `sk` (the fingerprint
// does not change). Verifies the digest first.
Status sign_container_file(const std::string & path, FileKind expected, const SecretKey & sk);

}  // namespace m4::format
