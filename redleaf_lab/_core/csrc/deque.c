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
 * deque, as RedLeaf code indexes an RRefDeque it owns), all or nothing, as bulk.c does for
 * top-level objects; rl_deque_add adds a number to an unsigned field of every object in
 * place (ixy-fwd's "touch one byte", a TTL decrement); rl_deque_len is the length, for the owner only (else -error);
 * rl_deque_move moves items from the front of one deque of the owner to the back of
 * another in one step (they stay nested: only their parent changes), with optional
 * per-item field work (write one field, give IOVAs, read one field) checked before
 * anything changes: a driver moves buffers between its rings and its caller's deques
 * without a batch in between; rl_deque_move_to_ring also writes a 16-byte DMA
 * descriptor {buffer IOVA, word} per moved item into a descriptor ring (the read format
 * of an RX ring, the data descriptors of a TX ring). Locking: the heap mutex.
 */
#include <string.h>

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
static int field_fits(const rl_slot *s, uint64_t offset, uint64_t width) {
    if (!s || (s->flags & F_PENDING)) return RL_ESTALE;
    return offset > s->size || width > s->size - offset ? RL_EINVAL : RL_OK;
}

static int take_locked(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t limit,
                       uint64_t *ids_out, uint64_t *n_out, uint64_t offset, uint64_t width,
                       uint64_t *iovas_out) {
    uint64_t *w, cap;
    int rc = deque_ring(h, deque, owner, &w, &cap);
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
    int rc = deque_ring(h, deque, owner, &w, &cap);
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
    int rc = deque_ring(h, deque, owner, &w, &cap);
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
    int rc = deque_ring(h, deque, owner, &w, &cap);
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

/* the per-item field work of a move: bytes [offset, offset + width) of each item */
typedef struct {
    uint64_t offset, width;
    uint8_t *buf;
} field_io;

/* The bytes an item must have for every requested field (0 if none); UINT64_MAX if a
 * field's end overflows (no item has that many). */
static uint64_t field_io_need(const field_io *const *fields, int count) {
    uint64_t need = 0;
    for (int k = 0; k < count; k++) {
        const field_io *f = fields[k];
        if (!f->buf) continue;
        if (f->offset > UINT64_MAX - f->width) return UINT64_MAX;
        if (f->offset + f->width > need) need = f->offset + f->width;
    }
    return need;
}


/* Descriptors written for the moved items (ring NULL: none): 16-byte entries, entry i at
 * ring[(start + i) % size] = {IOVA of the `iova` field of item i, its word}. The word is
 * table[v] when a table is given, v being item i's unsigned `key` field (an item whose v
 * is past the table or maps to 0 is refused: nothing moves), else words[i], else `word`. */
typedef struct {
    uint64_t *ring;
    uint64_t size, start;
    const uint64_t *words;
    uint64_t word;
    const uint64_t *table;
    uint64_t table_len;
    field_io key; /* buf unused: non-NULL when a table is given */
} desc_out;

/* the unsigned little-endian value of a 1, 2, 4 or 8-byte field */
static inline uint64_t field_value(const uint8_t *field, uint64_t width) {
    uint64_t value = 0;
    copy_width((uint8_t *)&value, field, width);
    return value;
}

static int move_locked(rl_heap *h, uint64_t src, uint64_t dst, uint32_t owner, uint64_t limit,
                       int exact, const field_io *set, const field_io *iova,
                       const field_io *get, const desc_out *desc, uint64_t *moved,
                       uint64_t *bad_index) {
    uint64_t *sw, *dw, scap, dcap;
    if (src == dst) return RL_EINVAL;
    int rc = deque_ring(h, src, owner, &sw, &scap);
    if (!rc) rc = deque_ring(h, dst, owner, &dw, &dcap);
    if (rc) return rc;
    uint64_t shead = sw[0], slen = sw[1], dlen = dw[1], room = dcap - dlen;
    uint64_t n = limit;
    if (exact) {
        if (n > slen) return RL_EINVAL;
        if (n > room) return RL_EFULL;
    } else {
        n = n < slen ? n : slen;
        n = n < room ? n : room;
    }
    if (desc->ring && n > desc->size) return RL_EINVAL; /* entries would overwrite each other */
    /* a descriptor needs the IOVA field even when no IOVA array is asked for */
    const field_io desc_field = {iova->offset, iova->width, desc->ring ? (uint8_t *)1 : NULL};
    const field_io *const fields[5] = {set, iova, get, &desc_field, &desc->key};
    uint64_t need = field_io_need(fields, 5);
    const uint64_t *sring = sw + 2;
    for (uint64_t i = 0, at = shead; i < n; i++, at = at + 1 == scap ? 0 : at + 1) {
        const rl_slot *s = resolve(h, sring[at]); /* first pass: check every item */
        if (!s || (s->flags & F_PENDING)) return RL_ESTALE;
        if (s->owner != RL_OWNER_NESTED || s->parent != src) return RL_ENESTED;
        if (set->buf && s->borrows) return RL_EBORROWED;
        if (s->size < need) return RL_EINVAL; /* a field does not fit this item */
        if (desc->table) {
            uint64_t v = field_value(h->base + s->offset + desc->key.offset, desc->key.width);
            if (v >= desc->table_len || !desc->table[v]) {
                if (bad_index) *bad_index = i;
                return RL_EINVAL; /* no descriptor word for this value */
            }
        }
    }
    uint64_t *dring = dw + 2, dat = (dw[0] + dlen) % dcap, slot = desc->start;
    for (uint64_t i = 0, at = shead; i < n; i++, at = at + 1 == scap ? 0 : at + 1) {
        uint64_t id = sring[at]; /* second pass: field work, then the move */
        rl_slot *s = resolve(h, id);
        uint8_t *item = h->base + s->offset;
        uint64_t address = h->iova_base + s->offset + iova->offset;
        if (set->buf) copy_width(item + set->offset, set->buf + i * set->width, set->width);
        if (iova->buf) ((uint64_t *)(void *)iova->buf)[i] = address;
        if (get->buf) copy_width(get->buf + i * get->width, item + get->offset, get->width);
        if (desc->ring) {
            desc->ring[2 * slot] = address;
            desc->ring[2 * slot + 1] =
                desc->table   ? desc->table[field_value(item + desc->key.offset, desc->key.width)]
                : desc->words ? desc->words[i]
                              : desc->word;
            slot = slot + 1 == desc->size ? 0 : slot + 1;
        }
        s->parent = dst;
        dring[dat] = id;
        dat = dat + 1 == dcap ? 0 : dat + 1;
    }
    /* as for a take, the source slots keep their ids (see take_locked) */
    sw[0] = (shead + n) % scap;
    sw[1] = slen - n;
    dw[1] = dlen + n;
    *moved = n;
    return RL_OK;
}

int64_t rl_deque_move(rl_heap *h, uint64_t src, uint64_t dst, uint32_t owner, uint64_t limit,
                      int exact, uint64_t set_offset, uint64_t set_width, const void *set_src,
                      uint64_t iova_offset, uint64_t iova_width, uint64_t *iovas_out,
                      uint64_t get_offset, uint64_t get_width, void *get_out) {
    /* the casts drop a const the move never violates: it only reads set_src */
    field_io set = {set_offset, set_width, (uint8_t *)(uintptr_t)set_src};
    field_io iova = {iova_offset, iova_width, (uint8_t *)iovas_out};
    field_io get = {get_offset, get_width, (uint8_t *)get_out};
    const desc_out none = {NULL, 0, 0, NULL, 0, NULL, 0, {0, 0, NULL}};
    if (set.buf && !exact) return -RL_EINVAL; /* the caller must know how many it writes */
    uint64_t moved = 0;
    pthread_mutex_lock(&h->lock);
    int rc = move_locked(h, src, dst, owner, limit, exact, &set, &iova, &get, &none, &moved,
                         NULL);
    pthread_mutex_unlock(&h->lock);
    return rc ? -(int64_t)rc : (int64_t)moved;
}

int64_t rl_deque_move_to_ring(rl_heap *h, uint64_t src, uint64_t dst, uint32_t owner,
                              uint64_t limit, uint64_t iova_offset, uint64_t iova_width,
                              uint64_t *ring, uint64_t ring_size, uint64_t start,
                              const uint64_t *words, uint64_t word, const uint64_t *table,
                              uint64_t table_len, uint64_t key_offset, uint64_t key_width,
                              uint64_t *bad_index) {
    const field_io no_field = {0, 0, NULL};
    const field_io iova = {iova_offset, iova_width, NULL};
    const desc_out desc = {ring, ring_size, start, words, word, table, table_len,
                           {key_offset, key_width, table ? (uint8_t *)1 : NULL}};
    if (bad_index) *bad_index = RL_NO_INDEX;
    if (!ring || !ring_size || start >= ring_size) return -RL_EINVAL;
    if (table && key_width != 1 && key_width != 2 && key_width != 4 && key_width != 8)
        return -RL_EINVAL;
    uint64_t moved = 0;
    pthread_mutex_lock(&h->lock);
    int rc = move_locked(h, src, dst, owner, limit, 0, &no_field, &iova, &no_field, &desc,
                         &moved, bad_index);
    pthread_mutex_unlock(&h->lock);
    return rc ? -(int64_t)rc : (int64_t)moved;
}
