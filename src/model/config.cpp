#include "model/config.h"

#include <fmt/format.h>

namespace m4::model {

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

bool parse_modality(const std::string & s, Modality * out) {
    for (int i = 0; i <= 3; ++i)
        if (s == modality_name(static_cast<Modality>(i))) return *out = static_cast<Modality>(i), true;
    return false;
}

const char * path_name(Path p) {
    switch (p) {
        case Path::Encoder:
            return "encoder";
        case Path::Backbone:
            return "backbone";
        case Path::Full:
            return "full";
        case Path::Generator:
            return "generator";
    }
    return "?";
}

bool parse_path(const std::string & s, Path * out) {
    for (int i = 0; i < kPathCount; ++i)
        if (s == path_name(static_cast<Path>(i))) return *out = static_cast<Path>(i), true;
    return false;
}

int64_t EncoderConfig::n_frames() const {
    return clip_samples >= n_fft && hop > 0 ? 1 + (clip_samples - n_fft) / hop : 0;
}

int64_t EncoderConfig::input_values() const {
    switch (modality) {
        case Modality::Image:
            return image_size * image_size * 3;
        case Modality::Audio:
            return clip_samples;
        case Modality::Imu:
            return window * 6;
        case Modality::Text:
            break;
    }
    return 0;
}

const char * activation_name(Activation a) {
    switch (a) {
        case Activation::Gelu:
            return "gelu";
        case Activation::GeluTanh:
            return "gelu_tanh";
        case Activation::QuickGelu:
            return "quick_gelu";
    }
    return "?";
}

int64_t EncoderConfig::tokens() const {
    return patches() + (cls_token ? 1 : 0);
}

int64_t EncoderConfig::patches() const {
    switch (modality) {
        case Modality::Image:
            return (image_size / patch_size) * (image_size / patch_size);
        case Modality::Audio:
            return n_frames() / patch_frames;
        case Modality::Imu:
            return window / patch_size;
        case Modality::Text:
            break;
    }
    return 0;
}

int64_t EncoderConfig::patch_dim() const {
    switch (modality) {
        case Modality::Image:
            return patch_size * patch_size * channels;
        case Modality::Audio:
            return patch_frames * n_mels;
        case Modality::Imu:
            return patch_size * channels;
        case Modality::Text:
            break;
    }
    return 0;
}

bool ModelConfig::has_encoder(Modality m) const {
    return m != Modality::Text && encoders[static_cast<int>(m)].has_value();
}

bool ModelConfig::has_decoder(Modality m) const {
    return (m == Modality::Image && image_decoder.has_value()) || (m == Modality::Audio && speech_decoder.has_value());
}

EncoderConfig SpeechDecoderConfig::trunk() const {
    EncoderConfig e;
    e.modality   = Modality::Imu;
    e.window     = frames();
    e.patch_size = 1;
    e.channels   = kSpeechSymbols;
    e.width      = width;
    e.layers     = layers;
    e.heads      = heads;
    e.ffn        = ffn;
    e.norm_eps   = norm_eps;
    return e;
}

EncoderConfig SpeechDecoderConfig::audio_view() const {
    EncoderConfig e;
    e.modality     = Modality::Audio;
    e.sample_rate  = sample_rate;
    e.clip_samples = samples();
    e.n_fft        = n_fft;
    e.hop          = hop;
    e.n_mels       = n_mels;
    e.patch_frames = 1;
    return e;
}

const EncoderConfig & ModelConfig::encoder(Modality m) const {
    M4_CHECK_MSG(has_encoder(m), modality_name(m));
    return *encoders[static_cast<int>(m)];
}

namespace {

// Reads a positive integer key; records the first error.
struct Reader {
    const nlohmann::json & j;
    std::string where;
    Status * err;

    int64_t pos_int(const char * key, bool required = true, int64_t def = 0) {
        if (!err->is_ok()) return def;
        if (!j.contains(key)) {
            if (required) *err = invalid_argument("config: missing \"" + where + "." + key + "\"");
            return def;
        }
        const auto & v = j[key];
        if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
            *err = invalid_argument("config: \"" + where + "." + key + "\" must be a positive integer");
            return def;
        }
        return v.get<int64_t>();
    }
    float pos_float(const char * key, float def) {
        if (!err->is_ok() || !j.contains(key)) return def;
        if (!j[key].is_number() || j[key].get<double>() <= 0) {
            *err = invalid_argument("config: \"" + where + "." + key + "\" must be a positive number");
            return def;
        }
        return j[key].get<float>();
    }
    void require(bool cond, const std::string & msg) {
        if (err->is_ok() && !cond) *err = invalid_argument("config: " + where + ": " + msg);
    }
};

Result<ModelConfig> parse_unchecked(const nlohmann::json & j);

}  // namespace

