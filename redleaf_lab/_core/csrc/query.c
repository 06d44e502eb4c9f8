/* query.c: read-only questions to the registry (lookup, owner, free reason, statistics,
 * listing, addresses). Split from heap.c, whose mutating operations they only read; each
 * takes the heap mutex like them (heap_internal.h). */
#include "heap_internal.h"

static void fill_info(const rl_heap *h, const rl_slot *s, rl_entry_info *out) {
    *out = (rl_entry_info){.id = slot_id(h, s), .size = s->size, .type_id = s->type_id,
                           .owner = s->owner, .borrows = s->borrows, .generation = s->generation,
                           .flags = s->flags & F_PUBLIC, .child_offset = s->child_offset,
                           .parent = s->parent, .iova = h->iova_base + s->offset};
}

static int lookup_locked(rl_heap *h, uint64_t id, rl_entry_info *out, uint32_t *owner_out) {
    rl_slot *s = resolve(h, id);
    if (!s) return RL_ESTALE;
    if (out) fill_info(h, s, out);
    if (owner_out) *owner_out = s->owner;
    return RL_OK;
}

int rl_lookup(rl_heap *h, uint64_t id, rl_entry_info *out) {
    LOCKED(h, lookup_locked(h, id, out, NULL));
}

int rl_owner(rl_heap *h, uint64_t id, uint32_t *owner_out) {
    LOCKED(h, lookup_locked(h, id, NULL, owner_out));
}

static int64_t owner_of_locked(rl_heap *h, uint64_t id) {
    uint32_t owner = 0;
    int rc = lookup_locked(h, id, NULL, &owner);
    return rc ? -(int64_t)rc : (int64_t)owner;
}

int64_t rl_owner_of(rl_heap *h, uint64_t id) {
    pthread_mutex_lock(&h->lock);
    int64_t owner = owner_of_locked(h, id);
    pthread_mutex_unlock(&h->lock);
    return owner;
}

static int free_reason_locked(rl_heap *h, uint64_t id) {
    uint32_t low = (uint32_t)id;
    if (low == 0 || low > h->slots_used) return 0;
    const rl_slot *s = &h->slots[low - 1u];
    if ((s->flags & F_LIVE) || s->generation != (uint32_t)(id >> 32) + 1u) return 0;
    return (int)s->free_reason;
}

int rl_free_reason(rl_heap *h, uint64_t id) { LOCKED(h, free_reason_locked(h, id)); }

int rl_stats(rl_heap *h, rl_heap_stats *out) {
    pthread_mutex_lock(&h->lock);
    *out = h->stats;
    pthread_mutex_unlock(&h->lock);
    return RL_OK;
}

static int domain_stats_locked(rl_heap *h, uint32_t owner, uint64_t *objects, uint64_t *bytes) {
    if (owner >= RL_MAX_OWNERS) return RL_EINVAL;
    const owner_count *c = owner_counter(h, owner);
    if (objects) *objects = c ? c->objects : 0;
    if (bytes) *bytes = c ? c->bytes : 0;
    return RL_OK;
}

int rl_domain_stats(rl_heap *h, uint32_t owner, uint64_t *objects, uint64_t *bytes) {
    LOCKED(h, domain_stats_locked(h, owner, objects, bytes));
}

uint64_t rl_list(rl_heap *h, rl_entry_info *out, uint64_t max) {
    uint64_t found = 0;
    pthread_mutex_lock(&h->lock);
    for (uint32_t i = 0; i < h->slots_used; i++) {
        if (!(h->slots[i].flags & F_LIVE)) continue;
        if (out && found < max) fill_info(h, &h->slots[i], &out[found]);
        found++;
    }
    pthread_mutex_unlock(&h->lock);
    return found;
}

void *rl_ptr_range(rl_heap *h, uint64_t id, uint64_t offset, uint64_t len) {
    pthread_mutex_lock(&h->lock);
    rl_slot *s = resolve(h, id);
    void *ptr = NULL;
    if (s && offset <= s->size && len <= s->size - offset) ptr = h->base + s->offset + offset;
    pthread_mutex_unlock(&h->lock);
    return ptr;
}

void *rl_ptr(rl_heap *h, uint64_t id) { return rl_ptr_range(h, id, 0, 0); }

uint64_t rl_iova(rl_heap *h, uint64_t id) {
    pthread_mutex_lock(&h->lock);
    rl_slot *s = resolve(h, id);
    uint64_t iova = s ? h->iova_base + s->offset : 0;
    pthread_mutex_unlock(&h->lock);
    return iova;
}

/* No lock: base, size and iova_base never change after creation. */
void *rl_iova_to_ptr(rl_heap *h, uint64_t iova, uint64_t len) {
    if (iova < h->iova_base) return NULL;
    uint64_t offset = iova - h->iova_base;
    if (offset > h->arena_bytes || len > h->arena_bytes - offset) return NULL;
    return h->base + offset;
}
