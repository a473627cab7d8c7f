// The constraint's matcher: a byte-level pushdown recogniser of the outputs a compiled constraint
// allows (frames for the values being written), the byte length of the shortest completion from
// any state, and the vocabulary mask (a walk of the token trie that feeds each surface's bytes).
#include <algorithm>
#include <climits>
#include <cstring>

#include "model/constraint_node.h"

namespace m4::model {

namespace {

enum Kind : uint8_t { KValue, KObject, KArray, KString, KNumber, KLiteral };
// Object phases: after '{', after ',' (a key must follow), inside a key, before ':', while the
// value is written, after the value.
enum ObjPhase : uint8_t { OStart, OKeyExpect, OInKey, OColon, OValue, OAfter };
enum ArrPhase : uint8_t { AStart, AExpect, AValue, AAfter };
// Number phases: after '-', after a leading 0, in integer digits, after '.', in fraction digits.
enum NumPhase : uint8_t { NMinus, NZero, NInt, NDot, NFrac };
constexpr int kMaxDigits = 15;  // an integer part or fraction of at most 15 digits stays exact

bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

}  // namespace

TokenConstraint::State TokenConstraint::start() const {
    State s;
    s.depth     = 1;
    s.frames[0] = Frame{KValue, 0, true, 0, 0, -1, 0, 0};
    return s;
}

namespace {

// Key candidates of an object whose next property index is `idx`: every property up to and
// including the first required one (a required property cannot be skipped).
uint64_t key_candidates(const TokenConstraint::Node & n, int idx) {
    uint64_t m = 0;
    for (int i = idx; i < static_cast<int>(n.props.size()); ++i) {
        m |= uint64_t{1} << i;
        if (n.props[i].required) break;
    }
    return m;
}

bool required_after(const TokenConstraint::Node & n, int idx) {
    for (int i = idx; i < static_cast<int>(n.props.size()); ++i)
        if (n.props[i].required) return true;
    return false;
}

int64_t array_rest(const TokenConstraint::Node & n, const TokenConstraint::Node & item, int count, bool first) {
    const int64_t need = std::max(0, n.min_items - count);
    return 1 + need * (item.min_len + 1) - (first && need > 0 ? 1 : 0);
}

}  // namespace

// A finished value: the parent moves on (or the output is complete).
static void pop_value(TokenConstraint::State & s) {
    if (--s.depth == 0) {
        s.done = true;
        return;
    }
    auto & p = s.frames[s.depth - 1];
    p.first  = false;
    if (p.kind == KObject) p.phase = OAfter;
    if (p.kind == KArray) p.phase = AAfter, p.count++;
}

bool TokenConstraint::feed(State & s, unsigned char c) const {
    if (s.at_start) {
        s.at_start = false;
        if (c == ' ') return true;  // the tokenizer's leading space, dropped from the text
    }
    for (;;) {  // a finished number or literal hands `c` on to its parent: loop
        if (s.done) return false;
        Frame & f      = s.frames[s.depth - 1];
        const Node & n = nodes_[f.node];
        switch (f.kind) {
            case KValue:
                switch (n.kind) {
                    case NodeKind::Object:
                        if (c != '{') return false;
                        f = Frame{KObject, OStart, true, f.node, 0, -1, 0, 0};
                        return true;
                    case NodeKind::Array:
                        if (c != '[') return false;
                        f = Frame{KArray, AStart, true, f.node, 0, -1, 0, 0};
                        return true;
                    case NodeKind::String:
                        if (c != '"') return false;
                        f.kind = KString;
                        return true;
                    case NodeKind::Number:
                    case NodeKind::Integer:
                        if (c != '-' && !is_digit(c)) return false;
                        f.kind  = KNumber;
                        f.phase = c == '-' ? NMinus : c == '0' ? NZero : NInt;
                        f.pos   = c == '-' ? 0 : 1;
                        return true;
                    case NodeKind::Literal: {
                        uint64_t m = 0;
                        for (size_t i = 0; i < n.literals.size(); ++i)
                            if (static_cast<unsigned char>(n.literals[i][0]) == c) m |= uint64_t{1} << i;
                        if (!m) return false;
                        f.kind = KLiteral, f.cand = m, f.pos = 1;
                        return true;
                    }
                }
                return false;
            case KString:
                if (c == '"') return pop_value(s), true;
                return c >= 0x20 && c != '\\';
            case KNumber: {
                const bool complete = f.phase == NZero || f.phase == NInt || f.phase == NFrac;
                if (is_digit(c) && f.phase != NZero) {
                    if (f.phase == NMinus)
                        f.phase = c == '0' ? NZero : NInt;
                    else if (f.phase == NDot)
                        f.phase = NFrac, f.pos = 0;
                    if (++f.pos > kMaxDigits) return false;
                    return true;
                }
                if (c == '.' && n.kind == NodeKind::Number && (f.phase == NZero || f.phase == NInt)) {
                    f.phase = NDot;
                    return true;
                }
                if (!complete) return false;
                pop_value(s);
                continue;
            }
            case KLiteral: {
                uint64_t m    = 0;
                bool complete = false;
                for (size_t i = 0; i < n.literals.size(); ++i) {
                    if (!(f.cand >> i & 1)) continue;
                    const std::string & l = n.literals[i];
                    if (static_cast<int>(l.size()) == f.pos)
                        complete = true;
                    else if (static_cast<unsigned char>(l[f.pos]) == c)
                        m |= uint64_t{1} << i;
                }
                if (m) {
                    f.cand = m, f.pos++;
                    return true;
                }
                if (!complete) return false;
                pop_value(s);
                continue;
            }
            case KObject:
                switch (f.phase) {
                    case OStart:
                    case OKeyExpect:
                        if (c == '"' && key_candidates(n, f.cur + 1)) {
                            f.phase = OInKey, f.cand = key_candidates(n, f.cur + 1), f.pos = 0;
                            return true;
                        }
                        if (c == '}' && f.phase == OStart && !required_after(n, 0)) return pop_value(s), true;
                        return false;
                    case OInKey: {
                        uint64_t m  = 0;
                        int done_at = -1;
                        for (size_t i = 0; i < n.props.size(); ++i) {
                            if (!(f.cand >> i & 1)) continue;
                            const std::string & k = n.props[i].key;
                            if (static_cast<int>(k.size()) == f.pos)
                                done_at = static_cast<int>(i);
                            else if (static_cast<unsigned char>(k[f.pos]) == c)
                                m |= uint64_t{1} << i;
                        }
                        if (c == '"') {
                            if (done_at < 0) return false;
                            f.cur = static_cast<int16_t>(done_at), f.phase = OColon;
                            return true;
                        }
                        if (!m) return false;
                        f.cand = m, f.pos++;
                        return true;
                    }
                    case OColon: {
                        if (c != ':') return false;
                        f.phase = OValue;
                        s.frames[s.depth++] =
                            Frame{KValue, 0, true, static_cast<int16_t>(n.props[f.cur].node), 0, -1, 0, 0};
                        return true;
                    }
                    case OAfter:
                        if (c == ',' && f.cur + 1 < static_cast<int>(n.props.size())) {
                            f.phase = OKeyExpect;
                            return true;
                        }
                        if (c == '}' && !required_after(n, f.cur + 1)) return pop_value(s), true;
                        return false;
                }
                return false;
            case KArray:
                switch (f.phase) {
                    case AStart:
                        if (c == ']' && f.count >= n.min_items) return pop_value(s), true;
                        if (n.max_items == 0) return false;
                        [[fallthrough]];
                    case AExpect:
                        f.phase             = AValue;
                        s.frames[s.depth++] = Frame{KValue, 0, true, static_cast<int16_t>(n.items), 0, -1, 0, 0};
                        continue;  // the value's first byte
                    case AAfter:
                        if (c == ',' && f.count < n.max_items) {
                            f.phase = AExpect;
                            return true;
                        }
                        if (c == ']' && f.count >= n.min_items) return pop_value(s), true;
                        return false;
                }
                return false;
        }
        return false;
    }
}

int64_t TokenConstraint::remaining_bytes(const State & s) const {
    if (s.done) return 0;
    int64_t total = 0;
    for (int d = s.depth - 1; d >= 0; --d) {
        const Frame & f = s.frames[d];
        const Node & n  = nodes_[f.node];
        switch (f.kind) {
            case KValue:
                total += n.min_len;
                break;
            case KString:
                total += 1;
                break;
            case KNumber:
                total += (f.phase == NMinus || f.phase == NDot) ? 1 : 0;
                break;
            case KLiteral: {
                int64_t best = INT64_MAX;
                for (size_t i = 0; i < n.literals.size(); ++i)
                    if (f.cand >> i & 1)
                        best = std::min<int64_t>(best, static_cast<int64_t>(n.literals[i].size()) - f.pos);
                total += best;
                break;
            }
            case KObject: {
                auto key_cost = [&](int i, int64_t typed) {
                    return static_cast<int64_t>(n.props[i].key.size()) - typed + 2 + nodes_[n.props[i].node].min_len +
                           n.rest[i + 1];
                };
                int64_t best = INT64_MAX;
                switch (f.phase) {
                    case OStart:
                        total += n.rest_first[0];
                        break;
                    case OKeyExpect:
                        for (size_t i = 0; i < n.props.size(); ++i)
                            if (key_candidates(n, f.cur + 1) >> i & 1) best = std::min(best, 1 + key_cost(int(i), 0));
                        total += best;
                        break;
                    case OInKey:
                        for (size_t i = 0; i < n.props.size(); ++i)
                            if (f.cand >> i & 1) best = std::min(best, key_cost(int(i), f.pos));
                        total += best;
                        break;
                    case OColon:
                        total += 1 + nodes_[n.props[f.cur].node].min_len + n.rest[f.cur + 1];
                        break;
                    case OValue:
                    case OAfter:
                        total += n.rest[f.cur + 1];
                        break;
                }
                break;
            }
            case KArray: {
                const Node & item = nodes_[n.items];
                switch (f.phase) {
                    case AStart:
                        total += array_rest(n, item, f.count, true);
                        break;
                    case AExpect:
                        total += item.min_len + array_rest(n, item, f.count + 1, false);
                        break;
                    case AValue:
                        total += array_rest(n, item, f.count + 1, false);
                        break;
                    case AAfter:
                        total += array_rest(n, item, f.count, false);
                        break;
                }
                break;
            }
        }
    }
    return total;
}

bool TokenConstraint::complete(const State & s) const {
    return remaining_bytes(s) == 0;
}

void TokenConstraint::walk(int32_t node, const State & s, int64_t budget, uint8_t * allowed) const {
    const auto & trie = vocab_index_->trie;
    for (const auto & [byte, child] : trie[node].next) {
        State next = s;
        if (!feed(next, byte)) continue;
        if (!trie[child].tokens.empty() && remaining_bytes(next) <= budget)
            for (int32_t t : trie[child].tokens) allowed[t] = 1;
        walk(child, next, budget, allowed);
    }
}

void TokenConstraint::mask(const State & s, int64_t remaining, uint8_t * allowed) const {
    std::memset(allowed, 0, static_cast<size_t>(vocab_));
    if (complete(s)) allowed[eos_] = 1;
    if (remaining > 0) walk(0, s, remaining - 1, allowed);
}

void TokenConstraint::advance(State & s, int32_t token) const {
    if (token == eos_) return;
    M4_CHECK(token >= 0 && token < vocab_);
    for (unsigned char c : vocab_index_->surface[token]) M4_CHECK(feed(s, c));
}

}  // namespace m4::model
