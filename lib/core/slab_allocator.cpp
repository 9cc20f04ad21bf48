#include "lib/core/slab_allocator.h"

#include <new>
#include <utility>

namespace kvctl::core {

SlabAllocator::~SlabAllocator() = default;  // chunks free every slab block at once

void SlabAllocator::Swap(SlabAllocator& other) noexcept {
  std::swap(chunks_, other.chunks_);
  std::swap(bump_, other.bump_);
  std::swap(bump_left_, other.bump_left_);
  std::swap(free_, other.free_);
  std::swap(free_bytes_, other.free_bytes_);
}

void* SlabAllocator::Allocate(size_t size) {
  const size_t footprint = Footprint(size);
  if (footprint > kMaxSlabBlock) return ::operator new(footprint);
  FreeBlock*& head = free_[footprint / kGranularity];
  if (head != nullptr) {
    FreeBlock* block = head;
    head = block->next;
    free_bytes_ -= footprint;
    return block;
  }
  if (bump_left_ < footprint) {
    // The tail of the old chunk (< kMaxSlabBlock bytes) goes on the free list
    // of its size rather than to waste.
    if (bump_left_ >= kGranularity) Free(bump_, bump_left_);
    // Not value-initialized: the pages are touched (made resident) only as
    // blocks are carved from them.
    chunks_.push_back(std::make_unique_for_overwrite<char[]>(kChunkBytes));
    bump_ = chunks_.back().get();
    bump_left_ = kChunkBytes;
  }
  void* block = bump_;
  bump_ += footprint;
  bump_left_ -= footprint;
  return block;
}

void SlabAllocator::Free(void* block, size_t size) {
  const size_t footprint = Footprint(size);
  if (footprint > kMaxSlabBlock) {
    ::operator delete(block);
    return;
  }
  FreeBlock*& head = free_[footprint / kGranularity];
  head = new (block) FreeBlock{head};
  free_bytes_ += footprint;
}

}  // namespace kvctl::core
