// Bump allocator for activations: one forward pass allocates from it, reset() frees everything
// at once. Blocks are 64-byte aligned (a cache line, and AVX-512 / AMX friendly). Memory grows in
// chunks and is reused across passes, so steady-state inference does no heap allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace m4 {

inline constexpr size_t kAlign = 64;

void * aligned_alloc_bytes(size_t bytes);  // 64-byte aligned, zero-size gives a valid pointer
void aligned_free(void * p);

struct AlignedDeleter {
    void operator()(void * p) const { aligned_free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t[], AlignedDeleter>;
AlignedBuffer make_aligned_buffer(size_t bytes);

class Arena {
  public:
    explicit Arena(size_t chunk_bytes = 1 << 20) : chunk_bytes_(chunk_bytes) {}

    void * alloc_bytes(size_t bytes);
    template <typename T>
    T * alloc(size_t count) {
        return static_cast<T *>(alloc_bytes(count * sizeof(T)));
    }
    void reset();  // frees all allocations, keeps the memory
    // Position marks for nested scopes: release(m) frees everything allocated after mark() returned m.
    struct Mark {
        size_t chunk = 0, used = 0, total = 0;
    };
    Mark mark() const;
    void release(const Mark & m);
    size_t used() const { return used_total_; }  // bytes handed out since reset()
    size_t reserved() const;                     // bytes held from the OS

  private:
    struct Chunk {
        AlignedBuffer mem;
        size_t size = 0, used = 0;
    };
    std::vector<Chunk> chunks_;
    size_t current_     = 0;
    size_t chunk_bytes_ = 0;
    size_t used_total_  = 0;
};

// A per-thread arena for activations, and an RAII scope that frees what was allocated inside it:
//     ArenaScope scope;                       // on thread_arena()
//     float * h = scope.alloc<float>(T * C);  // freed when `scope` ends
Arena & thread_arena();

class ArenaScope {
  public:
    ArenaScope() : arena_(thread_arena()), mark_(arena_.mark()) {}
    ~ArenaScope() { arena_.release(mark_); }
    ArenaScope(const ArenaScope &)             = delete;
    ArenaScope & operator=(const ArenaScope &) = delete;
    template <typename T>
    T * alloc(size_t count) {
        return arena_.alloc<T>(count);
    }

  private:
    Arena & arena_;
    Arena::Mark mark_;
};

}  // namespace m4
