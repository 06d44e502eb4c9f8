/* arena.c: the shared heap's block allocator.
 *
 * Purpose: carves the arena (one MAP_NORESERVE mapping) with a bump pointer into
 * size-classed blocks: multiples of 64 bytes up to 64 KiB, of 4 KiB up to RL_MAX_ALLOC.
 * Objects of 4 KiB or more are page aligned (NVMe PRPs and DMA need it). Freed blocks go
 * to a per-class LIFO list kept *outside* the arena, so a device or a stale pointer
 * scribbling on freed memory can never corrupt the allocator; reused blocks are zeroed.
 *
 * Locking: called by heap.c with the heap mutex held.
 */
#include <stdlib.h>
#include <string.h>

#include "heap_internal.h"

/* ---- size classes and arena blocks ---- */

uint64_t rl_round_up(uint64_t value, uint64_t align) {
    return (value + align - 1) & ~(align - 1);
}

static uint64_t block_align(uint64_t rounded) { return rounded >= PAGE ? PAGE : SMALL_ALIGN; }

int rl_size_class(uint64_t size, uint64_t *rounded, uint32_t *cls) {
    *rounded = 0;
    *cls = 0;
    if (size == 0 || size > RL_MAX_ALLOC) return -1;
    if (size <= SMALL_MAX) {
        *rounded = rl_round_up(size, SMALL_ALIGN);
        *cls = (uint32_t)(*rounded / SMALL_ALIGN) - 1u;
    } else {
        *rounded = rl_round_up(size, PAGE);
        *cls = SMALL_CLASSES + (uint32_t)(*rounded / PAGE) - LARGE_FIRST_PAGES;
    }
    return 0;
}

void rl_push_block(rl_heap *h, uint64_t offset, uint64_t size) {
    uint64_t rounded;
    uint32_t cls;
    rl_size_class(size, &rounded, &cls);
    offset_stack *stack = &h->free_blocks[cls];
    if (stack->len == stack->cap) {
        uint64_t cap = stack->cap ? stack->cap * 2 : 16;
        uint64_t *items = realloc(stack->items, cap * sizeof *items);
        if (!items) return; /* host OOM: leak the block rather than fail a free */
        stack->items = items;
        stack->cap = cap;
    }
    stack->items[stack->len++] = offset;
    h->stats.free_list_bytes += rounded;
}

/* Checks space only; takes nothing. */
int rl_block_available(const rl_heap *h, uint64_t rounded, uint32_t cls) {
    if (h->free_blocks[cls].len) return 1;
    uint64_t start = rl_round_up(h->bump, block_align(rounded));
    return start <= h->arena_bytes && rounded <= h->arena_bytes - start;
}

/* Caller checked block_available. Returns the arena offset of a zeroed block. */
uint64_t rl_take_block(rl_heap *h, uint64_t rounded, uint32_t cls) {
    offset_stack *stack = &h->free_blocks[cls];
    if (stack->len) {
        uint64_t offset = stack->items[--stack->len];
        h->stats.free_list_bytes -= rounded;
        memset(h->base + offset, 0, rounded);
        return offset;
    }
    uint64_t start = rl_round_up(h->bump, block_align(rounded));
    if (start > h->bump) rl_push_block(h, h->bump, start - h->bump); /* reuse the gap later */
    h->bump = start + rounded; /* fresh anonymous memory is already zero */
    h->stats.arena_used = h->bump;
    return start;
}

