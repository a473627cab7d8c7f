#include "bench/evaluate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

#include "runtime/engine.h"

namespace m4::bench {
namespace {

using Clock = std::chrono::steady_clock;

// ---- text normalisation ----------------------------------------------------------------------

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return "";
    const auto e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

// Lower-cased words: runs of letters / digits (any non-ASCII byte counts as a letter, so UTF-8
// words stay whole); everything else separates.
std::vector<std::string> words(std::string_view s) {
    std::vector<std::string> out;
    std::string cur;
    for (char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        if (u >= 0x80 || std::isalnum(u)) {
            cur += static_cast<char>(u < 0x80 ? std::tolower(u) : u);
        } else if (!cur.empty()) {
            out.push_back(std::move(cur));
            cur.clear();
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

// UTF-8 → code points (a malformed byte is taken as one code point of its own value).
std::vector<uint32_t> code_points(std::string_view s) {
    std::vector<uint32_t> out;
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        int n        = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        if (i + n > s.size()) n = 1;
        uint32_t cp = n == 1 ? c : c & (0x7F >> n);
        for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
        out.push_back(cp);
        i += n;
    }
    return out;
}

std::string first_word(std::string_view s) {
    const std::string t = trim(s);
    const auto sp       = t.find_first_of(" \t\r\n");
    return sp == std::string::npos ? t : t.substr(0, sp);
}

// ---- examples → requests --------------------------------------------------------------------

// Indices of the split that are scored: every example, or the carved validation share; then, with a
// limit, the `limit` examples of smallest subset key (bytes 8…15 of the content hash: a fixed
// pseudo-random subset, independent of the validation carve, which reads bytes 4…7). Not an evenly
// spaced stride: splits are often written class by class in a cycle, and a stride can alias with it.
std::vector<size_t> pick(const data::Dataset & ds, const EvalOptions & o) {
    std::vector<size_t> idx;
    for (size_t i = 0; i < ds.size(); ++i)
        if (!o.validation || in_validation(ds.at(i), o.val_share)) idx.push_back(i);
    if (o.limit > 0 && idx.size() > static_cast<size_t>(o.limit)) {
        auto key = [&](size_t i) {
            uint64_t k;
            std::memcpy(&k, ds.at(i).hash.data() + 8, sizeof k);
            return std::make_pair(k, i);
        };
        std::vector<std::pair<uint64_t, size_t>> keyed;
        for (size_t i : idx) keyed.push_back(key(i));
        std::nth_element(keyed.begin(), keyed.begin() + o.limit, keyed.end());
        keyed.resize(static_cast<size_t>(o.limit));
        idx.clear();
        for (const auto & [k, i] : keyed) idx.push_back(i);
        std::sort(idx.begin(), idx.end());
    }
    return idx;
}

model::Modality model_modality(data::Modality m) {
    return static_cast<model::Modality>(static_cast<int>(m));
}

// The request the runtime builds for example `i` (runtime::prepare_item: the adapter's template,
// the tokenizer), with text cut to what the backbone holds (as training cuts it), leaving `reserve`
// positions for generated tokens.
Result<model::Request> make_request(const model::Model & fw, model::Path path, const adapter::Manifest * man,
                                    const data::Dataset & ds, size_t i, int64_t reserve) {
    const data::Example ex = ds.at(i);
    runtime::InputSpec in;
    in.name     = ds.path() + " #" + std::to_string(i);
    in.modality = model_modality(ds.modality());
    if (ds.modality() == data::Modality::Text) {
        in.text = text_input(ex);
    } else {
        if (!fw.config().has_encoder(in.modality))
            return incompatible(in.name + ": the firmware has no " + data::modality_name(ds.modality()) + " encoder");
        M4_ASSIGN_OR_RETURN(in.signal, model_signal(ex, ds.modality(), fw.config().encoder(in.modality), in.name));
    }
    M4_ASSIGN_OR_RETURN(model::Request r, runtime::prepare_item(fw, path, man, in, std::string(ex.prompt)));
    if (path != model::Path::Encoder) {
        int64_t room = fw.config().backbone.max_seq - 1 - reserve;
        if (path == model::Path::Full) room -= fw.config().encoder(in.modality).tokens();
        if (room < 1) return invalid_argument(in.name + ": the backbone has no room for the prompt");
        if (static_cast<int64_t>(r.tokens.size()) > room) r.tokens.resize(static_cast<size_t>(room));
    }
    return r;
}

// Runs `fn(batch_of_requests, first)` over the picked examples in batches.
template <typename Fn>
Status for_batches(const model::Model & fw, model::Path path, const adapter::Manifest * man, const data::Dataset & ds,
                   const std::vector<size_t> & idx, int64_t batch, int64_t reserve,
                   const model::AdapterWeights * weights, Fn && fn) {
    batch = std::max<int64_t>(1, batch);
    for (size_t at = 0; at < idx.size(); at += static_cast<size_t>(batch)) {
        std::vector<model::Request> reqs;
        for (size_t k = at; k < std::min(idx.size(), at + static_cast<size_t>(batch)); ++k) {
            M4_ASSIGN_OR_RETURN(model::Request r, make_request(fw, path, man, ds, idx[k], reserve));
            r.adapter = weights;
            reqs.push_back(std::move(r));
        }
        M4_RETURN_IF_ERROR(fn(reqs, at));
    }
    return Status::ok();
}

// ---- chance: a constant answer fit on the train split ---------------------------------------

struct TrainConstants {
    int32_t top_label = 0;
    double median     = 0;
    std::string top_target, top_word;
};

Result<TrainConstants> train_constants(const std::string & data_dir, const std::string & task) {
    M4_ASSIGN_OR_RETURN(data::Dataset ds, data::Dataset::open(data_dir, task, "train"));
    TrainConstants c;
    std::map<int32_t, int64_t> labels;
    std::unordered_map<std::string, int64_t> targets, first_words;
    std::vector<float> values;
    for (size_t i = 0; i < ds.size(); ++i) {
        const data::Example ex = ds.at(i);
        if (ex.label >= 0) ++labels[ex.label];
        values.push_back(ex.value);
        if (!ex.target.empty()) {
            ++targets[trim(ex.target)];
            ++first_words[first_word(ex.target)];
        }
    }
    auto top = [](const auto & m, auto init) {
        auto best = init;
        int64_t n = -1;
        for (const auto & [k, v] : m)
            if (v > n || (v == n && k < best)) best = k, n = v;
        return best;
    };
    c.top_label  = top(labels, int32_t{0});
    c.top_target = top(targets, std::string());
    c.top_word   = top(first_words, std::string());
    if (!values.empty()) {
        std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
        c.median = values[values.size() / 2];
    }
    return c;
}

int recall_k(const std::string & metric) {
    return std::max(1, std::atoi(metric.c_str() + 7));
}

std::vector<float> average_normalised(const std::vector<std::vector<float>> & v) {
    std::vector<float> out(v.at(0).size(), 0.0f);
    for (const auto & e : v)
        for (size_t k = 0; k < out.size(); ++k) out[k] += e[k];
    double s = 0;
    for (float x : out) s += double(x) * x;
    const float inv = s > 0 ? float(1.0 / std::sqrt(s)) : 0.0f;
    for (float & x : out) x *= inv;
    return out;
}

// Nearest label by cosine (rows normalised) and accuracy against the examples' labels.
int32_t argmax(const std::vector<float> & v) {
    return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

float dot(const std::vector<float> & a, const std::vector<float> & b) {
    float s = 0;
    for (size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
    return s;
}

// Retrieval: the test images' vectors against the firmware's text embeddings of the distinct
// captions. `image_vec(reqs) → vectors` gives the image side (adapter head or raw embedding).
template <typename ImageFn>
Status score_retrieval(const model::Model & fw, const data::Dataset & ds, const std::vector<size_t> & idx,
                       const TaskPlan & plan, const EvalOptions & o, const adapter::Manifest * man,
                       const model::AdapterWeights * w, ImageFn && image_vec, EvalReport * rep) {
    std::vector<std::string> captions;
    std::map<std::string, int64_t> caption_id;
    std::vector<int64_t> gt;
    for (size_t i : idx) {
        const std::string cap = trim(ds.at(i).target);
        if (cap.empty()) return invalid_argument(ds.path() + " #" + std::to_string(i) + ": no caption");
        auto [it, fresh] = caption_id.emplace(cap, static_cast<int64_t>(captions.size()));
        if (fresh) captions.push_back(cap);
        gt.push_back(it->second);
    }
    M4_ASSIGN_OR_RETURN(auto text, text_embeddings(fw, captions, o.batch));
    std::vector<std::vector<float>> images;
    M4_RETURN_IF_ERROR(for_batches(fw, model::Path::Encoder, man, ds, idx, o.batch, 0, w,
                                   [&](std::vector<model::Request> & reqs, size_t) -> Status {
                                       M4_ASSIGN_OR_RETURN(auto v, image_vec(reqs));
                                       for (auto & e : v) images.push_back(std::move(e));
                                       return Status::ok();
                                   }));
    const int64_t NI = static_cast<int64_t>(images.size()), NT = static_cast<int64_t>(captions.size());
    std::vector<float> i2t(static_cast<size_t>(NI * NT)), t2i(static_cast<size_t>(NT * NI));
    for (int64_t a = 0; a < NI; ++a)
        for (int64_t b = 0; b < NT; ++b) i2t[a * NT + b] = t2i[b * NI + a] = dot(images[a], text[b]);
    std::vector<std::vector<int64_t>> pos_i(NI), pos_t(NT);
    for (int64_t a = 0; a < NI; ++a) pos_i[a] = {gt[a]}, pos_t[gt[a]].push_back(a);
    const int k      = recall_k(plan.metrics[0]);
    rep->score       = recall_at_k(i2t, NI, NT, pos_i, k);
    rep->chance      = std::min(1.0, double(k) / double(NT));
    rep->chance_rule = fmt::format("{} of {} distinct captions at random", k, NT);
    rep->extra       = {{"image→text recall@1", recall_at_k(i2t, NI, NT, pos_i, 1)},
                        {fmt::format("text→image recall@{}", k), recall_at_k(t2i, NT, NI, pos_t, k)},
                        {"text→image recall@1", recall_at_k(t2i, NT, NI, pos_t, 1)}};
    rep->metric      = "image→text " + plan.metrics[0];
    return Status::ok();
}

Status check_adapter(const adapter::Manifest & m, const std::string & ad_path, const TaskPlan & plan,
                     data::Modality dm) {
    const std::string task = plan.facts.name;
    const bool text        = dm == data::Modality::Text;
    if (text != (m.path == model::Path::Backbone))
        return incompatible(fmt::format("{}: the adapter runs on the {} path, task '{}' has {} inputs", ad_path,
                                        model::path_name(m.path), task, data::modality_name(dm)));
    if (!text && m.modality != model_modality(dm))
        return incompatible(fmt::format("{}: the adapter reads {} inputs, task '{}' has {} inputs", ad_path,
                                        model::modality_name(m.modality), task, data::modality_name(dm)));
    if (m.task == adapter::Task::Classify && m.head_out != static_cast<int64_t>(plan.spec.labels.size()))
        return incompatible(fmt::format("{}: its head has {} classes, task '{}' has {} labels", ad_path, m.head_out,
                                        task, plan.spec.labels.size()));
    if (m.task == adapter::Task::Embed && plan.facts.kind != "retrieve")
        return incompatible(ad_path + ": an embedding adapter scores retrieval tasks only, not '" + task + "'");
    if (m.task == adapter::Task::Regress && plan.facts.kind != "regress")
        return incompatible(ad_path + ": a regression adapter cannot score task '" + task + "'");
    if (m.task == adapter::Task::Generate && plan.facts.kind != "generate")
        return incompatible(ad_path + ": a generate adapter cannot score the " + plan.facts.kind + " task '" + task +
                            "'");
    return Status::ok();
}

}  // namespace

Result<model::Request> request_for_example(const model::Model & fw, model::Path path, const adapter::Manifest * man,
                                           const data::Dataset & ds, size_t i, int64_t reserve) {
    return make_request(fw, path, man, ds, i, reserve);
}

// ---- metrics -------------------------------------------------------------------------------

double exact_match(const std::vector<std::string> & pred, const std::vector<std::string> & ref) {
    if (ref.empty()) return 0;
    int64_t hit = 0;
    for (size_t i = 0; i < ref.size(); ++i) hit += trim(pred[i]) == trim(ref[i]);
    return double(hit) / double(ref.size());
}

double token_f1(const std::string & pred, const std::string & ref) {
    // SQuAD normalisation: lower case, punctuation and the articles a / an / the dropped.
    auto norm = [](const std::string & s) {
        std::vector<std::string> out;
        for (auto & w : words(s))
            if (w != "a" && w != "an" && w != "the") out.push_back(std::move(w));
        return out;
    };
    const auto p = norm(pred), r = norm(ref);
    if (p.empty() || r.empty()) return p.empty() && r.empty() ? 1.0 : 0.0;
    std::map<std::string, int64_t> count;
    for (const auto & w : r) ++count[w];
    int64_t common = 0;
    for (const auto & w : p)
        if (count[w]-- > 0) ++common;
    if (common == 0) return 0;
    const double prec = double(common) / p.size(), rec = double(common) / r.size();
    return 2 * prec * rec / (prec + rec);
}

double mean_token_f1(const std::vector<std::string> & pred, const std::vector<std::string> & ref) {
    if (ref.empty()) return 0;
    double s = 0;
    for (size_t i = 0; i < ref.size(); ++i) s += token_f1(pred[i], ref[i]);
    return s / double(ref.size());
}

double top1_word_accuracy(const std::vector<std::string> & pred, const std::vector<std::string> & ref) {
    if (ref.empty()) return 0;
    int64_t hit = 0;
    for (size_t i = 0; i < ref.size(); ++i) hit += first_word(pred[i]) == trim(ref[i]);
    return double(hit) / double(ref.size());
}

double chrf(const std::vector<std::string> & hyp, const std::vector<std::string> & ref, int max_n, double beta) {
    // Corpus statistics per n-gram order (sacrebleu's chrF: whitespace removed, per-order F-scores
    // averaged over the orders that occur).
    std::vector<double> n_hyp(max_n, 0), n_ref(max_n, 0), n_match(max_n, 0);
    for (size_t i = 0; i < ref.size(); ++i) {
        auto strip = [](const std::string & s) {
            std::vector<uint32_t> out;
            for (uint32_t c : code_points(s))
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') out.push_back(c);
            return out;
        };
        const auto h = strip(hyp[i]), r = strip(ref[i]);
        for (int n = 1; n <= max_n; ++n) {
            std::map<std::vector<uint32_t>, int64_t> hc, rc;
            for (size_t k = 0; k + n <= h.size(); ++k) ++hc[{h.begin() + k, h.begin() + k + n}];
            for (size_t k = 0; k + n <= r.size(); ++k) ++rc[{r.begin() + k, r.begin() + k + n}];
            for (const auto & [g, c] : hc) {
                n_hyp[n - 1] += c;
                auto it = rc.find(g);
                if (it != rc.end()) n_match[n - 1] += std::min(c, it->second);
            }
            for (const auto & [g, c] : rc) n_ref[n - 1] += c;
        }
    }
    const double b2 = beta * beta;
    double score    = 0;
    int orders      = 0;
    for (int n = 0; n < max_n; ++n) {
        if (n_hyp[n] == 0 || n_ref[n] == 0) continue;
        const double p = n_match[n] / n_hyp[n], r = n_match[n] / n_ref[n];
        score += p + r > 0 ? (1 + b2) * p * r / (b2 * p + r) : 0.0;
        ++orders;
    }
    return orders ? 100.0 * score / orders : 0.0;
}

double wer(const std::vector<std::string> & hyp, const std::vector<std::string> & ref) {
    int64_t edits = 0, total = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const auto h = words(hyp[i]), r = words(ref[i]);
        std::vector<int64_t> prev(h.size() + 1), cur(h.size() + 1);
        for (size_t j = 0; j <= h.size(); ++j) prev[j] = static_cast<int64_t>(j);
        for (size_t a = 1; a <= r.size(); ++a) {
            cur[0] = static_cast<int64_t>(a);
            for (size_t j = 1; j <= h.size(); ++j)
                cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r[a - 1] == h[j - 1] ? 0 : 1)});
            std::swap(prev, cur);
        }
        edits += prev[h.size()];
        total += static_cast<int64_t>(r.size());
    }
    return total ? double(edits) / double(total) : 0.0;
}

Result<double> text_metric(const std::string & metric, const std::vector<std::string> & pred,
                           const std::vector<std::string> & ref) {
    if (pred.size() != ref.size()) return invalid_argument("text_metric: predictions and references differ in count");
    if (metric == "exact_match" || metric == "accuracy") return exact_match(pred, ref);
    if (metric == "token_f1") return mean_token_f1(pred, ref);
    if (metric == "top1_accuracy") return top1_word_accuracy(pred, ref);
    if (metric == "chrf") return chrf(pred, ref);
    if (metric == "wer") return wer(pred, ref);
    return invalid_argument("metric '" + metric + "' does not score generated text");
}

double recall_at_k(const std::vector<float> & sim, int64_t n_query, int64_t n_item,
                   const std::vector<std::vector<int64_t>> & positives, int k) {
    if (n_query == 0) return 0;
    int64_t hits = 0;
    for (int64_t q = 0; q < n_query; ++q) {
        const float * row = sim.data() + q * n_item;
        // Rank of the best positive = items scoring strictly higher (ties count in its favour).
        float best = -INFINITY;
        for (int64_t p : positives[q]) best = std::max(best, row[p]);
        int64_t above = 0;
        for (int64_t j = 0; j < n_item; ++j) above += row[j] > best;
        hits += above < k;
    }
    return double(hits) / double(n_query);
}

int64_t adapter_parameter_count(const adapter::Adapter & ad) {
    const model::AdapterWeights & w = ad.weights();
    int64_t n                       = 0;
    for (const auto & [name, pair] : w.lora) n += pair.a.numel() + pair.b.numel();
    if (w.head.type != model::HeadType::None) {
        n += w.head.w.numel();
        if (w.head.bias) n += w.head.w.numel() > 0 ? w.head.w.shape()[0] : 0;
        if (w.head.has_hidden()) n += w.head.hidden_w.numel() + w.head.hidden_w.dim(0);  // + its bias
    }
    return n;
}

nlohmann::json EvalReport::to_json() const {
    nlohmann::json j = {{"task", task},         {"split", split},   {"metric", metric},
                        {"score", score},       {"chance", chance}, {"chance_rule", chance_rule},
                        {"examples", examples}, {"of", total},      {"seconds", seconds}};
    if (!adapter.empty()) {
        j["adapter"]        = adapter;
        j["adapter_bytes"]  = adapter_bytes;
        j["adapter_params"] = adapter_params;
    }
    nlohmann::json ex = nlohmann::json::object();
    for (const auto & [k, v] : extra) ex[k] = v;
    j["extra"]        = ex;
    nlohmann::json sm = nlohmann::json::array();
    for (const auto & [p, r] : samples) sm.push_back({{"output", p}, {"reference", r}});
    if (!samples.empty()) j["samples"] = sm;
    return j;
}

Result<std::vector<std::vector<float>>> text_embeddings(const model::Model & fw, const std::vector<std::string> & texts,
                                                        int64_t batch) {
    std::vector<std::vector<float>> out;
    batch              = std::max<int64_t>(1, batch);
    const int64_t room = fw.config().backbone.max_seq - 1;
    for (size_t at = 0; at < texts.size(); at += static_cast<size_t>(batch)) {
        std::vector<model::Request> reqs;
        for (size_t k = at; k < std::min(texts.size(), at + static_cast<size_t>(batch)); ++k) {
            auto ids = fw.tokenizer().encode(texts[k]);
            if (!ids) return ids.status().with_context("text \"" + texts[k] + "\"");
            model::Request r;
            r.tokens = std::move(ids).value();
            if (r.tokens.empty()) return invalid_argument("text \"" + texts[k] + "\" has no tokens");
            if (static_cast<int64_t>(r.tokens.size()) > room) r.tokens.resize(static_cast<size_t>(room));
            reqs.push_back(std::move(r));
        }
        M4_ASSIGN_OR_RETURN(auto outs, fw.run(model::Path::Backbone, model::Modality::Text, reqs));
        for (auto & o : outs) out.push_back(std::move(o.embedding));
    }
    return out;
}

Result<EvalReport> evaluate_adapter(const model::Model & fw, const adapter::Adapter & ad, const std::string & ad_path,
                                    const TaskPlan & plan, const std::string & data_dir, const EvalOptions & o) {
    const auto t0            = Clock::now();
    const std::string & task = plan.facts.name;
    M4_ASSIGN_OR_RETURN(data::Dataset ds, data::Dataset::open(data_dir, task, o.split));
    const adapter::Manifest & man = ad.manifest();
    M4_RETURN_IF_ERROR(check_adapter(man, ad_path, plan, ds.modality()));
    const std::vector<size_t> idx = pick(ds, o);
    if (idx.empty()) return invalid_argument(ds.path() + ": no examples to score");
    M4_ASSIGN_OR_RETURN(TrainConstants tc, train_constants(data_dir, task));
    EvalReport rep;
    rep.task               = task;
    rep.split              = o.validation ? o.split + " (validation share)" : o.split;
    rep.metric             = plan.metrics[0];
    rep.examples           = static_cast<int64_t>(idx.size());
    rep.total              = static_cast<int64_t>(ds.size());
    rep.adapter            = ad_path;
    rep.adapter_bytes      = static_cast<int64_t>(ad.file_size());
    rep.adapter_params     = adapter_parameter_count(ad);
    const model::Path path = man.path;
    const auto mm          = path == model::Path::Backbone ? model::Modality::Text : man.modality;
    const auto * w         = &ad.weights();
    switch (man.task) {
        case adapter::Task::Classify: {
            int64_t hit = 0, chance_hit = 0;
            std::vector<std::string> pred_text, ref_text;
            M4_RETURN_IF_ERROR(for_batches(fw, path, &man, ds, idx, o.batch, 0, w,
                                           [&](std::vector<model::Request> & reqs, size_t at) -> Status {
                                               M4_ASSIGN_OR_RETURN(auto outs, fw.run(path, mm, reqs));
                                               for (size_t k = 0; k < outs.size(); ++k) {
                                                   const int32_t y = ds.at(idx[at + k]).label;
                                                   hit += argmax(outs[k].head) == y;
                                                   chance_hit += tc.top_label == y;
                                               }
                                               return Status::ok();
                                           }));
            rep.score       = double(hit) / double(idx.size());
            rep.chance      = double(chance_hit) / double(idx.size());
            rep.chance_rule = fmt::format("always the most frequent train label '{}' (1/{} = {:.4f})",
                                          plan.spec.labels.at(static_cast<size_t>(tc.top_label)),
                                          plan.spec.labels.size(), 1.0 / double(plan.spec.labels.size()));
            rep.metric      = "accuracy";
            break;
        }
        case adapter::Task::Regress: {
            double err = 0, chance_err = 0;
            M4_RETURN_IF_ERROR(for_batches(fw, path, &man, ds, idx, o.batch, 0, w,
                                           [&](std::vector<model::Request> & reqs, size_t at) -> Status {
                                               M4_ASSIGN_OR_RETURN(auto outs, fw.run(path, mm, reqs));
                                               for (size_t k = 0; k < outs.size(); ++k) {
                                                   const double y = ds.at(idx[at + k]).value;
                                                   err += std::fabs(outs[k].head.at(0) - y);
                                                   chance_err += std::fabs(tc.median - y);
                                               }
                                               return Status::ok();
                                           }));
            rep.score       = err / double(idx.size());
            rep.chance      = chance_err / double(idx.size());
            rep.chance_rule = fmt::format("always the train median {:.4g}", tc.median);
            rep.metric      = "mae";
            break;
        }
        case adapter::Task::Embed: {
            M4_RETURN_IF_ERROR(score_retrieval(
                fw, ds, idx, plan, o, &man, w,
                [&](std::vector<model::Request> & reqs) -> Result<std::vector<std::vector<float>>> {
                    M4_ASSIGN_OR_RETURN(auto outs, fw.run(path, mm, reqs));
                    std::vector<std::vector<float>> v;
                    for (auto & out : outs) v.push_back(std::move(out.head));
                    return v;
                },
                &rep));
            break;
        }
        case adapter::Task::Generate: {
            std::vector<std::string> pred, ref;
            const int64_t reserve = man.generation.max_new_tokens;
            const int64_t gb      = std::min<int64_t>(o.batch, 32);
            M4_RETURN_IF_ERROR(for_batches(
                fw, path, &man, ds, idx, gb, reserve, w, [&](std::vector<model::Request> & reqs, size_t at) -> Status {
                    M4_ASSIGN_OR_RETURN(auto gens, fw.generate(path, mm, reqs, man.generation));
                    for (size_t k = 0; k < gens.size(); ++k) {
                        pred.push_back(gens[k].text);
                        ref.push_back(std::string(ds.at(idx[at + k]).target));
                    }
                    return Status::ok();
                }));
            M4_ASSIGN_OR_RETURN(rep.score, text_metric(plan.metrics[0], pred, ref));
            const std::string constant = plan.metrics[0] == "top1_accuracy" ? tc.top_word : tc.top_target;
            const std::vector<std::string> cpred(ref.size(), constant);
            M4_ASSIGN_OR_RETURN(rep.chance, text_metric(plan.metrics[0], cpred, ref));
            rep.chance_rule = fmt::format("always the most frequent train target \"{}\"", constant);
            for (size_t m = 1; m < plan.metrics.size(); ++m) {
                M4_ASSIGN_OR_RETURN(double v, text_metric(plan.metrics[m], pred, ref));
                rep.extra.push_back({plan.metrics[m], v});
            }
            // A few answers next to their references, so a reader sees what the numbers mean.
            for (size_t k = 0; k < std::min<size_t>(3, pred.size()); ++k)
                rep.samples.push_back({trim(pred[k]), trim(ref[k])});
            break;
        }
    }
    rep.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return rep;
}

Result<EvalReport> evaluate_zero_shot(const model::Model & fw, const TaskPlan & plan, const std::string & data_dir,
                                      const EvalOptions & o) {
    const auto t0            = Clock::now();
    const std::string & task = plan.facts.name;
    if (plan.spec.path != model::Path::Encoder)
        return invalid_argument("task '" + task +
                                "': zero-shot scoring is for encoder-path tasks (this one runs on the " +
                                model::path_name(plan.spec.path) + " path)");
    M4_ASSIGN_OR_RETURN(data::Dataset ds, data::Dataset::open(data_dir, task, o.split));
    const std::vector<size_t> idx = pick(ds, o);
    if (idx.empty()) return invalid_argument(ds.path() + ": no examples to score");
    const auto mm = model_modality(ds.modality());
    EvalReport rep;
    rep.task     = task;
    rep.split    = o.validation ? o.split + " (validation share)" : o.split;
    rep.examples = static_cast<int64_t>(idx.size());
    rep.total    = static_cast<int64_t>(ds.size());
    auto raw     = [&](std::vector<model::Request> & reqs) -> Result<std::vector<std::vector<float>>> {
        M4_ASSIGN_OR_RETURN(auto outs, fw.run(model::Path::Encoder, mm, reqs));
        std::vector<std::vector<float>> v;
        for (auto & out : outs) v.push_back(std::move(out.embedding));
        return v;
    };
    if (plan.facts.kind == "retrieve") {
        M4_RETURN_IF_ERROR(score_retrieval(fw, ds, idx, plan, o, nullptr, nullptr, raw, &rep));
    } else {
        if (plan.spec.objective != train::Objective::Classify || plan.zero_shot_templates.empty())
            return invalid_argument("task '" + task + "': zero-shot needs a classification task with label prompts");
        std::vector<std::vector<float>> label_vec;
        for (const auto & texts : zero_shot_prompts(plan)) {
            M4_ASSIGN_OR_RETURN(auto e, text_embeddings(fw, texts, o.batch));
            label_vec.push_back(average_normalised(e));
        }
        M4_ASSIGN_OR_RETURN(TrainConstants tc, train_constants(data_dir, task));
        int64_t hit = 0, chance_hit = 0;
        M4_RETURN_IF_ERROR(for_batches(fw, model::Path::Encoder, nullptr, ds, idx, o.batch, 0, nullptr,
                                       [&](std::vector<model::Request> & reqs, size_t at) -> Status {
                                           M4_ASSIGN_OR_RETURN(auto v, raw(reqs));
                                           for (size_t k = 0; k < v.size(); ++k) {
                                               std::vector<float> s;
                                               for (const auto & l : label_vec) s.push_back(dot(v[k], l));
                                               const int32_t y = ds.at(idx[at + k]).label;
                                               hit += argmax(s) == y;
                                               chance_hit += tc.top_label == y;
                                           }
                                           return Status::ok();
                                       }));
        rep.metric      = "accuracy";
        rep.score       = double(hit) / double(idx.size());
        rep.chance      = double(chance_hit) / double(idx.size());
        rep.chance_rule = fmt::format("always the most frequent train label (1/{} = {:.4f})", plan.spec.labels.size(),
                                      1.0 / double(plan.spec.labels.size()));
        rep.extra.push_back({"label prompts per class", double(plan.zero_shot_templates.size())});
    }
    rep.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return rep;
}

}  // namespace m4::bench
