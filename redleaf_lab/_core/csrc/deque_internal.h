/* deque_internal.h: what deque.c (takes, puts, fields of items in place) and
 * deque_move.c (deque-to-deque moves) share. Not part of the API: only heap.h is.
 *
 * Locking: every function here expects the heap mutex held.
 */
#ifndef REDLEAF_DEQUE_INTERNAL_H
#define REDLEAF_DEQUE_INTERNAL_H

#include <string.h>

#include "heap_internal.h"

#define DEQUE_HEADER 16u

/* The deque's words ([head, length], then the ring of child ids) and capacity, if
 * `owner` owns the live deque `deque` and its header fits its ring. */
int rl_deque_ring(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t **words,
                  uint64_t *capacity);

/* Copies one field; constant widths let the compiler turn memcpy into one load/store. */
static inline void copy_width(uint8_t *dst, const uint8_t *src, uint64_t width) {
    switch (width) {
    case 2: memcpy(dst, src, 2); break;
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    default: memmove(dst, src, width); /* a caller may pass overlapping memory */
    }
}

/* a field of `width` bytes at `offset` inside the object (checked before any change) */
static inline int field_fits(const rl_slot *s, uint64_t offset, uint64_t width) {
    if (!s || (s->flags & F_PENDING)) return RL_ESTALE;
    return offset > s->size || width > s->size - offset ? RL_EINVAL : RL_OK;
}

#endif
