/* bulk.c: whole-batch field access for handle-free batches (heap.h, "Batches of fields").
 *
 * Purpose: a driver handling n requests reads their block numbers, writes their lengths
 * and gets their DMA addresses with one registry call each instead of n Python handles
 * and 2n calls. Safety does not rest on the caller: every id is resolved and checked
 * against the registry (live, owned by the calling domain, range inside the object)
 * before anything is copied, so a forged or stale id can only produce an error.
 *
 * Interface: rl_gather, rl_scatter, rl_iova_bulk, rl_free_owned_bulk (see heap.h).
 * All-or-nothing: a first pass checks every id, a second pass copies.
 *
 * Locking/ownership: each function holds the heap mutex for the whole batch, so the checks
 * and the copies see one registry state; the caller keeps the GIL (build.py).
 */
#include <string.h>

#include "heap_internal.h"

enum field_access { FIELD_READ, FIELD_WRITE, FIELD_ADDRESS };

static int check_owner(const rl_heap *h, uint32_t owner) {
    if (owner == RL_OWNER_NESTED || owner >= RL_MAX_OWNERS) return RL_EINVAL;
    return (h->dead[owner >> 3] >> (owner & 7)) & 1 ? RL_EDEAD : RL_OK;
}

static int check_field(const rl_slot *s, uint64_t offset, uint64_t width, uint32_t owner,
                       enum field_access access) {
    if (!s || (s->flags & F_PENDING)) return RL_ESTALE;
    if (s->owner != owner) return s->owner == RL_OWNER_NESTED ? RL_ENESTED : RL_ENOTOWNER;
    if (offset > s->size || width > s->size - offset) return RL_EINVAL;
    return access == FIELD_WRITE && s->borrows ? RL_EBORROWED : RL_OK;
}

/* Copies one field; constant widths let the compiler turn memcpy into one load/store. */
static void copy_field(void *dst, const void *src, uint64_t width) {
    switch (width) {
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    default: memmove(dst, src, width); /* a caller may pass overlapping memory */
    }
}

static int fields_locked(rl_heap *h, const uint64_t *ids, uint64_t n, uint64_t offset,
                         uint64_t width, uint32_t owner, uint8_t *buf,
                         enum field_access access, uint64_t *bad_index) {
    int rc = check_owner(h, owner);
    if (rc) return rc;
    for (uint64_t i = 0; i < n; i++) {
        rc = check_field(resolve(h, ids[i]), offset, width, owner, access);
        if (rc) {
            if (bad_index) *bad_index = i;
            return rc;
        }
    }
    for (uint64_t i = 0; i < n; i++) {
        const rl_slot *s = resolve(h, ids[i]);
        uint8_t *field = h->base + s->offset + offset;
        if (access == FIELD_READ) copy_field(buf + i * width, field, width);
        else if (access == FIELD_WRITE) copy_field(field, buf + i * width, width);
        else ((uint64_t *)(void *)buf)[i] = h->iova_base + s->offset + offset;
    }
    return RL_OK;
}

static int run_fields(rl_heap *h, const uint64_t *ids, uint64_t n, uint64_t offset,
                      uint64_t width, uint32_t owner, void *buf, enum field_access access,
                      uint64_t *bad_index) {
    if (bad_index) *bad_index = RL_NO_INDEX;
    if (n && (!ids || !buf)) return RL_EINVAL;
    if (n && access != FIELD_ADDRESS && width > UINT64_MAX / n) return RL_EINVAL;
    LOCKED(h, fields_locked(h, ids, n, offset, width, owner, buf, access, bad_index));
}

int rl_gather(rl_heap *h, const uint64_t *ids, uint64_t n, uint64_t offset, uint64_t width,
              uint32_t owner, void *out, uint64_t *bad_index) {
    return run_fields(h, ids, n, offset, width, owner, out, FIELD_READ, bad_index);
}

int rl_scatter(rl_heap *h, const uint64_t *ids, uint64_t n, uint64_t offset, uint64_t width,
               uint32_t owner, const void *src, uint64_t *bad_index) {
    /* FIELD_WRITE only reads from src: the cast drops a const the copy never violates */
    return run_fields(h, ids, n, offset, width, owner, (void *)(uintptr_t)src, FIELD_WRITE,
                      bad_index);
}

int rl_iova_bulk(rl_heap *h, const uint64_t *ids, uint64_t n, uint64_t offset, uint64_t width,
                 uint32_t owner, uint64_t *out, uint64_t *bad_index) {
    return run_fields(h, ids, n, offset, width, owner, out, FIELD_ADDRESS, bad_index);
}

uint64_t rl_free_owned_bulk(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t owner) {
    uint64_t freed = 0;
    if (!ids || owner == RL_OWNER_NESTED) return 0;
    pthread_mutex_lock(&h->lock);
    for (uint64_t i = 0; i < n; i++) {
        const rl_slot *s = resolve(h, ids[i]);
        if (s && s->owner == owner && !(s->flags & F_PENDING)) {
            rl_free_locked(h, ids[i], 1);
            freed++;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return freed;
}
