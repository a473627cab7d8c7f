// Multimodal tasks: a modality input with text (caption, question → answer, transcript), built
// from the scene generator, the IMU simulator and espeak-ng. All generated; captions and answers
// are exact by construction.
#include <fmt/format.h>

#include "data/audio.h"
#include "data/corpus.h"
#include "data/imu_sim.h"
#include "data/scenes.h"
#include "data/task.h"

namespace m4::data {

namespace {

// --- mm.caption: scene → caption -----------------------------------------------------------------
Status build_caption(TaskOutput & out) {
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng        = out.rng(t ? "test" : "train");
        const size_t n = out.n(t ? 1000 : 8000);
        for (size_t i = 0; i < n; ++i) {
            Scene s      = make_scene(rng, 1, 3, 64);
            ExampleIn ex = ExampleIn::image(s.image.to_u8(), 64, 64, 3);
            ex.target    = scene_caption(s);
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

// --- mm.vqa: scene + question → answer -------------------------------------------------------------
Status build_vqa(TaskOutput & out) {
    std::vector<std::string> answers = {"yes", "no", "nothing", "large", "small"};
    for (int k = 0; k <= 6; ++k) answers.push_back(number_word(k));
    for (const auto & c : scene_color_names()) answers.push_back(c);
    for (int s = 0; s < kShapeCount; ++s) answers.push_back(shape_name(static_cast<Shape>(s)));
    for (int c = 0; c < 9; ++c) answers.push_back(cell_name(c));
    out.set_labels(answers);
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng        = out.rng(t ? "test" : "train");
        const size_t n = out.n(t ? 2000 : 12000);
        for (size_t i = 0; i < n; ++i) {
            Scene s      = make_scene(rng, 1, 5, 64);
            Qa qa        = scene_question(s, rng);
            ExampleIn ex = ExampleIn::image(s.image.to_u8(), 64, 64, 3);
            ex.prompt    = qa.question;
            ex.target    = qa.answer;
            ex.label     = int32_t(std::find(answers.begin(), answers.end(), qa.answer) - answers.begin());
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

// --- mm.retrieval: image ↔ caption retrieval (two-object scenes, captions nearly unique) -----------
Status build_retrieval(TaskOutput & out) {
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng        = out.rng(t ? "test" : "train");
        const size_t n = out.n(t ? 1000 : 6000);
        for (size_t i = 0; i < n; ++i) {
            Scene s      = make_scene(rng, 2, 3, 64);
            ExampleIn ex = ExampleIn::image(s.image.to_u8(), 64, 64, 3);
            ex.target    = scene_caption(s);
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    out.extra()["protocol"] = "rank every test caption for every test image (and back); Recall@1/5";
    return Status::ok();
}

// --- mm.imu_caption: IMU window → "a person walking upstairs with the phone in the trouser pocket"
Status build_imu_caption(TaskOutput & out) {
    for (bool t : {false, true}) {
        Rng srng = out.rng(t ? "subjects-test" : "subjects-train");
        std::vector<std::pair<Subject, SensorErrors>> subj;
        for (int i = 0; i < (t ? 9 : 21); ++i) {
            Subject b = Subject::draw(srng);
            subj.emplace_back(b, SensorErrors::draw(srng));
        }
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng        = out.rng(t ? "test" : "train");
        const size_t n = out.n(t ? 1000 : 6000);
        for (size_t i = 0; i < n; ++i) {
            const auto a      = static_cast<Activity>(rng.below(kActivityCount));
            const auto p      = static_cast<Placement>(rng.below(kPlacementCount));
            const auto & s    = subj[rng.below(subj.size())];
            ActivityParams ap = activity_params(a, s.first, rng);
            Mat3 mount        = mul(rot_x(1.5708), rot_z(rng.uniform(-3.14159, 3.14159)));
            Motion m          = activity_motion(a, p, s.first, ap, mount, rng);
            ExampleIn ex      = ExampleIn::imu(sense(m, rng.uniform(1, 30), out.imu_rows(), s.second, rng));
            ex.target         = fmt::format("a person {} with the phone {} the {}", activity_name(a),
                                    p == Placement::Pocket ? "in"
                                            : p == Placement::Bag  ? "in"
                                                                   : "on",
                                            placement_name(p));
            ex.label          = int32_t(a);
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

// --- mm.transcribe: spoken command → transcript (speech recognition on the full path) -----------
Status build_transcribe(TaskOutput & out) {
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng   = out.rng(t ? "test" : "train");
        auto cmds = spoken_commands(t);
        std::vector<const SpeakerSpec *> sp;
        for (const auto & s : english_speakers())
            if (s.test == t) sp.push_back(&s);
        const size_t n = out.n(t ? 800 : 4000, 8);
        for (size_t i = 0; i < n; ++i) {
            const Command & c = rng.pick(cmds);
            Voice v           = rng.pick(sp)->voice;
            v.rate            = 170 + int(rng.below(50));
            M4_ASSIGN_OR_RETURN(auto wav, synthesize(c.text, v));
            ExampleIn ex = ExampleIn::audio(fit_clip(trim_silence(wav), 3 * kAudioRate, rng));
            ex.target    = c.text;
            M4_RETURN_IF_ERROR(put(wr, ex));
            if (i % 500 == 499) out.progress(fmt::format("{}: {}/{} clips", t ? "test" : "train", i + 1, n));
        }
    }
    out.extra()["clip_seconds"] = 3;
    return Status::ok();
}

}  // namespace

void register_multimodal_tasks(std::vector<Task> & t) {
    t.push_back({{"mm.caption",
                  "multimodal",
                  Modality::Image,
                  "generate",
                  "full",
                  "exact_match+token_f1",
                  "generated",
                  "captioning of generated scenes (1-3 coloured shapes on a 3×3 grid); 64×64 RGB → caption",
                  "generator seeds",
                  {}},
                 build_caption});
    t.push_back({{"mm.vqa",
                  "multimodal",
                  Modality::Image,
                  "generate",
                  "full",
                  "accuracy",
                  "generated",
                  "visual question answering on generated scenes (count, colour, shape, position, existence, size; "
                  "CLEVR-like in 2-D); prompt = question, target = answer, label = answer index",
                  "generator seeds",
                  {}},
                 build_vqa});
    t.push_back({{"mm.retrieval",
                  "multimodal",
                  Modality::Image,
                  "retrieve",
                  "encoder",
                  "recall@5",
                  "generated",
                  "image ↔ text retrieval between generated scenes and their captions",
                  "generator seeds",
                  {}},
                 build_retrieval});
    t.push_back({{"mm.imu_caption",
                  "multimodal",
                  Modality::Imu,
                  "generate",
                  "full",
                  "exact_match",
                  "generated",
                  "describing a simulated IMU window in words (activity and where the phone is carried)",
                  "simulated subjects",
                  {}},
                 build_imu_caption});
    t.push_back({{"mm.transcribe",
                  "multimodal",
                  Modality::Audio,
                  "generate",
                  "full",
                  "wer",
                  "generated",
                  "transcription of spoken smart-home commands (espeak-ng voices); 3 s clips → text",
                  "held-out voices and held-out phrasing templates",
                  {"espeak-ng", "espeak-ng-data", "libespeak-ng1"}},
                 build_transcribe});
}

}  // namespace m4::data
