// Internal to the constraint (constraint.cpp, constraint_schema.cpp): the compiled schema node.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "model/constraint.h"

namespace m4::model {

enum class NodeKind : uint8_t { Object, Array, String, Number, Integer, Literal };

struct TokenConstraint::Node {
    struct Prop {
        std::string key;
        int node      = 0;
        bool required = false;
    };
    NodeKind kind = NodeKind::String;
    std::vector<Prop> props;                       // object: in schema order (the output's order)
    int items = -1, min_items = 0, max_items = 0;  // array
    std::vector<std::string> literals;             // literal: choices, or enum values as compact JSON
    int64_t min_len = 0;                           // bytes of the shortest value
    // object: bytes to finish it when the next property index is i, with something already
    // emitted (rest: a comma precedes each further key) or nothing yet (rest_first); '}' included.
    std::vector<int64_t> rest, rest_first;
};

struct TokenConstraint::VocabIndex {
    struct TrieNode {
        std::vector<std::pair<unsigned char, int32_t>> next;  // children sorted by byte
        std::vector<int32_t> tokens;                          // tokens whose surface ends here
    };
    std::vector<TrieNode> trie;
    std::vector<std::string> surface;  // per token id; "" for tokens that never appear
    std::set<std::string> singles;     // surfaces that are one code point
};

}  // namespace m4::model
