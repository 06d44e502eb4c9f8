/* deque.c: whole-batch operations on RRefDeque containers, each one registry call.
 *
 * Purpose: the drivers' per-batch path (heap/containers.py RRefDeque.take_batch and
 * put_batch) used to read the ring header in Python, copy slot ids, detach or attach
 * them with one call and write the header back: four to six Python steps per batch.
 * Here one call under the heap mutex does all of it, so a batch moves between a deque
 * and a domain atomically (no interruption point between the registry and the ring).
 *
 * Layout (shared with containers.py): a deque is a container whose first two u64 words
 * are [head, length] (child_offset 16) and whose remaining words are the ring of child
 * ids; capacity = (size - 16) / 8. A header that does not fit the ring is refused
 * (RL_EINVAL) and nothing changes.
 *
 * Interface: rl_deque_take moves up to `limit` children from the front out to `owner`
 * (who must own the deque); rl_deque_put appends `n` objects of `owner`, all or nothing
 * (RL_EFULL if they do not fit, with *bad_index = RL_NO_INDEX). Locking: the heap mutex.
 */
#include "heap_internal.h"

#define DEQUE_HEADER 16u

static int deque_ring(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t **words,
                      uint64_t *capacity) {
    rl_slot *s = resolve(h, deque);
    if (!s || (s->flags & F_PENDING)) return RL_ESTALE;
    if (!(s->flags & RL_FLAG_CONTAINER) || s->child_offset != DEQUE_HEADER ||
        s->size < DEQUE_HEADER + 8)
        return RL_EINVAL;
    if (s->owner == RL_OWNER_NESTED) return RL_ENESTED;
    if (s->owner != owner) return RL_ENOTOWNER;
    uint64_t *w = (uint64_t *)(h->base + s->offset);
    uint64_t cap = (s->size - DEQUE_HEADER) / 8;
    if (w[0] >= cap || w[1] > cap) return RL_EINVAL;
    *words = w;
    *capacity = cap;
    return RL_OK;
}

static int take_locked(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t limit,
                       uint64_t *ids_out, uint64_t *n_out) {
    uint64_t *w, cap;
    int rc = deque_ring(h, deque, owner, &w, &cap);
    if (rc) return rc;
    uint64_t head = w[0], length = w[1], n = limit < length ? limit : length;
    uint64_t *ring = w + 2;
    for (uint64_t i = 0; i < n; i++) ids_out[i] = ring[(head + i) % cap];
    rc = rl_detach_locked(h, deque, ids_out, n, owner, NULL);
    if (rc) return rc;
    /* the taken slots keep their ids (outside [head, head + length) they mean nothing,
     * and a container's free skips ids that are not its children): a shadow reads them
     * to know which requests an interrupted call carried (idl/recovery.py) */
    w[0] = (head + n) % cap;
    w[1] = length - n;
    *n_out = n;
    return RL_OK;
}

static int put_locked(rl_heap *h, uint64_t deque, uint32_t owner, const uint64_t *ids,
                      uint64_t n, uint64_t *bad_index) {
    uint64_t *w, cap;
    int rc = deque_ring(h, deque, owner, &w, &cap);
    if (rc) return rc;
    uint64_t head = w[0], length = w[1];
    if (n > cap - length) return RL_EFULL;
    rc = rl_attach_locked(h, deque, ids, n, owner, bad_index);
    if (rc) return rc;
    uint64_t *ring = w + 2;
    for (uint64_t i = 0; i < n; i++) ring[(head + length + i) % cap] = ids[i];
    w[1] = length + n;
    return RL_OK;
}

int rl_deque_take(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t limit,
                  uint64_t *ids_out, uint64_t *n_out) {
    if (!n_out || (limit && !ids_out)) return RL_EINVAL;
    *n_out = 0;
    LOCKED(h, take_locked(h, deque, owner, limit, ids_out, n_out));
}

int rl_deque_put(rl_heap *h, uint64_t deque, uint32_t owner, const uint64_t *ids, uint64_t n,
                 uint64_t *bad_index) {
    if (bad_index) *bad_index = RL_NO_INDEX;
    if (n && !ids) return RL_EINVAL;
    LOCKED(h, put_locked(h, deque, owner, ids, n, bad_index));
}