Result<ModelConfig> parse_model_config(const nlohmann::json & j) {
    // Values of the wrong JSON type make nlohmann throw; that is an input fault, not a crash.
    try {
        return parse_unchecked(j);
    } catch (const nlohmann::json::exception & e) {
        return invalid_argument(std::string("config: malformed value (") + e.what() + ")");
    }
}

namespace {
Result<ModelConfig> parse_unchecked(const nlohmann::json & j) {
    ModelConfig c;
    Status err;
    if (!j.is_object()) return invalid_argument("config: not a JSON object");
    c.name    = j.value("name", "unnamed");
    c.version = j.value("version", "0");
    Reader top{j, "", &err};
    c.embed_dim = top.pos_int("embed_dim");
    if (!j.contains("backbone") || !j["backbone"].is_object()) return invalid_argument("config: missing \"backbone\"");
    if (!j.contains("text") || !j["text"].is_object()) return invalid_argument("config: missing \"text\"");
    {
        Reader r{j["text"], "text", &err};
        c.text.vocab_size = r.pos_int("vocab_size");
        const auto & t    = j["text"];
        c.text.bos_id     = t.value("bos_id", 1);
        c.text.eos_id     = t.value("eos_id", 2);
        c.text.pad_id     = t.value("pad_id", 0);
        c.text.unk_id     = t.value("unk_id", 3);
        for (int32_t id : {c.text.bos_id, c.text.eos_id})
            r.require(id >= 0 && id < c.text.vocab_size,
                      "special token id " + std::to_string(id) + " outside the vocabulary");
    }
    {
        Reader r{j["backbone"], "backbone", &err};
        auto & b      = c.backbone;
        b.width       = r.pos_int("width");
        b.layers      = r.pos_int("layers");
        b.heads       = r.pos_int("heads");
        b.kv_heads    = r.pos_int("kv_heads", false, b.heads);
        b.ffn         = r.pos_int("ffn");
        b.max_seq     = r.pos_int("max_seq");
        b.rope_theta  = r.pos_float("rope_theta", 10000.0f);
        b.norm_eps    = r.pos_float("norm_eps", 1e-5f);
        b.tie_lm_head = j["backbone"].value("tie_lm_head", false);
        r.require(b.heads > 0 && b.width % b.heads == 0, "width must be divisible by heads");
        r.require(b.kv_heads > 0 && b.heads % b.kv_heads == 0, "heads must be divisible by kv_heads");
        r.require(b.heads > 0 && (b.width / b.heads) % 2 == 0, "head dimension must be even (RoPE rotates pairs)");
    }
    if (j.contains("encoders")) {
        if (!j["encoders"].is_object()) return invalid_argument("config: \"encoders\" must be an object");
        for (auto & [key, e] : j["encoders"].items()) {
            Modality m;
            if (!parse_modality(key, &m) || m == Modality::Text)
                return invalid_argument("config: unknown encoder \"" + key + "\" (image, audio or imu)");
            if (!e.is_object()) return invalid_argument("config: encoders." + key + " must be an object");
            Reader r{e, "encoders." + key, &err};
            EncoderConfig ec;
            ec.modality = m;
            if (m == Modality::Image) {
                ec.image_size = r.pos_int("image_size");
                ec.patch_size = r.pos_int("patch_size");
                ec.channels   = r.pos_int("channels", false, 3);
                r.require(ec.channels == 3, "channels must be 3 (RGB)");
                r.require(ec.patch_size > 0 && ec.image_size % ec.patch_size == 0,
                          "image_size must be a multiple of patch_size");
            } else if (m == Modality::Audio) {
                ec.sample_rate  = r.pos_int("sample_rate");
                ec.clip_samples = r.pos_int("clip_samples");
                ec.n_fft        = r.pos_int("n_fft");
                ec.hop          = r.pos_int("hop");
                ec.n_mels       = r.pos_int("n_mels");
                ec.patch_frames = r.pos_int("patch_frames");
                r.require(ec.n_fft <= ec.clip_samples, "n_fft must not exceed clip_samples");
                r.require(ec.n_fft % 2 == 0, "n_fft must be even");
                r.require(ec.n_mels <= ec.n_fft / 2, "n_mels must not exceed n_fft / 2");
            } else {
                ec.sample_rate = r.pos_int("sample_rate");
                ec.window      = r.pos_int("window");
                ec.patch_size  = r.pos_int("patch_size");
                ec.channels    = r.pos_int("channels", false, 6);
                r.require(ec.channels == 6, "channels must be 6 (accelerometer + gyroscope)");
            }
            ec.width    = r.pos_int("width");
            ec.layers   = r.pos_int("layers");
            ec.heads    = r.pos_int("heads");
            ec.ffn      = r.pos_int("ffn");
            ec.norm_eps = r.pos_float("norm_eps", 1e-5f);
            if (e.contains("cls_token")) {
                r.require(e["cls_token"].is_boolean(), "cls_token must be true or false");
                if (e["cls_token"].is_boolean()) ec.cls_token = e["cls_token"].get<bool>();
            }
            if (e.contains("pre_norm")) {
                r.require(e["pre_norm"].is_boolean(), "pre_norm must be true or false");
                if (e["pre_norm"].is_boolean()) ec.pre_norm = e["pre_norm"].get<bool>();
            }
            if (e.contains("activation")) {
                const std::string a = e["activation"].is_string() ? e["activation"].get<std::string>() : "";
                bool known          = false;
                for (Activation v : {Activation::Gelu, Activation::GeluTanh, Activation::QuickGelu})
                    if (a == activation_name(v)) ec.activation = v, known = true;
                r.require(known, "activation must be \"gelu\", \"gelu_tanh\" or \"quick_gelu\"");
            }
            if (e.contains("pool")) {
                const std::string p = e["pool"].is_string() ? e["pool"].get<std::string>() : "";
                r.require(p == "mean" || p == "cls", "pool must be \"mean\" or \"cls\"");
                if (p == "cls") ec.pool = Pool::Cls;
                r.require(ec.pool != Pool::Cls || ec.cls_token, "pool \"cls\" needs cls_token");
            }
            r.require(ec.heads > 0 && ec.width % ec.heads == 0, "width must be divisible by heads");
            if (err.is_ok()) r.require(ec.patches() >= 1, "input too short for one patch");
            c.encoders[static_cast<int>(m)] = ec;
        }
    }
    if (j.contains("decoders")) {
        if (!j["decoders"].is_object()) return invalid_argument("config: \"decoders\" must be an object");
        for (auto & [key, e] : j["decoders"].items()) {
            if (key != "image" && key != "speech")
                return invalid_argument("config: unknown decoder \"" + key + "\" (image, speech)");
            if (!e.is_object()) return invalid_argument("config: decoders." + key + " must be an object");
            Reader r{e, "decoders." + key, &err};
            if (key == "speech") {
                SpeechDecoderConfig sc;
                sc.max_chars         = r.pos_int("max_chars");
                sc.frames_per_char   = r.pos_int("frames_per_char");
                sc.sample_rate       = r.pos_int("sample_rate", false, 16000);
                sc.n_fft             = r.pos_int("n_fft", false, 400);
                sc.hop               = r.pos_int("hop", false, 160);
                sc.n_mels            = r.pos_int("n_mels", false, 40);
                sc.griffin_lim_iters = r.pos_int("griffin_lim_iters", false, 32);
                sc.width             = r.pos_int("width");
                sc.layers            = r.pos_int("layers");
                sc.heads             = r.pos_int("heads");
                sc.ffn               = r.pos_int("ffn");
                sc.norm_eps          = r.pos_float("norm_eps", 1e-5f);
                r.require(sc.heads > 0 && sc.width % sc.heads == 0, "width must be divisible by heads");
                r.require(sc.hop > 0 && sc.hop <= sc.n_fft, "hop must be in [1, n_fft]");
                r.require(sc.n_fft % 2 == 0, "n_fft must be even");
                r.require(sc.frames() <= 4096, "max_chars·frames_per_char must be at most 4096 frames");
                c.speech_decoder = sc;
                continue;
            }
            EncoderConfig dc;
            dc.modality   = Modality::Image;
            dc.image_size = r.pos_int("image_size");
            dc.patch_size = r.pos_int("patch_size");
            dc.channels   = r.pos_int("channels", false, 3);
            r.require(dc.channels == 3, "channels must be 3 (RGB)");
            r.require(dc.patch_size > 0 && dc.image_size % dc.patch_size == 0,
                      "image_size must be a multiple of patch_size");
            dc.width    = r.pos_int("width");
            dc.layers   = r.pos_int("layers");
            dc.heads    = r.pos_int("heads");
            dc.ffn      = r.pos_int("ffn");
            dc.norm_eps = r.pos_float("norm_eps", 1e-5f);
            r.require(dc.heads > 0 && dc.width % dc.heads == 0, "width must be divisible by heads");
            if (e.contains("from_backbone") && err.is_ok()) {
                const auto & fb = e["from_backbone"];
                if (!fb.is_object()) return invalid_argument("config: decoders.image.from_backbone must be an object");
                Reader q{fb, "decoders.image.from_backbone", &err};
                const int64_t n = q.pos_int("queries");
                q.require(!err.is_ok() || n == dc.tokens(),
                          "queries must equal the decoder's tokens (image_size/patch_size)^2 = " +
                              std::to_string(dc.tokens()));
                c.image_decoder_from_backbone = true;
            }
            c.image_decoder = dc;
        }
    }
    if (!err.is_ok()) return err;
    return c;
}

}  // namespace

