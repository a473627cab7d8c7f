// Runs whose output is a file: an adapter (or, without one, a path) whose output kind is an image
// or audio goes into one of the firmware's decoders, and the result is written as PNG or WAV.
// Shared by `m4fw run --out` and `m4fw demo` (docs/architecture.md, "Outputs written to files").
//   speech   path generator over audio: a text → the speech decoder (+ Griffin-Lim) → WAV
//   enlarge  path generator over images: an image (at most S×S) → the image decoder → S×S PNG
//   draw     path full over text: a description → the backbone → the image decoder → S×S PNG
//
//     const auto kind = runtime::decoder_run(ad.manifest());              // DecoderRun::Speech …
//     M4_RETURN_IF_ERROR(runtime::check_decoder(*fw, "m4-small.m4fw", kind, "tts.m4a"));
//     M4_ASSIGN_OR_RETURN(auto w, runtime::run_to_file(*fw, "m4-small.m4fw", &ad, ad.manifest(), "seven",
//                                                      "out/seven.wav", "tts.m4a"));
//     fmt::print("wrote {} ({})\n", w.path, w.shape());                 // "wrote out/seven.wav (0.82 s, 16 kHz)"
#pragma once

#include <string>
#include <vector>

#include "adapter/adapter.h"

namespace m4::runtime {

enum class DecoderRun { None = 0, Speech, Enlarge, Draw };
// Which decoder run the manifest's path and modality make (None: the output is printed, not a file).
DecoderRun decoder_run(const adapter::Manifest & m);
const char * decoder_run_name(DecoderRun r);  // "speech", "enlarge", "draw", "none"
const char * output_extension(DecoderRun r);  // "wav", "png", ""
const char * decoder_needed(DecoderRun r);    // the config section: "decoders.speech", "decoders.image" …

// The firmware has the decoder the run needs (and, to draw, the image decoder's projector from the
// backbone). Errors (INCOMPATIBLE) name `fw_name`, the missing config section and `who`.
Status check_decoder(const model::Model & fw, const std::string & fw_name, DecoderRun r, const std::string & who);

// What run_to_file wrote.
struct FileOutput {
    std::string path;
    DecoderRun run = DecoderRun::None;
    int64_t width = 0, height = 0;        // an image
    int64_t in_width = 0, in_height = 0;  // the enlargement: its input image
    std::vector<float> audio;             // speech: the samples in [-1, 1], before 16-bit rounding
    int64_t sample_rate = 0;
    double ms           = 0;    // the firmware's run alone
    std::string shape() const;  // "32x32", "32x32, enlarged from 16x16" or "0.82 s, 16 kHz"
};

// Runs `input` (as `m4fw run` takes it: the text itself, a text file for a description, or an image
// file / .npy for the enlargement) through `man`'s decoder run with the adapter `ad` (nullptr: the
// firmware alone) and writes `out` (.wav for speech, .png otherwise; checked before anything runs).
// Errors name `who` (the adapter or the path), the input, or `out`.
Result<FileOutput> run_to_file(const model::Model & fw, const std::string & fw_name, const adapter::Adapter * ad,
                               const adapter::Manifest & man, const std::string & input, const std::string & out,
                               const std::string & who);

// Makes `dir` a directory the outputs can be written to: created (with its parents) when absent;
// an existing file, a directory that cannot be created or is not writable is an error naming
// `flag` (the option that gave it) and `dir`.
Status prepare_output_dir(const std::string & dir, const std::string & flag);

// A classifier's answer: the top label (or "class K" past the manifest's labels) and its softmax
// probability.
struct TopLabel {
    std::string label;
    float prob = 0;
};
TopLabel top_label(const adapter::Manifest & m, const std::vector<float> & logits);

// `rec` can recognise speech on `fw`: an audio classify adapter on the encoder path, and the
// firmware has an audio encoder. Errors name `rec_name`.
Status check_recogniser(const model::Model & fw, const adapter::Adapter & rec, const std::string & rec_name);

// What a recogniser (an audio classify adapter on the encoder path, bound to `fw`) hears in
// `samples` — cut to the audio encoder's clip and zero-padded, as the aud.tts benchmark scores
// intelligibility. Errors name `rec_name`.
Result<TopLabel> recognise_audio(const model::Model & fw, const adapter::Adapter & rec, const std::string & rec_name,
                                 const std::vector<float> & samples);

}  // namespace m4::runtime
