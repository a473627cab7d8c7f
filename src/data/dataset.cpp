// Split files (`.m4ds`): header, example data, index. Layout in docs/formats.md.
#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <fstream>

namespace m4::data {

namespace {

constexpr char kMagic[4]       = {'M', '4', 'D', 'S'};
constexpr uint32_t kVersion    = 1;
constexpr size_t kHeaderBytes  = 64;
constexpr size_t kEntryBytes   = 80;
constexpr size_t kPayloadAlign = 8;

template <typename T>
void put_le(uint8_t * p, T v) {
    std::memcpy(p, &v, sizeof v);  // x86-64 and every target we build for is little-endian
}
template <typename T>
T get_le(const uint8_t * p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

}  // namespace

// Index entry (80 bytes):
//   0 u64 payload_off   8 u32 payload_len  12 u32 dims[3]
//  24 u64 prompt_off   32 u32 prompt_len  36 u32 target_len  40 u64 target_off
//  48 i32 label        52 f32 value       56 u32 group       60 u32 reserved   64 u8[16] hash
const char * modality_name(Modality m) {
    switch (m) {
        case Modality::Image:
            return "image";
        case Modality::Audio:
            return "audio";
        case Modality::Imu:
            return "imu";
        case Modality::Text:
            return "text";
    }
    return "?";
}

Result<Modality> modality_from_name(const std::string & name) {
    for (Modality m : {Modality::Image, Modality::Audio, Modality::Imu, Modality::Text})
        if (name == modality_name(m)) return m;
    return invalid_argument("unknown modality '" + name + "'");
}

ContentHash content_hash(Modality m, const uint32_t dims[3], const void * payload, size_t payload_len,
                         std::string_view prompt) {
    Sha256 h;
    uint8_t head[4 + 1 + 12 + 16];
    std::memcpy(head, "m4ds", 4);
    head[4] = static_cast<uint8_t>(m);
    for (int i = 0; i < 3; ++i) put_le<uint32_t>(head + 5 + 4 * i, dims[i]);
    put_le<uint64_t>(head + 17, payload_len);
    put_le<uint64_t>(head + 25, prompt.size());
    h.update(head, sizeof head);
    h.update(payload, payload_len);
    h.update(prompt.data(), prompt.size());
    Digest d = h.finish();
    ContentHash out;
    std::copy_n(d.begin(), out.size(), out.begin());
    return out;
}

ContentHash text_hash(std::string_view text) {
    std::string norm;
    norm.reserve(text.size());
    bool space = false;
    for (char c : text) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = !norm.empty();
            continue;
        }
        if (space) norm.push_back(' ');
        space = false;
        norm.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c);
    }
    Digest d = sha256(norm.data(), norm.size());
    ContentHash out;
    std::copy_n(d.begin(), out.size(), out.begin());
    return out;
}

ExampleIn ExampleIn::text(std::string_view s) {
    ExampleIn e;
    e.payload.assign(s.begin(), s.end());
    e.dims[0] = static_cast<uint32_t>(s.size());
    return e;
}

ExampleIn ExampleIn::image(std::vector<uint8_t> px, uint32_t h, uint32_t w, uint32_t c) {
    M4_CHECK(px.size() == size_t(h) * w * c);
    ExampleIn e;
    e.payload = std::move(px);
    e.dims[0] = h;
    e.dims[1] = w;
    e.dims[2] = c;
    return e;
}

ExampleIn ExampleIn::audio(const std::vector<float> & samples) {
    ExampleIn e;
    e.payload.resize(samples.size() * 2);
    for (size_t i = 0; i < samples.size(); ++i) {
        float v   = std::clamp(samples[i], -1.0f, 1.0f);
        int16_t q = static_cast<int16_t>(std::lrint(v * 32767.0f));
        put_le<int16_t>(e.payload.data() + 2 * i, q);
    }
    e.dims[0] = static_cast<uint32_t>(samples.size());
    return e;
}

ExampleIn ExampleIn::imu(const std::vector<float> & rows) {
    M4_CHECK(rows.size() % 6 == 0);
    ExampleIn e;
    e.payload.resize(rows.size() * 4);
    std::memcpy(e.payload.data(), rows.data(), e.payload.size());
    e.dims[0] = static_cast<uint32_t>(rows.size() / 6);
    e.dims[1] = 6;
    return e;
}

DatasetWriter::DatasetWriter(std::string path, Modality m) : path_(std::move(path)), modality_(m) {}

DatasetWriter::~DatasetWriter() {
    if (f_) {
        std::fclose(f_);
        std::remove((path_ + ".tmp").c_str());
    }
}

Status DatasetWriter::open_if_needed() {
    if (f_) return Status::ok();
    f_ = std::fopen((path_ + ".tmp").c_str(), "wb");
    if (!f_) return io_error(path_ + ".tmp: cannot create");
    uint8_t zero[kHeaderBytes] = {};
    return put(zero, sizeof zero);
}

Status DatasetWriter::put(const void * p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) return io_error(path_ + ".tmp: write failed (disk full?)");
    pos_ += n;
    return Status::ok();
}

