#include "data/audio.h"

#include <dlfcn.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>

#include "base/mapped_file.h"

extern char ** environ;

namespace m4::data {

namespace {

uint32_t u32(const std::string & b, size_t o) {
    uint32_t v;
    std::memcpy(&v, b.data() + o, 4);
    return v;
}
uint16_t u16(const std::string & b, size_t o) {
    uint16_t v;
    std::memcpy(&v, b.data() + o, 2);
    return v;
}

// The few entry points of libespeak-ng's speak_lib.h we use (values from that header).
constexpr int kAudioOutputSynchronous = 2;
constexpr int kInitializeDontExit     = 0x8000;
constexpr int kParamRate = 1, kParamVolume = 2, kParamPitch = 3, kParamRange = 4;
constexpr unsigned kCharsUtf8 = 1;
constexpr int kPosCharacter   = 1;
using SynthCallback           = int (*)(short *, int, void *);

struct Espeak {
    int (*initialize)(int, int, const char *, int)                                            = nullptr;
    void (*set_callback)(SynthCallback)                                                       = nullptr;
    int (*set_voice)(const char *)                                                            = nullptr;
    int (*set_param)(int, int, int)                                                           = nullptr;
    int (*synth)(const void *, size_t, unsigned, int, unsigned, unsigned, unsigned *, void *) = nullptr;
    int rate                                                                                  = 0;
    std::string error;
};

std::vector<float> * g_sink = nullptr;

int on_samples(short * wav, int n, void *) {
    if (wav && g_sink)
        for (int i = 0; i < n; ++i) g_sink->push_back(wav[i] / 32768.0f);
    return 0;
}

Espeak & espeak() {
    static Espeak e = [] {
        Espeak s;
        void * h = dlopen("libespeak-ng.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            s.error = "libespeak-ng.so.1 not found: install Debian package espeak-ng (libespeak-ng1, espeak-ng-data)";
            return s;
        }
        s.initialize   = reinterpret_cast<decltype(s.initialize)>(dlsym(h, "espeak_Initialize"));
        s.set_callback = reinterpret_cast<decltype(s.set_callback)>(dlsym(h, "espeak_SetSynthCallback"));
        s.set_voice    = reinterpret_cast<decltype(s.set_voice)>(dlsym(h, "espeak_SetVoiceByName"));
        s.set_param    = reinterpret_cast<decltype(s.set_param)>(dlsym(h, "espeak_SetParameter"));
        s.synth        = reinterpret_cast<decltype(s.synth)>(dlsym(h, "espeak_Synth"));
        if (!s.initialize || !s.set_callback || !s.set_voice || !s.set_param || !s.synth) {
            s.error = "libespeak-ng.so.1 lacks the espeak_* API";
            return s;
        }
        s.rate = s.initialize(kAudioOutputSynchronous, 0, nullptr, kInitializeDontExit);
        if (s.rate <= 0)
            s.error = "espeak_Initialize failed (is espeak-ng-data installed?)";
        else
            s.set_callback(on_samples);
        return s;
    }();
    return e;
}

// espeak-ng keeps state between utterances (intonation and flutter phases), so the same text would
// sound slightly different depending on what was spoken before, and re-initialising the library in
// process hangs. So every utterance is spoken by a forked child that starts from the parent's
// freshly initialised library state and sends the samples back through a pipe: each clip is then a
// function of (text, voice) alone, builds are reproducible whatever order or thread the tasks run
// in, and several threads can synthesise at once.
Result<std::vector<float>> espeak_say(const std::string & text, const Voice & v) {
    Espeak & e = espeak();
    if (!e.error.empty()) return not_found(e.error);
    int fds[2];
    if (pipe(fds) != 0) return io_error("espeak-ng: pipe failed");
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return io_error("espeak-ng: fork failed");
    }
    if (pid == 0) {
        close(fds[0]);
        std::vector<float> out;
        g_sink     = &out;
        int32_t rc = e.set_voice(v.name.c_str()) != 0 ? 1 : 0;
        if (rc == 0) {
            e.set_param(kParamRate, v.rate, 0);
            e.set_param(kParamPitch, v.pitch, 0);
            e.set_param(kParamRange, v.range, 0);
            e.set_param(kParamVolume, 100, 0);
            rc = e.synth(text.c_str(), text.size() + 1, 0, kPosCharacter, 0, kCharsUtf8, nullptr, nullptr) != 0 ? 2 : 0;
        }
        auto write_all = [&](const void * p, size_t n) {
            const char * c = static_cast<const char *>(p);
            while (n) {
                ssize_t k = write(fds[1], c, n);
                if (k <= 0) _exit(3);
                c += k;
                n -= size_t(k);
            }
        };
        uint64_t n = out.size();
        write_all(&rc, sizeof rc);
        write_all(&n, sizeof n);
        write_all(out.data(), n * sizeof(float));
        _exit(0);
    }
    close(fds[1]);
    std::string buf;
    char tmp[65536];
    for (ssize_t k; (k = read(fds[0], tmp, sizeof tmp)) != 0;) {
        if (k < 0) {
            if (errno == EINTR) continue;
            break;
        }
        buf.append(tmp, size_t(k));
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int32_t rc = -1;
    uint64_t n = 0;
    if (buf.size() >= 12) {
        std::memcpy(&rc, buf.data(), 4);
        std::memcpy(&n, buf.data() + 4, 8);
    }
    if (rc == 1) return not_found("espeak-ng has no voice '" + v.name + "'");
    if (rc != 0 || buf.size() != 12 + n * sizeof(float))
        return invalid_argument("espeak-ng failed to speak '" + text + "' with voice " + v.name);
    std::vector<float> out(n);
    std::memcpy(out.data(), buf.data() + 12, n * sizeof(float));
    return resample(out, e.rate, 16000);
}

Result<std::vector<float>> flite_say(const std::string & text, const std::string & voice) {
    static std::atomic<int> counter{0};
    std::string tmp = "/tmp/m4data-flite-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".wav";
    std::vector<std::string> args = {"flite", "-voice", voice, "-t", text, "-o", tmp};
    std::vector<char *> argv;
    for (auto & a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawnp(&pid, "flite", nullptr, nullptr, argv.data(), environ) != 0)
        return not_found("flite not found: install Debian package flite");
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        unlink(tmp.c_str());
        return invalid_argument("flite failed for voice '" + voice + "'");
    }
    int rate = 0;
    auto w   = read_wav(tmp, &rate);
    unlink(tmp.c_str());
    if (!w) return w.status();
    return resample(w.value(), rate, 16000);
}

}  // namespace

