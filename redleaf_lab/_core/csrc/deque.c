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
 * (who must own the deque); rl_deque_take_iovas does the same and also gives the device
 * address (IOVA) of one field of each (the zero-copy DMA idiom: take free buffers, put
 * their addresses in descriptors), refusing before anything moves if the field does not
 * fit an object; rl_deque_put appends `n` objects of `owner`, all or nothing (RL_EFULL if
 * they do not fit, with *bad_index = RL_NO_INDEX); rl_deque_fields reads or writes one
 * field of every object in the deque where it is (no move; its owner acts through the
 * deque, as RedLeaf code indexes an RRefDeque it owns), all or nothing, as bulk.c does
 * for top-level objects; rl_deque_add adds a number to an unsigned field of every object
 * in place (ixy-fwd's "touch one byte", a TTL decrement); rl_deque_len is the length, for
 * the owner only (else -error). Deque-to-deque moves are in deque_move.c.
 * Locking: the heap mutex.
 */
#include <string.h>

#include "deque_internal.h"

int rl_deque_ring(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t **words,
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

/* n ring words from position `start` on (mod cap) to `out`, or from `in` to the ring */
static void ring_read(const uint64_t *ring, uint64_t cap, uint64_t start, uint64_t n,
                      uint64_t *out) {
    uint64_t first = n < cap - start ? n : cap - start;
    memcpy(out, ring + start, first * sizeof *out);
    memcpy(out + first, ring, (n - first) * sizeof *out);
}

static void ring_write(uint64_t *ring, uint64_t cap, uint64_t start, uint64_t n,
                       const uint64_t *in) {
    uint64_t first = n < cap - start ? n : cap - start;
    memcpy(ring + start, in, first * sizeof *in);
    memcpy(ring, in + first, (n - first) * sizeof *in);
}

static int take_locked(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t limit,
                       uint64_t *ids_out, uint64_t *n_out, uint64_t offset, uint64_t width,
                       uint64_t *iovas_out) {
    uint64_t *w, cap;
    int rc = rl_deque_ring(h, deque, owner, &w, &cap);
    if (rc) return rc;
    uint64_t head = w[0], length = w[1], n = limit < length ? limit : length;
    uint64_t *ring = w + 2;
    ring_read(ring, cap, head, n, ids_out);
    if (iovas_out) {
        for (uint64_t i = 0; i < n; i++) {
            rc = field_fits(resolve(h, ids_out[i]), offset, width);
            if (rc) return rc;
        }
    }
    rc = rl_detach_locked(h, deque, ids_out, n, owner, NULL);
    if (rc) return rc;
    if (iovas_out) {
        for (uint64_t i = 0; i < n; i++)
            iovas_out[i] = h->iova_base + resolve(h, ids_out[i])->offset + offset;
    }
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
    int rc = rl_deque_ring(h, deque, owner, &w, &cap);
    if (rc) return rc;
    uint64_t head = w[0], length = w[1];
    if (n > cap - length) return RL_EFULL;
    rc = rl_attach_locked(h, deque, ids, n, owner, bad_index);
    if (rc) return rc;
    uint64_t *ring = w + 2;
    ring_write(ring, cap, (head + length) % cap, n, ids);
    w[1] = length + n;
    return RL_OK;
}

int rl_deque_take(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t limit,
                  uint64_t *ids_out, uint64_t *n_out) {
    if (!n_out || (limit && !ids_out)) return RL_EINVAL;
    *n_out = 0;
    LOCKED(h, take_locked(h, deque, owner, limit, ids_out, n_out, 0, 0, NULL));
}

int rl_deque_take_iovas(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t limit,
                        uint64_t *ids_out, uint64_t *n_out, uint64_t offset, uint64_t width,
                        uint64_t *iovas_out) {
    if (!n_out || (limit && (!ids_out || !iovas_out))) return RL_EINVAL;
    *n_out = 0;
    LOCKED(h, take_locked(h, deque, owner, limit, ids_out, n_out, offset, width, iovas_out));
}

int64_t rl_deque_len(rl_heap *h, uint64_t deque, uint32_t owner) {
    uint64_t *w, cap;
    pthread_mutex_lock(&h->lock);
    int rc = rl_deque_ring(h, deque, owner, &w, &cap);
    int64_t length = rc ? -(int64_t)rc : (int64_t)w[1];
    pthread_mutex_unlock(&h->lock);
    return length;
}

int rl_deque_put(rl_heap *h, uint64_t deque, uint32_t owner, const uint64_t *ids, uint64_t n,
                 uint64_t *bad_index) {
    if (bad_index) *bad_index = RL_NO_INDEX;
    if (n && !ids) return RL_EINVAL;
    LOCKED(h, put_locked(h, deque, owner, ids, n, bad_index));
}

enum field_op { FIELD_GET, FIELD_SET, FIELD_ADD };

/* Checks the field of every item of the deque (first pass) and applies `op` to each
 * (second pass): copy to or from buf (n items, n = the deque's length, else RL_EINVAL),
 * or add `addend` to an unsigned little-endian field of 1, 2, 4 or 8 bytes (wrapping). */
static int fields_locked(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t offset,
                         uint64_t width, uint8_t *buf, uint64_t n, enum field_op op,
                         uint64_t addend, uint64_t *bad_index) {
    uint64_t *w, cap;
    int rc = rl_deque_ring(h, deque, owner, &w, &cap);
    if (rc) return rc;
    uint64_t head = w[0];
    if (w[1] != n) return RL_EINVAL; /* the caller sized buf for another length */
    const uint64_t *ring = w + 2;
    for (uint64_t i = 0, at = head; i < n; i++, at = at + 1 == cap ? 0 : at + 1) {
        const rl_slot *s = resolve(h, ring[at]);
        rc = field_fits(s, offset, width);
        if (!rc && (s->owner != RL_OWNER_NESTED || s->parent != deque)) rc = RL_ENESTED;
        if (!rc && op != FIELD_GET && s->borrows) rc = RL_EBORROWED;
        if (rc) {
            if (bad_index) *bad_index = i;
            return rc;
        }
    }
    for (uint64_t i = 0, at = head; i < n; i++, at = at + 1 == cap ? 0 : at + 1) {
        uint8_t *field = h->base + resolve(h, ring[at])->offset + offset;
        if (op == FIELD_ADD) {
            uint64_t value = 0; /* little-endian hosts only (x86-64, aarch64) */
            copy_width((uint8_t *)&value, field, width);
            value += addend;
            copy_width(field, (const uint8_t *)&value, width);
            continue;
        }
        uint8_t *item = buf + i * width;
        if (op == FIELD_SET) copy_width(field, item, width);
        else copy_width(item, field, width);
    }
    return RL_OK;
}

int rl_deque_fields(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t offset,
                    uint64_t width, void *buf, uint64_t n, int write, uint64_t *bad_index) {
    if (bad_index) *bad_index = RL_NO_INDEX;
    if (n && (!buf || width > UINT64_MAX / n)) return RL_EINVAL;
    LOCKED(h, fields_locked(h, deque, owner, offset, width, buf, n,
                            write ? FIELD_SET : FIELD_GET, 0, bad_index));
}

int rl_deque_add(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t offset, uint64_t width,
                 uint64_t addend, uint64_t n, uint64_t *bad_index) {
    if (bad_index) *bad_index = RL_NO_INDEX;
    if (width != 1 && width != 2 && width != 4 && width != 8) return RL_EINVAL;
    LOCKED(h, fields_locked(h, deque, owner, offset, width, NULL, n, FIELD_ADD, addend,
                            bad_index));
}
