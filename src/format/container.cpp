#include "format/container.h"

#include <cstring>
#include <set>

namespace m4::format {
namespace {

const char * magic_of(FileKind kind) {
    return kind == FileKind::Firmware ? "M4FW" : "M4AD";
}

uint64_t align64(uint64_t v) {
    return (v + 63) / 64 * 64;
}

uint32_t rd_u32(const uint8_t * p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
uint64_t rd_u64(const uint8_t * p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}
uint16_t rd_u16(const uint8_t * p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
void put_u16(std::string & s, uint16_t v) {
    s.append(reinterpret_cast<const char *>(&v), 2);
}
void put_u32(std::string & s, uint32_t v) {
    s.append(reinterpret_cast<const char *>(&v), 4);
}
void put_u64(std::string & s, uint64_t v) {
    s.append(reinterpret_cast<const char *>(&v), 8);
}

// Reads the tensor directory; every fault names the entry.
Status parse_directory(const uint8_t * p, uint64_t len, uint64_t data_len, ContainerView * v) {
    if (len < 4) return invalid_argument("tensor directory too short");
    uint32_t count = rd_u32(p);
    uint64_t pos   = 4;
    if (count > len / 20) return invalid_argument("tensor directory claims " + std::to_string(count) + " tensors");
    v->entries.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
        auto where = [&] { return "tensor directory entry " + std::to_string(i); };
        if (pos + 2 > len) return invalid_argument(where() + ": truncated");
        uint16_t nlen = rd_u16(p + pos);
        pos += 2;
        if (nlen == 0 || pos + nlen + 2 > len) return invalid_argument(where() + ": bad name length");
        TensorEntry e;
        e.name.assign(reinterpret_cast<const char *>(p + pos), nlen);
        pos += nlen;
        uint8_t dt = p[pos], ndim = p[pos + 1];
        pos += 2;
        if (dt >= kDTypeCount)
            return invalid_argument(where() + " '" + e.name + "': unknown dtype " + std::to_string(dt));
        if (ndim < 1 || ndim > kMaxDims)
            return invalid_argument(where() + " '" + e.name + "': ndim " + std::to_string(ndim) + " not in 1..4");
        if (pos + 8ull * ndim + 16 > len) return invalid_argument(where() + " '" + e.name + "': truncated");
        e.dtype        = static_cast<DType>(dt);
        uint64_t numel = 1;
        for (int d = 0; d < ndim; ++d) {
            uint64_t dim = rd_u64(p + pos);
            pos += 8;
            if (dim < 1 || dim > (1ull << 40) || numel > (1ull << 40) / dim)
                return invalid_argument(where() + " '" + e.name + "': bad dimension " + std::to_string(dim));
            numel *= dim;
            e.shape.dims[e.shape.ndim++] = static_cast<int64_t>(dim);
        }
        e.offset = rd_u64(p + pos);
        e.nbytes = rd_u64(p + pos + 8);
        pos += 16;
        if (e.offset % 64 != 0) return invalid_argument("tensor '" + e.name + "': offset not 64-byte aligned");
        if (e.nbytes != tensor_nbytes(e.dtype, e.shape))
            return invalid_argument("tensor '" + e.name + "': " + std::to_string(e.nbytes) + " bytes do not match " +
                                    dtype_name(e.dtype) + " " + e.shape.str());
        if (e.offset > data_len || e.nbytes > data_len - e.offset)
            return invalid_argument("tensor '" + e.name + "': lies outside the data section");
        if (v->index.count(e.name)) return invalid_argument("tensor '" + e.name + "': duplicate name");
        v->index[e.name] = v->entries.size();
        v->entries.push_back(std::move(e));
    }
    if (pos != len) return invalid_argument("tensor directory has " + std::to_string(len - pos) + " trailing bytes");
    return Status::ok();
}

}  // namespace

const char * file_kind_name(FileKind kind) {
    return kind == FileKind::Firmware ? "firmware" : "adapter";
}

const char * signature_state_name(SignatureState s) {
    switch (s) {
        case SignatureState::Unsigned:
            return "unsigned";
        case SignatureState::Verified:
            return "signed, verified";
        case SignatureState::NotChecked:
            return "signed, not checked (no public key given)";
    }
    return "?";
}

uint64_t tensor_nbytes(DType dtype, const Shape & shape) {
    uint64_t n = static_cast<uint64_t>(shape.numel());
    if (dtype == DType::I8) return align64(n) + static_cast<uint64_t>(shape.rows()) * 4;
    return n * dtype_size(dtype);
}

const TensorEntry * ContainerView::find(const std::string & name) const {
    auto it = index.find(name);
    return it == index.end() ? nullptr : &entries[it->second];
}

Tensor ContainerView::tensor(const TensorEntry & e) const {
    const uint8_t * p = data_section + e.offset;
    if (e.dtype == DType::I8) {
        const float * scales = reinterpret_cast<const float *>(p + align64(static_cast<uint64_t>(e.shape.numel())));
        return Tensor::view(e.dtype, e.shape, p, scales);
    }
    return Tensor::view(e.dtype, e.shape, p);
}

Result<ContainerView> parse_container(const uint8_t * data, size_t size, const std::string & name, FileKind expected,
                                      const OpenOptions & options) {
    auto fail         = [&](const std::string & what) { return invalid_argument(name + ": " + what); };
    const char * kind = file_kind_name(expected);
    if (size < kFixedHeaderSize + kTrailerSize)
        return fail("truncated: " + std::to_string(size) + " bytes is too short for an m4 " + kind + " file");
    if (std::memcmp(data, magic_of(expected), 4) != 0) {
        const char * other = magic_of(expected == FileKind::Firmware ? FileKind::Adapter : FileKind::Firmware);
        if (std::memcmp(data, other, 4) == 0)
            return fail(std::string("is an m4 ") +
                        file_kind_name(expected == FileKind::Firmware ? FileKind::Adapter : FileKind::Firmware) +
                        " file, expected a " + kind);
        return fail(std::string("bad magic: not an m4 ") + kind + " file");
    }
    uint32_t version = rd_u32(data + 4);
    if (version != kFormatVersion)
        return fail("unknown format version " + std::to_string(version) + " (this build reads version " +
                    std::to_string(kFormatVersion) + ")");
    uint64_t header_len = rd_u64(data + 8), dir_len = rd_u64(data + 16);
    uint64_t data_off = rd_u64(data + 24), data_len = rd_u64(data + 32);
    uint64_t body_end = kFixedHeaderSize;
    if (header_len > size || dir_len > size || data_off > size || data_len > size)
        return fail("truncated or corrupt: section lengths exceed the file size " + std::to_string(size));
    body_end += header_len + dir_len;
    if (data_off % 64 != 0 || data_off < body_end) return fail("corrupt: bad data offset " + std::to_string(data_off));
    if (data_off + data_len + kTrailerSize != size) {
        if (data_off + data_len + kTrailerSize > size)
            return fail("truncated: expected " + std::to_string(data_off + data_len + kTrailerSize) + " bytes, found " +
                        std::to_string(size));
        return fail("corrupt: " + std::to_string(size - (data_off + data_len + kTrailerSize)) +
                    " unexpected bytes after the trailer");
    }

    ContainerView v;
    v.kind                  = expected;
    v.file_size             = size;
    const uint8_t * trailer = data + data_off + data_len;
    std::memcpy(v.digest.data(), trailer, 32);
    if (options.verify_digest) {
        Digest actual = sha256(data, data_off + data_len);
        if (actual != v.digest)
            return fail("digest mismatch: the file is corrupt or was modified (stored " +
                        to_hex(v.digest).substr(0, 16) + "…, computed " + to_hex(actual).substr(0, 16) + "…)");
    }
    uint64_t sig_len = rd_u64(trailer + 32);
    if (sig_len != 0 && sig_len != 64) return fail("corrupt trailer: signature length " + std::to_string(sig_len));
    if (sig_len == 64) {
        v.signature = SignatureState::NotChecked;
        if (options.public_key) {
            Signature sig;
            std::memcpy(sig.data(), trailer + 40, 64);
            if (!ed25519_verify(*options.public_key, sig, v.digest.data(), v.digest.size()))
                return permission_denied(name + ": bad signature: not signed by the given public key");
            v.signature = SignatureState::Verified;
        }
    } else if (options.public_key) {
        return permission_denied(name + ": unsigned, but a public key was given (a signed " + kind + " is required)");
    }

    try {
        v.header = nlohmann::json::parse(data + kFixedHeaderSize, data + kFixedHeaderSize + header_len);
    } catch (const std::exception & e) {
        return fail(std::string("JSON header does not parse: ") + e.what());
    }
    if (!v.header.is_object()) return fail("JSON header is not an object");
    Status st = parse_directory(data + kFixedHeaderSize + header_len, dir_len, data_len, &v);
    if (!st.is_ok()) return st.with_context(name);
    v.data_section = data + data_off;
    v.data_len     = data_len;
    return v;
}

Result<ContainerFile> ContainerFile::open(const std::string & path, FileKind expected, const OpenOptions & options) {
    M4_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
    M4_ASSIGN_OR_RETURN(ContainerView view, parse_container(file.data(), file.size(), path, expected, options));
    ContainerFile f;
    f.file_ = std::move(file);
    f.view_ = std::move(view);
    return f;
}

Tensor ContainerFile::tensor(const std::string & name) const {
    const TensorEntry * e = find(name);
    M4_CHECK_MSG(e != nullptr, path() + ": no tensor " + name);
    return view_.tensor(*e);
}

void ContainerWriter::add(const std::string & name, const Tensor & t) {
    M4_CHECK_MSG(!name.empty() && name.size() < 65535, name);
    M4_CHECK_MSG(t.ndim() >= 1 && t.ndim() <= kMaxDims, name);
    for (auto & [n, _] : tensors_) M4_CHECK_MSG(n != name, "duplicate tensor " + name);
    tensors_.emplace_back(name, t);
}

std::string ContainerWriter::serialize(const SecretKey * sign_key) const {
    std::string header = header_.dump();
    std::string dir;
    put_u32(dir, static_cast<uint32_t>(tensors_.size()));
    uint64_t offset = 0;
    std::vector<uint64_t> offsets;
    for (auto & [name, t] : tensors_) {
        put_u16(dir, static_cast<uint16_t>(name.size()));
        dir += name;
        dir.push_back(static_cast<char>(t.dtype()));
        dir.push_back(static_cast<char>(t.ndim()));
        for (int d = 0; d < t.ndim(); ++d) put_u64(dir, static_cast<uint64_t>(t.dim(d)));
        uint64_t nbytes = tensor_nbytes(t.dtype(), t.shape());
        put_u64(dir, offset);
        put_u64(dir, nbytes);
        offsets.push_back(offset);
        offset = align64(offset + nbytes);
    }
    uint64_t data_len = offset;
    uint64_t data_off = align64(kFixedHeaderSize + header.size() + dir.size());
    std::string out;
    out.reserve(data_off + data_len + kTrailerSize);
    out.append(magic_of(kind_), 4);
    put_u32(out, kFormatVersion);
    put_u64(out, header.size());
    put_u64(out, dir.size());
    put_u64(out, data_off);
    put_u64(out, data_len);
    out += header;
    out += dir;
    out.resize(data_off + data_len, '\0');
    for (size_t i = 0; i < tensors_.size(); ++i) {
        const Tensor & t = tensors_[i].second;
        char * dst       = out.data() + data_off + offsets[i];
        std::memcpy(dst, t.data(), t.nbytes());
        if (t.dtype() == DType::I8)
            std::memcpy(dst + align64(static_cast<uint64_t>(t.numel())), t.scales(), static_cast<size_t>(t.rows()) * 4);
    }
    Digest digest = sha256(out.data(), out.size());
    out.append(reinterpret_cast<const char *>(digest.data()), 32);
    if (sign_key) {
        Signature sig = ed25519_sign(*sign_key, digest.data(), digest.size());
        put_u64(out, 64);
        out.append(reinterpret_cast<const char *>(sig.data()), 64);
    } else {
        put_u64(out, 0);
        out.append(64, '\0');
    }
    return out;
}

Status ContainerWriter::write(const std::string & path, const SecretKey * sign_key) const {
    std::string bytes = serialize(sign_key);
    return write_file_atomic(path, bytes.data(), bytes.size());
}

Status sign_container_file(const std::string & path, FileKind expected, const SecretKey & sk) {
    M4_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(path));
    M4_ASSIGN_OR_RETURN(ContainerView v,
                        parse_container(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size(), path, expected));
    Signature sig    = ed25519_sign(sk, v.digest.data(), v.digest.size());
    size_t tpos      = bytes.size() - kTrailerSize;
    uint64_t sig_len = 64;
    std::memcpy(bytes.data() + tpos + 32, &sig_len, 8);
    std::memcpy(bytes.data() + tpos + 40, sig.data(), 64);
    return write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace m4::format
