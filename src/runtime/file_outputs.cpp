#include "runtime/file_outputs.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "model/preprocess.h"
#include "runtime/audio_out.h"
#include "runtime/engine.h"
#include "runtime/images.h"
#include "runtime/inputs.h"

namespace m4::runtime {

DecoderRun decoder_run(const adapter::Manifest & m) {
    if (m.path == model::Path::Generator) {
        if (m.modality == model::Modality::Audio) return DecoderRun::Speech;
        if (m.modality == model::Modality::Image) return DecoderRun::Enlarge;
    }
    if (m.path == model::Path::Full && m.modality == model::Modality::Text) return DecoderRun::Draw;
    return DecoderRun::None;
}

const char * decoder_run_name(DecoderRun r) {
    switch (r) {
        case DecoderRun::Speech:
            return "speech";
        case DecoderRun::Enlarge:
            return "enlarge";
        case DecoderRun::Draw:
            return "draw";
        case DecoderRun::None:
            break;
    }
    return "none";
}

const char * output_extension(DecoderRun r) {
    return r == DecoderRun::Speech ? "wav" : r == DecoderRun::None ? "" : "png";
}

const char * decoder_needed(DecoderRun r) {
    switch (r) {
        case DecoderRun::Speech:
            return "a speech decoder (\"decoders.speech\")";
        case DecoderRun::Enlarge:
            return "an image decoder (\"decoders.image\")";
        case DecoderRun::Draw:
            return "an image decoder with a projector from the backbone (\"decoders.image.from_backbone\")";
        case DecoderRun::None:
            break;
    }
    return "no decoder";
}

Status check_decoder(const model::Model & fw, const std::string & fw_name, DecoderRun r, const std::string & who) {
    const auto & c = fw.config();
    switch (r) {
        case DecoderRun::Speech:
            if (!c.has_decoder(model::Modality::Audio))
                return incompatible(fw_name + ": no speech decoder (\"decoders.speech\") for " + who);
            return Status::ok();
        case DecoderRun::Enlarge:
        case DecoderRun::Draw:
            if (!c.has_decoder(model::Modality::Image))
                return incompatible(fw_name + ": no image decoder (\"decoders.image\") for " + who);
            if (r == DecoderRun::Draw && !c.has_draw_path())
                return incompatible(fw_name +
                                    ": the image decoder has no projector from the backbone "
                                    "(\"decoders.image.from_backbone\") for " +
                                    who);
            return Status::ok();
        case DecoderRun::None:
            break;
    }
    return invalid_argument(who + ": its output is printed, not written by a decoder");
}

std::string FileOutput::shape() const {
    if (run == DecoderRun::Speech) {
        const double rate = double(sample_rate);
        const std::string khz =
            sample_rate % 1000 == 0 ? fmt::format("{}", sample_rate / 1000) : fmt::format("{:.1f}", rate / 1000);
        return fmt::format("{:.2f} s, {} kHz", double(audio.size()) / rate, khz);
    }
    if (run == DecoderRun::Enlarge)
        return fmt::format("{}x{}, enlarged from {}x{}", width, height, in_width, in_height);
    return fmt::format("{}x{}", width, height);
}

Result<FileOutput> run_to_file(const model::Model & fw, const std::string & fw_name, const adapter::Adapter * ad,
                               const adapter::Manifest & man, const std::string & input, const std::string & out,
                               const std::string & who) {
    const DecoderRun kind = decoder_run(man);
    M4_RETURN_IF_ERROR(check_decoder(fw, fw_name, kind, who));
    M4_RETURN_IF_ERROR(check_output_path(out, output_extension(kind)));
    InputSpec spec;
    spec.name = input;
    model::Modality run_modality;
    std::pair<int64_t, int64_t> native{0, 0};  // the enlargement's input: height, width
    if (kind == DecoderRun::Speech) {
        std::error_code ec;
        if (guess_modality(input) != model::Modality::Text || std::filesystem::exists(input, ec))
            return invalid_argument(input + ": " + who + " takes text, not a file");
        spec.name     = "\"" + input + "\"";
        spec.modality = model::Modality::Text;
        spec.text     = input;
        run_modality  = model::Modality::Audio;
    } else if (kind == DecoderRun::Enlarge) {
        if (guess_modality(input) != model::Modality::Image &&
            (input.size() < 4 || input.substr(input.size() - 4) != ".npy"))
            return invalid_argument(input + ": " + who + " takes an image (png, jpg, bmp, gif, ppm or .npy), not text");
        spec.modality = model::Modality::Image;
        M4_ASSIGN_OR_RETURN(spec.signal, load_image_for_decoder(input, *fw.config().image_decoder, &native));
        run_modality = model::Modality::Image;
    } else {
        if (guess_modality(input) != model::Modality::Text)
            return invalid_argument(input + ": " + who + " takes a text description, not a " +
                                    model::modality_name(guess_modality(input)) + " file");
        spec.modality = model::Modality::Text;
        M4_ASSIGN_OR_RETURN(spec.text, read_text_input(input));
        run_modality = model::Modality::Text;
    }
    M4_ASSIGN_OR_RETURN(model::Request r, prepare_item(fw, man.path, ad ? &man : nullptr, spec, ""));
    r.adapter     = ad ? &ad->weights() : nullptr;
    const auto t0 = std::chrono::steady_clock::now();
    M4_ASSIGN_OR_RETURN(auto outs, fw.run(man.path, run_modality, {&r, 1}));
    FileOutput w;
    w.ms        = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    w.path      = out;
    w.run       = kind;
    w.in_height = native.first, w.in_width = native.second;
    auto & o = outs[0];
    if (kind == DecoderRun::Speech) {
        M4_RETURN_IF_ERROR(write_wav(out, o.audio.data(), static_cast<int64_t>(o.audio.size()), o.audio_rate));
        w.audio       = std::move(o.audio);
        w.sample_rate = o.audio_rate;
    } else {
        w.width = w.height = o.image_size;
        M4_RETURN_IF_ERROR(write_image_png(out, o.image.data(), o.image_size, o.image_size));
    }
    return w;
}

Status prepare_output_dir(const std::string & dir, const std::string & flag) {
    const std::string where = flag + " " + dir;
    if (dir.empty()) return invalid_argument(flag + ": no directory given");
    std::error_code ec;
    const auto st = std::filesystem::status(dir, ec);
    if (std::filesystem::exists(st)) {
        if (!std::filesystem::is_directory(st)) return invalid_argument(where + ": exists and is not a directory");
    } else if (!std::filesystem::create_directories(dir, ec) || ec) {
        return io_error(where + ": could not create the directory (" + (ec ? ec.message() : "unknown error") + ")");
    }
    if (::access(dir.c_str(), W_OK | X_OK) != 0) return permission_denied(where + ": the directory is not writable");
    return Status::ok();
}

TopLabel top_label(const adapter::Manifest & m, const std::vector<float> & logits) {
    TopLabel t;
    if (logits.empty()) return t;
    std::vector<double> p(logits.begin(), logits.end());
    const double mx = *std::max_element(p.begin(), p.end());
    double sum      = 0;
    for (double & v : p) sum += v = std::exp(v - mx);
    const size_t k = size_t(std::max_element(p.begin(), p.end()) - p.begin());
    t.prob         = float(p[k] / sum);
    t.label        = k < m.labels.size() ? m.labels[k] : fmt::format("class {}", k);
    return t;
}

Status check_recogniser(const model::Model & fw, const adapter::Adapter & rec, const std::string & rec_name) {
    const adapter::Manifest & m = rec.manifest();
    if (m.task != adapter::Task::Classify || m.path != model::Path::Encoder || m.modality != model::Modality::Audio)
        return invalid_argument(rec_name +
                                ": a recogniser is an audio classify adapter on the encoder path (this is a " +
                                adapter::task_name(m.task) + " adapter on the " + model::path_name(m.path) +
                                " path over " + model::modality_name(m.modality) + ")");
    if (!fw.config().has_encoder(model::Modality::Audio))
        return incompatible(rec_name + ": the firmware has no audio encoder to recognise speech with");
    return Status::ok();
}

Result<TopLabel> recognise_audio(const model::Model & fw, const adapter::Adapter & rec, const std::string & rec_name,
                                 const std::vector<float> & samples) {
    M4_RETURN_IF_ERROR(check_recogniser(fw, rec, rec_name));
    if (samples.empty()) return invalid_argument(rec_name + ": no audio to recognise");
    const auto & ec = fw.config().encoder(model::Modality::Audio);
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(samples.size()), ec.clip_samples);
    model::Request r;
    r.adapter = &rec.weights();
    M4_ASSIGN_OR_RETURN(r.signal, model::audio_input(samples.data(), n, ec));
    M4_ASSIGN_OR_RETURN(auto outs, fw.run(model::Path::Encoder, model::Modality::Audio, {&r, 1}));
    return top_label(rec.manifest(), outs[0].head);
}

}  // namespace m4::runtime
