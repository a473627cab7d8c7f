#include "train/checkpoint.h"

#include <cstring>

#include <fmt/format.h>

#include "format/container.h"

namespace m4::train {

Status save_checkpoint(const std::string & path, const ParamStore & params, const TrainState & state) {
    format::ContainerWriter w(format::FileKind::Adapter);
    nlohmann::json rng = nlohmann::json::array();
    for (uint64_t v : state.rng) rng.push_back(fmt::format("{:016x}", v));
    w.set_header({{"format", "m4ckpt"},
                  {"version", 1},
                  {"step", state.step},
                  {"rng", rng},
                  {"losses", state.losses},
                  {"run", state.run},
                  {"eval", state.eval}});
    for (const auto & p : params.params()) {
        w.add("value/" + p.name, p.value);
        w.add("adam_m/" + p.name, p.m);
        w.add("adam_v/" + p.name, p.v);
    }
    return w.write(path);
}

Status load_checkpoint(const std::string & path, ParamStore * params, TrainState * state,
                       const nlohmann::json * expect_run) {
    M4_ASSIGN_OR_RETURN(format::ContainerFile f, format::ContainerFile::open(path, format::FileKind::Adapter));
    const nlohmann::json & h = f.header();
    auto bad                 = [&](const std::string & m) { return invalid_argument(path + ": checkpoint " + m); };
    if (h.value("format", "") != "m4ckpt") return bad("header: \"format\" is not \"m4ckpt\"");
    TrainState st;
    try {
        st.step          = h.at("step").get<int64_t>();
        const auto & rng = h.at("rng");
        if (!rng.is_array() || rng.size() != 4) return bad("header: \"rng\" must hold 4 words");
        for (size_t i = 0; i < 4; ++i) st.rng[i] = std::stoull(rng[i].get<std::string>(), nullptr, 16);
        st.losses = h.at("losses").get<std::vector<float>>();
        st.run    = h.at("run");
        st.eval   = h.value("eval", nlohmann::json::array());
    } catch (const std::exception & e) {
        return bad(std::string("header: malformed field (") + e.what() + ")");
    }
    if (st.step < 0 || static_cast<int64_t>(st.losses.size()) != st.step)
        return bad("header: " + std::to_string(st.losses.size()) + " losses for step " + std::to_string(st.step));
    if (expect_run && st.run != *expect_run) {
        for (auto it = expect_run->begin(); it != expect_run->end(); ++it)
            if (!st.run.contains(it.key()) || st.run[it.key()] != it.value())
                return incompatible(path + ": checkpoint of a different run: \"" + it.key() + "\" was " +
                                    (st.run.contains(it.key()) ? st.run[it.key()].dump() : "absent") + ", now " +
                                    it.value().dump());
        return incompatible(path + ": checkpoint of a different run (extra keys in its run description)");
    }
    const size_t expected = params->params().size() * 3;
    if (f.entries().size() != expected)
        return bad("holds " + std::to_string(f.entries().size()) + " tensors, this run has " +
                   std::to_string(expected));
    for (auto & p : params->params()) {
        for (const char * kind : {"value/", "adam_m/", "adam_v/"}) {
            const std::string name        = kind + p.name;
            const format::TensorEntry * e = f.find(name);
            if (!e) return bad("has no tensor '" + name + "'");
            if (e->dtype != DType::F32 || !(e->shape == p.value.shape()))
                return bad("tensor '" + name + "' is " + dtype_name(e->dtype) + " " + e->shape.str() +
                           ", expected f32 " + p.value.shape().str());
        }
    }
    // Everything checked: only now overwrite the live parameters.
    for (auto & p : params->params()) {
        std::memcpy(p.value.f32(), f.tensor("value/" + p.name).data(), p.value.nbytes());
        std::memcpy(p.m.f32(), f.tensor("adam_m/" + p.name).data(), p.m.nbytes());
        std::memcpy(p.v.f32(), f.tensor("adam_v/" + p.name).data(), p.v.nbytes());
    }
    *state = std::move(st);
    return Status::ok();
}

}  // namespace m4::train
