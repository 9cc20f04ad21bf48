// Memory for many small blocks of a few sizes, packed tighter than malloc
// packs them: the entries of the in-memory table (key_table.h).
//
// glibc's malloc adds 8 bytes to every block and rounds up to 16: a
// 126-byte entry (16-byte key, 100-byte value) takes a 144-byte chunk. Here
// blocks up to kMaxSlabBlock bytes are rounded up to a multiple of 8 only
// and carved from large chunks with no header, so the same entry takes 128
// bytes; a freed block goes on a free list for its size and is reused by
// the next block of that size. Larger blocks go to operator new.
//
// The price: memory freed here is kept for blocks of the same size, never
// given back to the system before the allocator is destroyed (like a
// malloc arena that never trims). A workload whose values shrink or grow
// for good leaves the old sizes' free lists unused.
//
// Thread safety: none; the owner serializes calls.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvctl::core {

class SlabAllocator {
 public:
  static constexpr size_t kGranularity = 8;
  static constexpr size_t kMaxSlabBlock = 1024;  // larger blocks go to operator new
  static constexpr size_t kChunkBytes = 1 << 20;

  SlabAllocator() = default;
  SlabAllocator(const SlabAllocator&) = delete;
  SlabAllocator& operator=(const SlabAllocator&) = delete;
  // A moved-from allocator is empty and usable.
  SlabAllocator(SlabAllocator&& other) noexcept { Swap(other); }
  SlabAllocator& operator=(SlabAllocator&& other) noexcept {
    SlabAllocator taken(std::move(other));
    Swap(taken);
    return *this;
  }
  ~SlabAllocator();

  // A block of at least `size` bytes (size > 0), aligned to 8.
  void* Allocate(size_t size);
  // Returns a block from Allocate(size), with the same size.
  void Free(void* block, size_t size);

  // The bytes a block of `size` really takes; Allocate(size) may reuse a
  // freed block of another size with the same footprint.
  static size_t Footprint(size_t size) {
    return size > kMaxSlabBlock ? size : (size + kGranularity - 1) / kGranularity * kGranularity;
  }

  // Bytes held in chunks (used, free or not yet carved), for reports.
  uint64_t chunk_bytes() const { return chunks_.size() * kChunkBytes; }
  // Bytes of freed slab blocks waiting for reuse.
  uint64_t free_bytes() const { return free_bytes_; }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  void Swap(SlabAllocator& other) noexcept;

  static constexpr size_t kClasses = kMaxSlabBlock / kGranularity + 1;

  std::vector<char*> chunks_;  // each kChunkBytes, mapped
  char* bump_ = nullptr;  // the uncarved rest of the newest chunk
  size_t bump_left_ = 0;
  std::array<FreeBlock*, kClasses> free_{};  // by footprint / kGranularity
  uint64_t free_bytes_ = 0;
};

}  // namespace kvctl::core
