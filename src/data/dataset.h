// The benchmark data-set format (docs/formats.md, "Benchmark data sets"): one directory per task
// holding `manifest.json` and one `<split>.m4ds` file per split. A split file is memory-mapped
// read-only; examples are views into it (no copy), so the trainer and the evaluator of many tasks
// can share the page cache.
//
// Example:
//     auto ds = data::Dataset::open("data", "img.fashion_mnist", "train");
//     if (!ds) { fmt::print(stderr, "{}\n", ds.status().message()); return 1; }
//     for (size_t i = 0; i < ds->size(); ++i) {
//         data::Example ex = ds->at(i);            // ex.payload: 28×28×1 u8 pixels, ex.label: class
//         std::vector<float> px = ds->image_f32(i); // same pixels in [0, 1]
//     }
//
// Writing (builders only): DatasetWriter w(path, Modality::Audio); w.add(ex); w.finish();
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/crypto.h"
#include "base/mapped_file.h"
#include "base/status.h"

namespace m4::data {

// What an example's payload holds (u8 code in the file header).
enum class Modality : uint8_t { Image = 0, Audio = 1, Imu = 2, Text = 3 };
const char * modality_name(Modality m);
Result<Modality> modality_from_name(const std::string & name);

// Payload layouts (dims in the index entry):
//   Image: u8 pixels, HWC, dims = {H, W, C}, C = 1 (grey) or 3 (RGB)
//   Audio: i16 PCM at 16 kHz mono, dims = {n_samples, 1, 1}; value / 32768 is the float sample
//   Imu:   f32 rows of 6 axes (acc x,y,z m/s², gyro x,y,z rad/s) at 50 Hz, dims = {n_rows, 6, 1}
//   Text:  UTF-8 bytes, dims = {n_bytes, 1, 1}
constexpr int kAudioRate      = 16000;
constexpr int kImuRate        = 50;
constexpr int kImuRowsDefault = 100;  // the simulated IMU tasks' window: 2 s at kImuRate (BuildOptions::imu_rows)

// A content hash: the first 16 bytes of SHA-256 over the example's input (modality, dims,
// payload, prompt). The target is left out: an input seen in training is a leak whatever its label.
using ContentHash = std::array<uint8_t, 16>;
struct ContentHashHasher {
    size_t operator()(const ContentHash & h) const {
        size_t v;
        std::memcpy(&v, h.data(), sizeof v);
        return v;
    }
};
using HashSet = std::unordered_set<ContentHash, ContentHashHasher>;

ContentHash content_hash(Modality m, const uint32_t dims[3], const void * payload, size_t payload_len,
                         std::string_view prompt);
// Hash of a text after normalisation (lower case ASCII, whitespace runs → one space, trimmed):
// the audit also compares test texts and pretraining texts this way.
ContentHash text_hash(std::string_view text);

// One example as stored (a view into the mapped file for the reader).
struct Example {
    const uint8_t * payload = nullptr;
    size_t payload_len      = 0;
    uint32_t dims[3]        = {0, 0, 0};
    std::string_view prompt;  // e.g. a VQA question; empty when none
    std::string_view target;  // target text for generation tasks; empty when none
    int32_t label  = -1;      // class index, -1 when none
    float value    = 0.0f;    // regression target (0 when none)
    uint32_t group = 0;       // source id: font, voice, subject, file … (what the split holds out)
    ContentHash hash{};

    std::string_view text() const { return {reinterpret_cast<const char *>(payload), payload_len}; }
};

// Builder-side example: owns its bytes.
struct ExampleIn {
    std::vector<uint8_t> payload;
    uint32_t dims[3] = {0, 1, 1};
    std::string prompt;
    std::string target;
    int32_t label  = -1;
    float value    = 0.0f;
    uint32_t group = 0;

    static ExampleIn text(std::string_view s);
    static ExampleIn image(std::vector<uint8_t> px, uint32_t h, uint32_t w, uint32_t c);
    static ExampleIn audio(const std::vector<float> & samples);  // clamps to [-1, 1], stores i16
    static ExampleIn imu(const std::vector<float> & rows);       // rows.size() = 6·n
};

// Streams examples to `<path>.tmp`, then writes the index and renames over `path`.
class DatasetWriter {
  public:
    DatasetWriter(std::string path, Modality m);
    ~DatasetWriter();
    DatasetWriter(const DatasetWriter &)             = delete;
    DatasetWriter & operator=(const DatasetWriter &) = delete;

    // Hashes listed here are refused (held-out splits exclude the examples of earlier splits).
    void exclude(const HashSet & hashes) { exclude_ = &hashes; }
    // Text examples whose normalised text (text_hash) is listed here are refused too: a test
    // sentence must not occur, up to case and spacing, on the training side or in pretraining.
    void exclude_texts(const HashSet & text_hashes) { exclude_texts_ = &text_hashes; }
    // Adds one example; returns false (and drops it) when it duplicates one already written or
    // an excluded one.
    Result<bool> add(const ExampleIn & ex);
    Status finish();

    size_t count() const { return index_.size(); }
    size_t dropped() const { return dropped_; }
    const HashSet & hashes() const { return seen_; }
    const HashSet & text_hashes() const { return seen_text_; }  // text_hash of every Text example written
    uint64_t bytes() const { return bytes_; }
    const std::string & sha256_hex() const { return sha_hex_; }

  private:
    Status open_if_needed();
    Status put(const void * p, size_t n);

    std::string path_;
    Modality modality_;
    std::FILE * f_ = nullptr;
    uint64_t pos_  = 0;  // bytes written so far (header included)
    std::vector<std::array<uint8_t, 80>> index_;
    HashSet seen_, seen_text_;
    const HashSet * exclude_       = nullptr;
    const HashSet * exclude_texts_ = nullptr;
    size_t dropped_                = 0;
    uint64_t bytes_                = 0;
    std::string sha_hex_;
};

// A read-only, memory-mapped split.
class Dataset {
  public:
    // Opens `<dir>/<task>/<split>.m4ds` and `<dir>/<task>/manifest.json`.
    static Result<Dataset> open(const std::string & dir, const std::string & task, const std::string & split);
    // Opens one split file by path (no manifest).
    static Result<Dataset> open_file(const std::string & path);

    size_t size() const { return count_; }
    Modality modality() const { return modality_; }
    Example at(size_t i) const;
    const nlohmann::json & manifest() const { return manifest_; }
    const std::string & path() const { return file_.path(); }

    // Convenience decoders of one example's payload.
    std::vector<float> audio_f32(size_t i) const;  // samples in [-1, 1]
    std::vector<float> image_f32(size_t i) const;  // pixels in [0, 1], HWC
    std::vector<float> imu_f32(size_t i) const;    // rows × 6
    // Label names from the manifest (empty when the task has none).
    std::vector<std::string> labels() const;

    // Recomputes every example's content hash and compares it with the stored one.
    Status verify() const;

  private:
    MappedFile file_;
    nlohmann::json manifest_;
    Modality modality_   = Modality::Text;
    size_t count_        = 0;
    const uint8_t * idx_ = nullptr;
    const uint8_t * dat_ = nullptr;
    uint64_t dat_len_    = 0;
};

// SHA-256 of a whole file, lowercase hex.
Result<std::string> file_sha256(const std::string & path);

}  // namespace m4::data
