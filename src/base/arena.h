// Bump allocator for activations: one forward pass allocates from it, reset() frees everything
// at once. Blocks are 64-byte aligned (a cache line, and AVX-512 / AMX friendly). Memory grows in
// chunks mapped straight from the OS and is reused across passes, so steady-state inference does
// no heap allocation; a thread's arena gives back what it holds beyond kArenaRetainBytes whenever
// its outermost scope ends, so one long prompt does not pin its activations for the life of a
// serving process (page faults cost well under 1% of such a pass).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace m4 {

inline constexpr size_t kAlign            = 64;
inline constexpr size_t kArenaRetainBytes = size_t{8} << 20;

void * aligned_alloc_bytes(size_t bytes);  // 64-byte aligned, zero-size gives a valid pointer
void aligned_free(void * p);

struct AlignedDeleter {
    void operator()(void * p) const { aligned_free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t[], AlignedDeleter>;
AlignedBuffer make_aligned_buffer(size_t bytes);

// Unmaps an anonymous mapping of `bytes`.
struct MappingDeleter {
    size_t bytes = 0;
    void operator()(uint8_t * p) const;
};

class Arena {
  public:
    explicit Arena(size_t chunk_bytes = 1 << 20) : chunk_bytes_(chunk_bytes) {}

    void * alloc_bytes(size_t bytes);
    template <typename T>
    T * alloc(size_t count) {
        return static_cast<T *>(alloc_bytes(count * sizeof(T)));
    }
    void reset();  // frees all allocations, keeps the memory
    // With nothing allocated: gives all chunks back to the OS if they hold more than keep_bytes.
    void trim(size_t keep_bytes);
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
        std::unique_ptr<uint8_t[], MappingDeleter> mem;  // anonymous mapping, page aligned
        size_t size = 0, used = 0;
    };
    static Chunk map_chunk(size_t bytes);
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
    ~ArenaScope() {
        arena_.release(mark_);
        if (mark_.total == 0) arena_.trim(kArenaRetainBytes);
    }
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