Result<std::vector<float>> parse_wav(const std::string & b, const std::string & name, int * rate) {
    if (b.size() < 12 || b.compare(0, 4, "RIFF") != 0 || b.compare(8, 4, "WAVE") != 0)
        return invalid_argument(name + ": not a RIFF/WAVE file");
    size_t pos = 12;
    int fmt = 0, ch = 0, bits = 0;
    while (pos + 8 <= b.size()) {
        std::string id = b.substr(pos, 4);
        uint32_t len   = u32(b, pos + 4);
        size_t body    = pos + 8;
        // Streaming writers (flite, espeak --stdout) leave the length of the data chunk unset.
        if (id == "data" && (len == 0 || len == 0xffffffffu || body + len > b.size())) len = b.size() - body;
        if (body + len > b.size()) break;
        if (id == "fmt " && len >= 16) {
            fmt   = u16(b, body);
            ch    = u16(b, body + 2);
            *rate = static_cast<int>(u32(b, body + 4));
            bits  = u16(b, body + 14);
        } else if (id == "data") {
            if (ch < 1 || *rate <= 0) return invalid_argument(name + ": data chunk before a valid fmt chunk");
            std::vector<float> out;
            const size_t step = size_t(ch) * bits / 8;
            if (step == 0) return invalid_argument(name + ": bad sample size");
            for (size_t o = body; o + step <= body + len; o += step) {
                if (fmt == 1 && bits == 16)
                    out.push_back(static_cast<int16_t>(u16(b, o)) / 32768.0f);
                else if (fmt == 1 && bits == 8)
                    out.push_back((static_cast<uint8_t>(b[o]) - 128) / 128.0f);
                else if (fmt == 3 && bits == 32) {
                    float f;
                    std::memcpy(&f, b.data() + o, 4);
                    out.push_back(f);
                } else
                    return unsupported(name + ": WAV encoding " + std::to_string(fmt) + "/" + std::to_string(bits) +
                                       " bits is not supported");
            }
            return out;
        }
        pos = body + len + (len & 1);
    }
    return invalid_argument(name + ": no data chunk");
}

