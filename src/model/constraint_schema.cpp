// Compiling a constraint: the schema subset (or a choice list) into a table of nodes with the
// byte length of their shortest completions, and the vocabulary into a trie of token surfaces.
// The matcher and the masks are in constraint.cpp.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <map>
#include <mutex>
#include <set>

#include "model/constraint_node.h"
#include "model/tokenizer.h"

namespace m4::model {

TokenConstraint::TokenConstraint()  = default;
TokenConstraint::~TokenConstraint() = default;

namespace {

using ojson = nlohmann::ordered_json;

// Splits UTF-8 text into code points (each as its bytes); invalid UTF-8 is one byte per unit.
std::vector<std::string> code_points(const std::string & s) {
    std::vector<std::string> out;
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        size_t n        = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        n               = std::min(n, s.size() - i);
        out.push_back(s.substr(i, n));
        i += n;
    }
    return out;
}

Status check_literal(const std::string & s, const std::string & what, bool json_string) {
    if (s.empty() || s.size() > kMaxLiteralBytes)
        return invalid_argument(what + " has " + std::to_string(s.size()) + " bytes; 1.." +
                                std::to_string(kMaxLiteralBytes) + " are allowed");
    for (unsigned char c : s) {
        if (c < 0x20) return invalid_argument(what + " contains a control character");
        if (json_string && (c == '"' || c == '\\'))
            return invalid_argument(what + " contains '" + std::string(1, char(c)) +
                                    "' (no escapes in constrained JSON)");
    }
    return Status::ok();
}

class SchemaParser {
  public:
    explicit SchemaParser(std::vector<TokenConstraint::Node> * nodes) : nodes_(nodes) {}

