// Audio outputs of the generator path (path 4 over text, the speech decoder): the Griffin-Lim
// waveform as a 16-bit PCM mono WAV file or WAV bytes (the service's Result.audio).
//
//     … Model::run(Path::Generator, Modality::Audio, …) → out.audio, out.audio_rate …
//     write_wav("hello.wav", out.audio.data(), out.audio.size(), out.audio_rate);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace m4::runtime {

// Samples in [-1, 1] → 16-bit PCM: round(v·32767), clamped (NaN → 0).
std::vector<int16_t> audio_to_pcm16(const float * samples, int64_t n);
// A RIFF/WAVE file (PCM, 1 channel, 16 bit, `rate` Hz) appended to *out.
Status encode_wav(const float * samples, int64_t n, int64_t rate, std::string * out);
// The same bytes written to `path` (checked by check_output_path(path, "wav"), written to a
// temporary file, then renamed). Errors name the path.
Status write_wav(const std::string & path, const float * samples, int64_t n, int64_t rate);

}  // namespace m4::runtime