Result<std::vector<float>> read_wav(const std::string & path, int * rate) {
    M4_ASSIGN_OR_RETURN(std::string b, read_file_bytes(path));
    return parse_wav(b, path, rate);
}

std::vector<float> resample(const std::vector<float> & x, int from, int to) {
    if (from == to || x.empty()) return x;
    const double ratio  = double(to) / from;
    const double cutoff = std::min(1.0, ratio) * 0.95;  // of the input Nyquist
    const int half      = 16;                           // taps each side (at the input rate, scaled)
    const double scale  = std::max(1.0, 1.0 / ratio);
    const size_t n      = static_cast<size_t>(std::floor(x.size() * ratio));
    std::vector<float> y(n);
    for (size_t i = 0; i < n; ++i) {
        const double t = i / ratio;
        const long c   = static_cast<long>(std::floor(t));
        const long w   = static_cast<long>(half * scale);
        double acc = 0, wsum = 0;
        for (long k = c - w + 1; k <= c + w; ++k) {
            if (k < 0 || k >= static_cast<long>(x.size())) continue;
            const double d    = (t - k) * cutoff;
            const double sinc = std::abs(d) < 1e-9 ? 1.0 : std::sin(M_PI * d) / (M_PI * d);
            const double u    = (t - k) / (w + 1);
            const double win  = 0.5 + 0.5 * std::cos(M_PI * std::clamp(u, -1.0, 1.0));
            acc += x[k] * sinc * win;
            wsum += sinc * win;
        }
        y[i] = static_cast<float>(wsum != 0 ? acc / wsum : 0);
    }
    return y;
}

Result<std::vector<float>> synthesize(const std::string & text, const Voice & v) {
    if (v.name.rfind("flite:", 0) == 0) return flite_say(text, v.name.substr(6));
    return espeak_say(text, v);
}

std::vector<float> trim_silence(const std::vector<float> & x, float thresh) {
    float peak = 0;
    for (float s : x) peak = std::max(peak, std::abs(s));
    if (peak <= 0) return {};
    size_t a = 0, b = x.size();
    while (a < b && std::abs(x[a]) < thresh * peak) ++a;
    while (b > a && std::abs(x[b - 1]) < thresh * peak) --b;
    std::vector<float> y(x.begin() + a, x.begin() + b);
    for (float & s : y) s *= 0.9f / peak;
    return y;
}

std::vector<float> fit_clip(const std::vector<float> & x, size_t n, Rng & rng, double snr_lo, double snr_hi) {
    std::vector<float> y(n, 0.0f);
    const size_t len = std::min(x.size(), n);
    const size_t off = n > len ? rng.below(n - len + 1) : 0;
    const float gain = static_cast<float>(rng.uniform(0.4, 1.0));
    double power     = 0;
    for (size_t i = 0; i < len; ++i) {
        y[off + i] = x[i] * gain;
        power += double(y[off + i]) * y[off + i];
    }
    power /= std::max<size_t>(len, 1);
    const double snr   = rng.uniform(snr_lo, snr_hi);
    const double sigma = std::sqrt(power / std::pow(10.0, snr / 10.0));
    for (float & s : y) s = std::clamp(static_cast<float>(s + sigma * rng.normal()), -1.0f, 1.0f);
    return y;
}

}  // namespace m4::data