Result<bool> DatasetWriter::add(const ExampleIn & ex) {
    M4_RETURN_IF_ERROR(open_if_needed());
    ContentHash h = content_hash(modality_, ex.dims, ex.payload.data(), ex.payload.size(), ex.prompt);
    if ((exclude_ && exclude_->count(h)) || seen_.count(h)) {
        ++dropped_;
        return false;
    }
    if (modality_ == Modality::Text) {
        const ContentHash th =
            text_hash(std::string_view(reinterpret_cast<const char *>(ex.payload.data()), ex.payload.size()));
        if (exclude_texts_ && exclude_texts_->count(th)) {
            ++dropped_;
            return false;
        }
        seen_text_.insert(th);
    }
    seen_.insert(h);
    static const uint8_t pad[kPayloadAlign] = {};
    M4_RETURN_IF_ERROR(put(pad, (kPayloadAlign - pos_ % kPayloadAlign) % kPayloadAlign));
    std::array<uint8_t, kEntryBytes> e{};
    const uint64_t base = kHeaderBytes;
    put_le<uint64_t>(e.data() + 0, pos_ - base);
    put_le<uint32_t>(e.data() + 8, static_cast<uint32_t>(ex.payload.size()));
    for (int i = 0; i < 3; ++i) put_le<uint32_t>(e.data() + 12 + 4 * i, ex.dims[i]);
    M4_RETURN_IF_ERROR(put(ex.payload.data(), ex.payload.size()));
    put_le<uint64_t>(e.data() + 24, pos_ - base);
    put_le<uint32_t>(e.data() + 32, static_cast<uint32_t>(ex.prompt.size()));
    M4_RETURN_IF_ERROR(put(ex.prompt.data(), ex.prompt.size()));
    put_le<uint32_t>(e.data() + 36, static_cast<uint32_t>(ex.target.size()));
    put_le<uint64_t>(e.data() + 40, pos_ - base);
    M4_RETURN_IF_ERROR(put(ex.target.data(), ex.target.size()));
    put_le<int32_t>(e.data() + 48, ex.label);
    put_le<float>(e.data() + 52, ex.value);
    put_le<uint32_t>(e.data() + 56, ex.group);
    std::copy(h.begin(), h.end(), e.begin() + 64);
    index_.push_back(e);
    return true;
}

Status DatasetWriter::finish() {
    M4_RETURN_IF_ERROR(open_if_needed());
    static const uint8_t pad[kPayloadAlign] = {};
    M4_RETURN_IF_ERROR(put(pad, (kPayloadAlign - pos_ % kPayloadAlign) % kPayloadAlign));
    const uint64_t data_len  = pos_ - kHeaderBytes;
    const uint64_t index_off = pos_;
    for (const auto & e : index_) M4_RETURN_IF_ERROR(put(e.data(), e.size()));
    uint8_t hdr[kHeaderBytes] = {};
    std::memcpy(hdr, kMagic, 4);
    put_le<uint32_t>(hdr + 4, kVersion);
    put_le<uint64_t>(hdr + 8, index_.size());
    put_le<uint64_t>(hdr + 16, kHeaderBytes);
    put_le<uint64_t>(hdr + 24, data_len);
    put_le<uint64_t>(hdr + 32, index_off);
    hdr[40] = static_cast<uint8_t>(modality_);
    if (std::fseek(f_, 0, SEEK_SET) != 0 || std::fwrite(hdr, 1, sizeof hdr, f_) != sizeof hdr || std::fflush(f_) != 0)
        return io_error(path_ + ".tmp: write failed");
    std::fclose(f_);
    f_     = nullptr;
    bytes_ = pos_;
    if (std::rename((path_ + ".tmp").c_str(), path_.c_str()) != 0) return io_error(path_ + ": rename failed");
    M4_ASSIGN_OR_RETURN(sha_hex_, file_sha256(path_));
    return Status::ok();
}

Result<Dataset> Dataset::open_file(const std::string & path) {
    M4_ASSIGN_OR_RETURN(MappedFile f, MappedFile::open(path));
    const uint8_t * p = f.data();
    const size_t n    = f.size();
    if (n < kHeaderBytes) return invalid_argument(path + ": truncated (shorter than the 64-byte header)");
    if (std::memcmp(p, kMagic, 4) != 0) return invalid_argument(path + ": bad magic (not an .m4ds split file)");
    if (get_le<uint32_t>(p + 4) != kVersion)
        return invalid_argument(path + ": unsupported version " + std::to_string(get_le<uint32_t>(p + 4)));
    const uint64_t count = get_le<uint64_t>(p + 8), doff = get_le<uint64_t>(p + 16);
    const uint64_t dlen = get_le<uint64_t>(p + 24), ioff = get_le<uint64_t>(p + 32);
    if (p[40] > static_cast<uint8_t>(Modality::Text)) return invalid_argument(path + ": unknown modality code");
    if (doff != kHeaderBytes || dlen > n - doff || ioff < doff + dlen || ioff > n || count > (n - ioff) / kEntryBytes ||
        ioff + count * kEntryBytes != n)
        return invalid_argument(path + ": section lengths do not match the file size (truncated or corrupt)");
    Dataset ds;
    ds.modality_ = static_cast<Modality>(p[40]);
    ds.count_    = count;
    ds.dat_      = p + doff;
    ds.dat_len_  = dlen;
    ds.idx_      = p + ioff;
    for (uint64_t i = 0; i < count; ++i) {
        const uint8_t * e = ds.idx_ + i * kEntryBytes;
        auto in_range     = [&](uint64_t off, uint64_t len) { return off <= dlen && len <= dlen - off; };
        if (!in_range(get_le<uint64_t>(e), get_le<uint32_t>(e + 8)) ||
            !in_range(get_le<uint64_t>(e + 24), get_le<uint32_t>(e + 32)) ||
            !in_range(get_le<uint64_t>(e + 40), get_le<uint32_t>(e + 36)))
            return invalid_argument(path + ": example " + std::to_string(i) + " lies outside the data section");
    }
    ds.file_ = std::move(f);
    return ds;
}

