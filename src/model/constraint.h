// Constrained output: generated text restricted to (a) one of a list of choices or (b) JSON that
// follows a schema subset (object with properties and required keys, string, number, integer,
// boolean, null, enum, array with items / minItems / maxItems). The constraint is compiled once per
// request — the schema into a table of nodes, the vocabulary into a trie of token surfaces — and
// at every step gives the sampler a mask over the vocabulary: the tokens whose text keeps the
// output a prefix of some valid output AND leaves enough tokens to finish it. So the output always
// parses: the budget check (the shortest completion, in bytes, never exceeds the tokens left) and
// single-character tokens for every character a completion needs (checked at compile) mean the
// mask is never empty and the text is complete when the tokens run out.
//
//     auto c = TokenConstraint::json_schema(R"({"type":"object","properties":{"n":{"type":"integer"}},
//                                             "required":["n"]})", model.tokenizer(), 32);
//     GenerateOptions g; g.constraint = *c;       // Model::generate masks every step of that row
//
// The output is compact: no whitespace outside strings; object properties in schema order (an
// optional one may be left out); strings without escapes or control characters. Stop strings are
// not applied to a constrained row (the constraint decides where it ends).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace m4::model {

class Tokenizer;

// Bounds on what an app may send (docs/service.md, "Constrained output").
inline constexpr size_t kMaxSchemaBytes  = 16384;
inline constexpr int kMaxSchemaDepth     = 8;
inline constexpr size_t kMaxSchemaNodes  = 256;
inline constexpr size_t kMaxLiterals     = 64;   // choices, enum values, properties of one object
inline constexpr size_t kMaxLiteralBytes = 128;  // one choice, enum value (as JSON) or key

class TokenConstraint {
  public:
    // Output exactly one of `choices` (1..kMaxLiterals distinct strings of 1..kMaxLiteralBytes).
    static Result<std::shared_ptr<const TokenConstraint>> choices(const std::vector<std::string> & choices,
                                                                  const Tokenizer & tok, int max_new_tokens);
    // Output JSON following `schema` (JSON text, at most kMaxSchemaBytes).
    static Result<std::shared_ptr<const TokenConstraint>> json_schema(const std::string & schema, const Tokenizer & tok,
                                                                      int max_new_tokens);
    // Checks the request's values without a vocabulary (size, syntax, supported keywords): what
    // the service's event loop runs before admitting a request.
    static Status check_choices(const std::vector<std::string> & choices);
    static Status check_schema(const std::string & schema);

    // The matcher's position in the output (a small fixed-size value, copied freely).
    struct Frame {
        uint8_t kind = 0, phase = 0;
        bool first   = true;  // object / array: nothing emitted yet
        int16_t node = 0, pos = 0, cur = -1, count = 0;
        uint64_t cand = 0;  // literal / key candidates still possible (bit i = literal or property i)
    };
    struct State {
        std::array<Frame, kMaxSchemaDepth * 2 + 2> frames{};
        int8_t depth  = 0;     // frames in use
        bool at_start = true;  // the tokenizer drops one leading space of the output
        bool done     = false;
    };

    State start() const;
    // allowed[V] = 1 for every token that may come next when `remaining` tokens (this one
    // included) may still be generated; EOS is allowed exactly when the output is complete.
    void mask(const State & s, int64_t remaining, uint8_t * allowed) const;
    // Moves past `token` (one the mask allowed).
    void advance(State & s, int32_t token) const;
    // Bytes the shortest complete output needs (also an upper bound on its tokens).
    int64_t min_bytes() const;
    bool complete(const State & s) const;

    struct Node;        // schema node (constraint_node.h)
    struct VocabIndex;  // the vocabulary's token trie (constraint_node.h)
    ~TokenConstraint();

  private:
    TokenConstraint();
    Status compile_vocabulary(const Tokenizer & tok, int max_new_tokens);
    bool feed(State & s, unsigned char c) const;
    int64_t remaining_bytes(const State & s) const;
    void walk(int32_t trie_node, const State & s, int64_t budget, uint8_t * allowed) const;

    std::vector<Node> nodes_;
    // The vocabulary's token surfaces (piece text, U+2581 as a space) in a byte trie. Built once
    // per vocabulary and shared by every constraint over it (a cache keyed by the vocabulary's
    // content), so a queued constrained request holds only its schema table.
    std::shared_ptr<const VocabIndex> vocab_index_;
    int32_t eos_     = -1;
    int64_t vocab_   = 0;
    bool is_choices_ = false;
};

}  // namespace m4::model