    Result<int> parse(const ojson & j, const std::string & where, int depth) {
        if (depth > kMaxSchemaDepth)
            return invalid_argument(where + ": nested deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
        if (!j.is_object()) return invalid_argument(where + ": a schema must be a JSON object");
        if (nodes_->size() >= kMaxSchemaNodes)
            return invalid_argument("json_schema: more than " + std::to_string(kMaxSchemaNodes) + " schemas");
        static const std::set<std::string> known = {
            "type",     "properties", "required",    "items", "enum",
            "minItems", "maxItems",   "description", "title", "additionalProperties"};
        for (auto it = j.begin(); it != j.end(); ++it)
            if (!known.count(it.key()))
                return invalid_argument(where + ": keyword \"" + it.key() +
                                        "\" is not supported (type, properties, required, items, enum, minItems, "
                                        "maxItems)");
        if (j.contains("additionalProperties") && j["additionalProperties"] != false)
            return invalid_argument(where + ": additionalProperties must be false (the only supported value)");
        const int id = static_cast<int>(nodes_->size());
        nodes_->emplace_back();
        TokenConstraint::Node n;
        if (j.contains("enum")) {
            const auto & e = j["enum"];
            if (!e.is_array() || e.empty() || e.size() > kMaxLiterals)
                return invalid_argument(where + ": \"enum\" must be an array of 1.." + std::to_string(kMaxLiterals) +
                                        " values");
            n.kind = NodeKind::Literal;
            for (size_t i = 0; i < e.size(); ++i) {
                const std::string w = where + ".enum[" + std::to_string(i) + "]";
                if (e[i].is_object() || e[i].is_array())
                    return invalid_argument(w + ": only strings, numbers, booleans and null are supported");
                if (e[i].is_string()) M4_RETURN_IF_ERROR(check_literal(e[i].get<std::string>(), w, true));
                n.literals.push_back(e[i].dump());
                if (n.literals.back().size() > kMaxLiteralBytes)
                    return invalid_argument(w + " is longer than " + std::to_string(kMaxLiteralBytes) + " bytes");
            }
            if (std::set<std::string>(n.literals.begin(), n.literals.end()).size() != n.literals.size())
                return invalid_argument(where + ": \"enum\" has duplicate values");
        } else {
            if (!j.contains("type") || !j["type"].is_string())
                return invalid_argument(where + ": \"type\" (a string) or \"enum\" is required");
            const std::string t = j["type"].get<std::string>();
            if (t == "object") {
                M4_RETURN_IF_ERROR(parse_object(j, where, depth, &n));
            } else if (t == "array") {
                n.kind = NodeKind::Array;
                if (!j.contains("items")) return invalid_argument(where + ": an array needs \"items\"");
                M4_ASSIGN_OR_RETURN(n.items, parse(j["items"], where + ".items", depth + 1));
                auto count = [&](const char * k, int dflt) -> Result<int> {
                    if (!j.contains(k)) return dflt;
                    if (!j[k].is_number_unsigned() || j[k].get<uint64_t>() > kMaxLiterals)
                        return invalid_argument(where + ": \"" + k + "\" must be an integer in [0, " +
                                                std::to_string(kMaxLiterals) + "]");
                    return static_cast<int>(j[k].get<uint64_t>());
                };
                M4_ASSIGN_OR_RETURN(n.min_items, count("minItems", 0));
                M4_ASSIGN_OR_RETURN(n.max_items, count("maxItems", INT16_MAX));
                if (n.max_items < n.min_items) return invalid_argument(where + ": maxItems < minItems");
            } else if (t == "string") {
                n.kind = NodeKind::String;
            } else if (t == "number") {
                n.kind = NodeKind::Number;
            } else if (t == "integer") {
                n.kind = NodeKind::Integer;
            } else if (t == "boolean") {
                n.kind = NodeKind::Literal, n.literals = {"true", "false"};
            } else if (t == "null") {
                n.kind = NodeKind::Literal, n.literals = {"null"};
            } else {
                return invalid_argument(where + ": type \"" + t +
                                        "\" is not supported (object, array, string, number, integer, boolean, null)");
            }
        }
        for (const char * k : {"properties", "required"})
            if (j.contains(k) && n.kind != NodeKind::Object)
                return invalid_argument(where + ": \"" + k + "\" needs type object");
        for (const char * k : {"items", "minItems", "maxItems"})
            if (j.contains(k) && n.kind != NodeKind::Array)
                return invalid_argument(where + ": \"" + k + "\" needs type array");
        (*nodes_)[id] = std::move(n);
        return id;
    }

  private:
    Status parse_object(const ojson & j, const std::string & where, int depth, TokenConstraint::Node * n) {
        n->kind = NodeKind::Object;
        std::set<std::string> required;
        if (j.contains("required")) {
            if (!j["required"].is_array()) return invalid_argument(where + ": \"required\" must be an array of names");
            for (const auto & r : j["required"]) {
                if (!r.is_string()) return invalid_argument(where + ": \"required\" must be an array of names");
                required.insert(r.get<std::string>());
            }
        }
        if (j.contains("properties")) {
            const auto & p = j["properties"];
            if (!p.is_object()) return invalid_argument(where + ": \"properties\" must be an object");
            if (p.size() > kMaxLiterals)
                return invalid_argument(where + ": more than " + std::to_string(kMaxLiterals) + " properties");
            for (auto it = p.begin(); it != p.end(); ++it) {
                const std::string w = where + ".properties." + it.key();
                M4_RETURN_IF_ERROR(check_literal(it.key(), w + " (the name)", true));
                M4_ASSIGN_OR_RETURN(int child, parse(it.value(), w, depth + 1));
                n->props.push_back({it.key(), child, required.erase(it.key()) > 0});
            }
        }
        if (!required.empty())
            return invalid_argument(where + ": required property \"" + *required.begin() + "\" is not in properties");
        return Status::ok();
    }

    std::vector<TokenConstraint::Node> * nodes_;
};

// Shortest completions, bottom-up (children have larger ids than their parents).
void compute_lengths(std::vector<TokenConstraint::Node> & nodes) {
    for (size_t k = nodes.size(); k-- > 0;) {
        auto & n = nodes[k];
        switch (n.kind) {
            case NodeKind::String:
                n.min_len = 2;
                break;
            case NodeKind::Number:
            case NodeKind::Integer:
                n.min_len = 1;
                break;
            case NodeKind::Literal: {
                n.min_len = INT64_MAX;
                for (const auto & l : n.literals) n.min_len = std::min<int64_t>(n.min_len, l.size());
                break;
            }
            case NodeKind::Array:
                n.min_len = 2 + n.min_items * (nodes[n.items].min_len + 1) - (n.min_items > 0 ? 1 : 0);
                break;
            case NodeKind::Object: {
                const size_t P = n.props.size();
                n.rest.assign(P + 1, 1);
                n.rest_first.assign(P + 1, 1);
                for (size_t i = P; i-- > 0;) {
                    const auto & p  = n.props[i];
                    const int64_t k = static_cast<int64_t>(p.key.size()) + 3 + nodes[p.node].min_len;
                    n.rest[i]       = n.rest[i + 1] + (p.required ? 1 + k : 0);
                    n.rest_first[i] = p.required ? k + n.rest[i + 1] : n.rest_first[i + 1];
                }
                n.min_len = 1 + n.rest_first[0];
                break;
            }
        }
    }
}

}  // namespace

Status TokenConstraint::check_choices(const std::vector<std::string> & choices) {
    if (choices.empty() || choices.size() > kMaxLiterals)
        return invalid_argument(std::to_string(choices.size()) + " choices; 1.." + std::to_string(kMaxLiterals) +
                                " are allowed");
    for (size_t i = 0; i < choices.size(); ++i)
        M4_RETURN_IF_ERROR(check_literal(choices[i], "choice " + std::to_string(i), false));
    if (std::set<std::string>(choices.begin(), choices.end()).size() != choices.size())
        return invalid_argument("the choices have duplicates");
    return Status::ok();
}

Status TokenConstraint::check_schema(const std::string & schema) {
    std::vector<Node> nodes;
    if (schema.size() > kMaxSchemaBytes)
        return invalid_argument("json_schema has " + std::to_string(schema.size()) + " bytes; at most " +
                                std::to_string(kMaxSchemaBytes));
    ojson j = ojson::parse(schema, nullptr, false);
    if (j.is_discarded()) return invalid_argument("json_schema is not valid JSON");
    return SchemaParser(&nodes).parse(j, "json_schema", 0).status();
}

Result<std::shared_ptr<const TokenConstraint>> TokenConstraint::choices(const std::vector<std::string> & choices,
                                                                        const Tokenizer & tok, int max_new_tokens) {
    M4_RETURN_IF_ERROR(check_choices(choices));
    std::shared_ptr<TokenConstraint> c(new TokenConstraint());
    Node n;
    n.kind     = NodeKind::Literal;
    n.literals = choices;
    c->nodes_.push_back(std::move(n));
    c->is_choices_ = true;
    compute_lengths(c->nodes_);
    M4_RETURN_IF_ERROR(c->compile_vocabulary(tok, max_new_tokens));
    return std::shared_ptr<const TokenConstraint>(std::move(c));
}

Result<std::shared_ptr<const TokenConstraint>> TokenConstraint::json_schema(const std::string & schema,
                                                                            const Tokenizer & tok, int max_new_tokens) {
    M4_RETURN_IF_ERROR(check_schema(schema));
    std::shared_ptr<TokenConstraint> c(new TokenConstraint());
    M4_RETURN_IF_ERROR(SchemaParser(&c->nodes_).parse(ojson::parse(schema), "json_schema", 0).status());
    compute_lengths(c->nodes_);
    M4_RETURN_IF_ERROR(c->compile_vocabulary(tok, max_new_tokens));
    return std::shared_ptr<const TokenConstraint>(std::move(c));
}

namespace {

// The vocabulary index for `tok`, from a small process-wide cache keyed by the vocabulary's
// content (pieces and kinds): one copy per firmware however many requests hold constraints.
std::shared_ptr<const TokenConstraint::VocabIndex> vocab_index(const Tokenizer & tok) {
    using Index = TokenConstraint::VocabIndex;
    std::vector<std::string> surface(static_cast<size_t>(tok.vocab_size()));
    uint64_t key = 1469598103934665603ull;  // FNV-1a over the surfaces and their ids
    for (int32_t id = 0; id < tok.vocab_size(); ++id) {
        const int32_t type = tok.piece_type(id);
        if (type != 1 && type != 4) continue;  // control, unknown, unused and byte pieces never appear
        std::string s = tok.piece(id);
        for (size_t at; (at = s.find("\xE2\x96\x81")) != std::string::npos;) s.replace(at, 3, " ");
        for (unsigned char ch : s) key = (key ^ ch) * 1099511628211ull;
        key           = (key ^ static_cast<uint32_t>(id)) * 1099511628211ull;
        surface[id] = std::move(s);
    }
    static std::mutex mu;
    static std::map<uint64_t, std::weak_ptr<const Index>> cache;
    static std::shared_ptr<const Index> last;  // keeps the latest alive between requests
    std::lock_guard<std::mutex> lock(mu);
    if (auto hit = cache[key].lock(); hit && hit->surface == surface) return last = hit;
    auto idx = std::make_shared<Index>();
    idx->trie.assign(1, Index::TrieNode{});
    for (int32_t id = 0; id < static_cast<int32_t>(surface.size()); ++id) {
        const std::string & s = surface[id];
        if (s.empty()) continue;
        if (code_points(s).size() == 1) idx->singles.insert(s);
        int32_t node = 0;
        for (unsigned char ch : s) {
            auto & next = idx->trie[node].next;
            auto it     = std::lower_bound(next.begin(), next.end(), std::make_pair(ch, INT32_MIN));
            if (it == next.end() || it->first != ch) {
                const int32_t child = static_cast<int32_t>(idx->trie.size());
                it                  = next.insert(it, {ch, child});
                idx->trie.emplace_back();
            }
            node = it->second;
        }
        idx->trie[node].tokens.push_back(id);
    }
    idx->surface = std::move(surface);
    for (auto it = cache.begin(); it != cache.end();) it = it->second.expired() ? cache.erase(it) : std::next(it);
    cache[key] = idx;
    return last = idx;
}

}  // namespace

Status TokenConstraint::compile_vocabulary(const Tokenizer & tok, int max_new_tokens) {
    vocab_               = tok.vocab_size();
    eos_                 = tok.eos_id();
    vocab_index_         = vocab_index(tok);
    const auto & singles = vocab_index_->singles;
    // Every character on a shortest completion must exist as a token of its own (see the header).
    auto need = [&](const std::string & text, const std::string & what) -> Status {
        for (const auto & cp : code_points(text))
            if (!singles.count(cp))
                return invalid_argument(what + " cannot be spelled by the firmware's vocabulary (no token for '" + cp +
                                        "')");
        return Status::ok();
    };
    for (size_t k = 0; k < nodes_.size(); ++k) {
        const Node & n = nodes_[k];
        const bool top = is_choices_;
        switch (n.kind) {
            case NodeKind::Object:
                M4_RETURN_IF_ERROR(need("{}\":,", "a JSON object"));
                for (const auto & p : n.props) M4_RETURN_IF_ERROR(need(p.key, "property \"" + p.key + "\""));
                break;
            case NodeKind::Array:
                M4_RETURN_IF_ERROR(need("[],", "a JSON array"));
                break;
            case NodeKind::String:
                M4_RETURN_IF_ERROR(need("\"", "a JSON string"));
                break;
            case NodeKind::Number:
            case NodeKind::Integer:
                M4_RETURN_IF_ERROR(need("0", "a JSON number"));
                break;
            case NodeKind::Literal:
                for (size_t i = 0; i < n.literals.size(); ++i)
                    M4_RETURN_IF_ERROR(need(n.literals[i], (top ? "choice " : "enum value ") + std::to_string(i) +
                                                               " '" + n.literals[i] + "'"));
                break;
        }
    }
    if (eos_ < 0 || eos_ >= vocab_) return invalid_argument("the firmware's tokenizer has no end-of-sequence token");
    if (min_bytes() > max_new_tokens)
        return invalid_argument("the shortest output allowed takes " + std::to_string(min_bytes()) +
                                " tokens; max_new_tokens is " + std::to_string(max_new_tokens));
    return Status::ok();
}

int64_t TokenConstraint::min_bytes() const {
    return nodes_[0].min_len;
}

}  // namespace m4::model
