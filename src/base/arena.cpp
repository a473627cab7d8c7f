#include "base/arena.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

#include "base/status.h"

namespace m4 {

void * aligned_alloc_bytes(size_t bytes) {
    size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
    if (rounded == 0) rounded = kAlign;
    void * p = std::aligned_alloc(kAlign, rounded);
    if (!p) throw std::bad_alloc();
    return p;
}

void aligned_free(void * p) {
    std::free(p);
}

AlignedBuffer make_aligned_buffer(size_t bytes) {
    return AlignedBuffer(static_cast<uint8_t *>(aligned_alloc_bytes(bytes)));
}

void * Arena::alloc_bytes(size_t bytes) {
    size_t need = (bytes + kAlign - 1) / kAlign * kAlign;
    if (need == 0) need = kAlign;
    while (current_ < chunks_.size()) {
        Chunk & c = chunks_[current_];
        if (c.size - c.used >= need) {
            void * p = c.mem.get() + c.used;
            c.used += need;
            used_total_ += need;
            return p;
        }
        ++current_;
    }
    Chunk c = map_chunk(std::max(need, chunk_bytes_));
    c.used  = need;
    chunks_.push_back(std::move(c));
    current_ = chunks_.size() - 1;
    used_total_ += need;
    return chunks_.back().mem.get();
}

void Arena::reset() {
    // Merge into one chunk big enough for the last pass, so the next pass is a single block.
    if (chunks_.size() > 1) {
        size_t total = 0;
        for (auto & c : chunks_) total += c.size;
        chunks_.clear();
        chunks_.push_back(map_chunk(total));
    }
    for (auto & c : chunks_) c.used = 0;
    current_    = 0;
    used_total_ = 0;
}

void MappingDeleter::operator()(uint8_t * p) const {
    if (p) munmap(p, bytes);
}

Arena::Chunk Arena::map_chunk(size_t bytes) {
    // Mapped, not malloc'ed: munmap returns the pages at once, where glibc may keep freed heap
    // blocks of this size resident.
    void * p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    Chunk c;
    c.mem  = std::unique_ptr<uint8_t[], MappingDeleter>(static_cast<uint8_t *>(p), MappingDeleter{bytes});
    c.size = bytes;
    return c;
}

void Arena::trim(size_t keep_bytes) {
    if (used_total_ != 0 || reserved() <= keep_bytes) return;
    chunks_.clear();
    current_ = 0;
}

Arena::Mark Arena::mark() const {
    Mark m;
    m.chunk = current_;
    m.used  = current_ < chunks_.size() ? chunks_[current_].used : 0;
    m.total = used_total_;
    return m;
}

void Arena::release(const Mark & m) {
    // Chunks after the marked one become empty; the marked one returns to its old fill level.
    for (size_t i = m.chunk + 1; i < chunks_.size(); ++i) chunks_[i].used = 0;
    if (m.chunk < chunks_.size()) chunks_[m.chunk].used = m.used;
    current_    = m.chunk;
    used_total_ = m.total;
}

Arena & thread_arena() {
    thread_local Arena arena(4 << 20);
    return arena;
}

size_t Arena::reserved() const {
    size_t total = 0;
    for (auto & c : chunks_) total += c.size;
    return total;
}

}  // namespace m4
