#include "lib/core/slab_allocator.h"

#include <sys/mman.h>

#include <new>
#include <utility>

namespace kvctl::core {

SlabAllocator::~SlabAllocator() {
  for (char* chunk : chunks_) ::munmap(chunk, kChunkBytes);  // every slab block at once
}

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
    // Populated: the kernel maps the chunk's pages in one call, not in one
    // page fault each as blocks are carved (a fifth of the time of loading
    // a million keys went to those faults).
    chunks_.reserve(chunks_.size() + 1);  // so that the push below cannot throw
    void* chunk = ::mmap(nullptr, kChunkBytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (chunk == MAP_FAILED) throw std::bad_alloc();
    chunks_.push_back(static_cast<char*>(chunk));
    bump_ = chunks_.back();
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