Result<Dataset> Dataset::open(const std::string & dir, const std::string & task, const std::string & split) {
    const std::string mpath = dir + "/" + task + "/manifest.json";
    auto text               = read_file_bytes(mpath);
    if (!text) return not_found(mpath + ": no manifest (build it with `m4fw data build " + task + "`)");
    nlohmann::json man = nlohmann::json::parse(text.value(), nullptr, false);
    if (man.is_discarded() || !man.is_object()) return invalid_argument(mpath + ": manifest is not a JSON object");
    if (!man.contains("splits") || !man["splits"].contains(split))
        return not_found(mpath + ": task has no split '" + split + "'");
    M4_ASSIGN_OR_RETURN(Dataset ds, open_file(dir + "/" + task + "/" + split + ".m4ds"));
    ds.manifest_    = std::move(man);
    const auto & sp = ds.manifest_["splits"][split];
    if (sp.value("count", uint64_t(0)) != ds.count_)
        return invalid_argument(ds.path() + ": holds " + std::to_string(ds.count_) +
                                " examples but the manifest says " + std::to_string(sp.value("count", 0)));
    return ds;
}

Example Dataset::at(size_t i) const {
    M4_CHECK(i < count_);
    const uint8_t * e = idx_ + i * kEntryBytes;
    Example ex;
    ex.payload     = dat_ + get_le<uint64_t>(e);
    ex.payload_len = get_le<uint32_t>(e + 8);
    for (int k = 0; k < 3; ++k) ex.dims[k] = get_le<uint32_t>(e + 12 + 4 * k);
    ex.prompt = {reinterpret_cast<const char *>(dat_ + get_le<uint64_t>(e + 24)), get_le<uint32_t>(e + 32)};
    ex.target = {reinterpret_cast<const char *>(dat_ + get_le<uint64_t>(e + 40)), get_le<uint32_t>(e + 36)};
    ex.label  = get_le<int32_t>(e + 48);
    ex.value  = get_le<float>(e + 52);
    ex.group  = get_le<uint32_t>(e + 56);
    std::copy_n(e + 64, ex.hash.size(), ex.hash.begin());
    return ex;
}

std::vector<float> Dataset::audio_f32(size_t i) const {
    Example ex = at(i);
    std::vector<float> out(ex.payload_len / 2);
    for (size_t k = 0; k < out.size(); ++k) out[k] = get_le<int16_t>(ex.payload + 2 * k) / 32768.0f;
    return out;
}

std::vector<float> Dataset::image_f32(size_t i) const {
    Example ex = at(i);
    std::vector<float> out(ex.payload_len);
    for (size_t k = 0; k < out.size(); ++k) out[k] = ex.payload[k] / 255.0f;
    return out;
}

std::vector<float> Dataset::imu_f32(size_t i) const {
    Example ex = at(i);
    std::vector<float> out(ex.payload_len / 4);
    std::memcpy(out.data(), ex.payload, out.size() * 4);
    return out;
}

std::vector<std::string> Dataset::labels() const {
    std::vector<std::string> out;
    if (manifest_.contains("labels") && manifest_["labels"].is_array())
        for (const auto & l : manifest_["labels"]) out.push_back(l.is_string() ? l.get<std::string>() : l.dump());
    return out;
}

Status Dataset::verify() const {
    for (size_t i = 0; i < count_; ++i) {
        Example ex = at(i);
        if (content_hash(modality_, ex.dims, ex.payload, ex.payload_len, ex.prompt) != ex.hash)
            return invalid_argument(path() + ": example " + std::to_string(i) +
                                    " does not match its content hash (file modified or corrupt)");
    }
    return Status::ok();
}

Result<std::string> file_sha256(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return not_found(path + ": cannot open");
    Sha256 h;
    std::vector<char> buf(1 << 20);
    while (in) {
        in.read(buf.data(), buf.size());
        h.update(buf.data(), static_cast<size_t>(in.gcount()));
    }
    return to_hex(h.finish());
}

}  // namespace m4::data