namespace {
// A float as the shortest decimal that reads back to it (1e-05, not 9.999999747378752e-06).
double short_decimal(float f) {
    return std::stod(fmt::format("{}", f));
}
}  // namespace

nlohmann::json model_config_to_json(const ModelConfig & c) {
    nlohmann::json j;
    j["name"]          = c.name;
    j["version"]       = c.version;
    j["embed_dim"]     = c.embed_dim;
    j["text"]          = {{"vocab_size", c.text.vocab_size},
                          {"bos_id", c.text.bos_id},
                          {"eos_id", c.text.eos_id},
                          {"pad_id", c.text.pad_id},
                          {"unk_id", c.text.unk_id}};
    const auto & b     = c.backbone;
    j["backbone"]      = {{"width", b.width},
                          {"layers", b.layers},
                          {"heads", b.heads},
                          {"kv_heads", b.kv_heads},
                          {"ffn", b.ffn},
                          {"max_seq", b.max_seq},
                          {"rope_theta", short_decimal(b.rope_theta)},
                          {"norm_eps", short_decimal(b.norm_eps)},
                          {"tie_lm_head", b.tie_lm_head}};
    nlohmann::json enc = nlohmann::json::object();
    for (int i = 0; i < kEncoderModalities; ++i) {
        if (!c.encoders[i]) continue;
        const auto & e   = *c.encoders[i];
        nlohmann::json o = {{"width", e.width},
                            {"layers", e.layers},
                            {"heads", e.heads},
                            {"ffn", e.ffn},
                            {"norm_eps", short_decimal(e.norm_eps)}};
        // Written only when set: older headers stay byte-identical.
        if (e.cls_token) o["cls_token"] = true;
        if (e.pre_norm) o["pre_norm"] = true;
        if (e.activation != Activation::Gelu) o["activation"] = activation_name(e.activation);
        if (e.pool == Pool::Cls) o["pool"] = "cls";
        if (e.modality == Modality::Image) {
            o["image_size"] = e.image_size;
            o["patch_size"] = e.patch_size;
            o["channels"]   = e.channels;
        } else if (e.modality == Modality::Audio) {
            o["sample_rate"]  = e.sample_rate;
            o["clip_samples"] = e.clip_samples;
            o["n_fft"]        = e.n_fft;
            o["hop"]          = e.hop;
            o["n_mels"]       = e.n_mels;
            o["patch_frames"] = e.patch_frames;
        } else {
            o["sample_rate"] = e.sample_rate;
            o["window"]      = e.window;
            o["patch_size"]  = e.patch_size;
            o["channels"]    = e.channels;
        }
        enc[modality_name(e.modality)] = o;
    }
    j["encoders"] = enc;
    if (c.image_decoder) {  // written only when present: headers without decoders stay byte-identical
        const auto & d         = *c.image_decoder;
        j["decoders"]["image"] = {{"image_size", d.image_size},
                                  {"patch_size", d.patch_size},
                                  {"channels", d.channels},
                                  {"width", d.width},
                                  {"layers", d.layers},
                                  {"heads", d.heads},
                                  {"ffn", d.ffn},
                                  {"norm_eps", short_decimal(d.norm_eps)}};
        if (c.image_decoder_from_backbone) j["decoders"]["image"]["from_backbone"] = {{"queries", d.tokens()}};
    }
    if (c.speech_decoder) {  // likewise: written only when present
        const auto & d          = *c.speech_decoder;
        j["decoders"]["speech"] = {{"max_chars", d.max_chars},
                                   {"frames_per_char", d.frames_per_char},
                                   {"sample_rate", d.sample_rate},
                                   {"n_fft", d.n_fft},
                                   {"hop", d.hop},
                                   {"n_mels", d.n_mels},
                                   {"griffin_lim_iters", d.griffin_lim_iters},
                                   {"width", d.width},
                                   {"layers", d.layers},
                                   {"heads", d.heads},
                                   {"ffn", d.ffn},
                                   {"norm_eps", short_decimal(d.norm_eps)}};
    }
    return j;
}

}  // namespace m4::model
