/* heap_internal.h: the heap's private layout, shared by heap.c (registry), arena.c
 * (the block allocator) and bulk.c (batches of fields). Not part of the API: only heap.h is.
 *
 * Locking: every field is guarded by `lock`; functions declared here assume it is held.
 */
#ifndef REDLEAF_HEAP_INTERNAL_H
#define REDLEAF_HEAP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "heap.h"

#define SMALL_MAX (64u * 1024u)
#define SMALL_ALIGN 64u
#define PAGE 4096u
#define SMALL_CLASSES (SMALL_MAX / SMALL_ALIGN)
#define LARGE_FIRST_PAGES (SMALL_MAX / PAGE + 1u)
#define NUM_CLASSES (SMALL_CLASSES + (uint32_t)(RL_MAX_ALLOC / PAGE) - SMALL_MAX / PAGE)
#define NO_SLOT UINT32_MAX
#define SLOT_QUARANTINE 4096u
#define OWNER_PAGE_BITS 12u
#define OWNER_PAGES (RL_MAX_OWNERS >> OWNER_PAGE_BITS)
#define F_HELD (1u << 29) /* freed while pinned: block and slot kept until the last unpin */
#define F_LIVE (1u << 30)
#define F_MARK (1u << 31) /* bulk validation: "already seen in this batch" */
#define F_PUBLIC (RL_FLAG_CONTAINER | RL_FLAG_ORPHANED | RL_FLAG_FREE_PENDING)
#define F_PENDING (RL_FLAG_ORPHANED | RL_FLAG_FREE_PENDING)

typedef struct {
    uint64_t size, offset, parent, scan; /* scan: cursor of the container-free walk */
    uint32_t type_id, owner, borrows, generation, flags, child_offset, free_reason, next_free;
    uint32_t pins; /* live numpy views (view pins, handle.c): the memory may not be reused */
} rl_slot;

typedef struct { uint64_t *items, len, cap; } offset_stack;
typedef struct { uint64_t objects, bytes; } owner_count;

struct rl_heap {
    pthread_mutex_t lock;
    atomic_uint_fast64_t refs; /* creator + one per rl_handle (handle.c) */
    uint8_t *base;
    uint64_t arena_bytes, iova_base, bump, table_bytes;
    rl_slot *slots;
    uint32_t max_objects, slots_used, free_head, free_tail, free_queued;
    offset_stack free_blocks[NUM_CLASSES];
    owner_count *owner_pages[OWNER_PAGES]; /* per-owner live counters, pages made lazily */
    uint8_t dead[RL_MAX_OWNERS / 8];
    rl_heap_stats stats;
};

#define LOCKED(h, expr)                   \
    do {                                  \
        pthread_mutex_lock(&(h)->lock);   \
        int rc_ = (expr);                 \
        pthread_mutex_unlock(&(h)->lock); \
        return rc_;                       \
    } while (0)

/* ids: (generation << 32) | (slot index + 1); resolve gives the live slot or NULL */
static inline uint64_t slot_id(const rl_heap *h, const rl_slot *s) {
    return ((uint64_t)s->generation << 32) | (uint64_t)(s - h->slots + 1);
}

static inline rl_slot *resolve(rl_heap *h, uint64_t id) {
    uint32_t low = (uint32_t)id;
    if (low == 0 || low > h->slots_used) return NULL;
    rl_slot *s = &h->slots[low - 1u];
    if (!(s->flags & F_LIVE) || s->generation != (uint32_t)(id >> 32)) return NULL;
    return s;
}

/* the per-owner counters, or NULL if the owner's page was never made */
static inline owner_count *owner_counter(const rl_heap *h, uint32_t owner) {
    owner_count *page = h->owner_pages[owner >> OWNER_PAGE_BITS];
    return page ? &page[owner & ((1u << OWNER_PAGE_BITS) - 1u)] : NULL;
}

/* heap.c, for bulk.c (mutex held): rl_free / rl_free_if_live (quiet) without the lock */
int rl_free_locked(rl_heap *h, uint64_t id, int quiet);

/* heap.c, for deque.c (mutex held): rl_attach_bulk / rl_detach_bulk without the lock */
int rl_attach_locked(rl_heap *h, uint64_t container, const uint64_t *ids, uint64_t n,
                     uint32_t from, uint64_t *bad_index);
int rl_detach_locked(rl_heap *h, uint64_t container, const uint64_t *ids, uint64_t n,
                     uint32_t to, uint64_t *bad_index);

/* arena.c: size classes and blocks (mutex held) */
uint64_t rl_round_up(uint64_t value, uint64_t align);
int rl_size_class(uint64_t size, uint64_t *rounded, uint32_t *cls);
void rl_push_block(rl_heap *h, uint64_t offset, uint64_t size);
int rl_block_available(const rl_heap *h, uint64_t rounded, uint32_t cls);
uint64_t rl_take_block(rl_heap *h, uint64_t rounded, uint32_t cls);

#endif
