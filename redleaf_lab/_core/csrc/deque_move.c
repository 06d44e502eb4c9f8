/* deque_move.c: deque-to-deque moves, each one registry call (heap.h, "Deques").
 *
 * Purpose: a driver moves buffers between its caller's deques and the deques that hold
 * what sits on its device's rings with no batch object and no per-item Python. The items
 * stay nested (only their parent changes), so a move costs no per-owner accounting. A
 * move can also do per-item field work: write a field (a received frame's length), write
 * a 16-byte DMA descriptor per item into a descriptor ring
 * (rl_deque_move_to_ring: lend buffers to a device), or read each item's descriptor
 * back from a ring, check it and copy a bit field of it into the item
 * (rl_deque_move_from_ring: hand received frames on).
 *
 * Safety: a first pass checks every item (live, nested in src, every field inside it,
 * not borrowed for a write, its descriptor word valid) before the second pass changes
 * anything, so a refusal changes nothing. Ring memory and arrays are the caller's
 * (Python checks their shape once, heap/deque_ops.py DescriptorRing).
 *
 * Locking: the heap mutex for the whole call; the caller keeps the GIL (build.py).
 */
#include "deque_internal.h"

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
 * ring[(start + i) % size] = {IOVA of the `address` field of item i, its word}. The word is
 * table[v] when a table is given, v being item i's unsigned `key` field (an item whose v
 * is past the table or maps to 0 is refused: nothing moves), else words[i], else `word`. */
typedef struct {
    uint64_t *ring;
    uint64_t size, start;
    field_io address; /* buf unused: non-NULL when a ring is given */
    const uint64_t *words;
    uint64_t word;
    const uint64_t *table;
    uint64_t table_len;
    field_io key; /* buf unused: non-NULL when a table is given */
} desc_out;

/* Descriptors read back for the moved items (ring NULL: none): item i's descriptor is
 * ring[(start + i) % size], read with acquire semantics (a device thread wrote it with
 * release); its 64-bit word `word` (0 or 1) must satisfy (w & check_mask) == check_want,
 * and its value (w >> shift) & value_mask must be at most value_max (else the move is
 * refused); the value goes into the item's `field` (width 1, 2, 4 or 8). */
typedef struct {
    const uint64_t *ring;
    uint64_t size, start, word, check_mask, check_want, shift, value_mask, value_max;
    field_io field; /* buf unused: non-NULL when a ring is given */
} desc_in;

static inline uint64_t desc_word(const desc_in *back, uint64_t slot) {
    return __atomic_load_n(&back->ring[2 * slot + back->word], __ATOMIC_ACQUIRE);
}

/* the unsigned little-endian value of a 1, 2, 4 or 8-byte field */
static inline uint64_t field_value(const uint8_t *field, uint64_t width) {
    uint64_t value = 0;
    copy_width((uint8_t *)&value, field, width);
    return value;
}

static int move_locked(rl_heap *h, uint64_t src, uint64_t dst, uint32_t owner, uint64_t limit,
                       int exact, const field_io *set, const desc_out *desc, const desc_in *back,
                       uint64_t *moved, uint64_t *bad_index) {
    uint64_t *sw, *dw, scap, dcap;
    if (src == dst) return RL_EINVAL;
    int rc = rl_deque_ring(h, src, owner, &sw, &scap);
    if (!rc) rc = rl_deque_ring(h, dst, owner, &dw, &dcap);
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
    const uint64_t ring_size = desc->ring ? desc->size : back->ring ? back->size : UINT64_MAX;
    if (n > ring_size) { /* entries would overwrite (or read) each other */
        if (exact) return RL_EINVAL;
        n = ring_size;
    }
    const field_io *const fields[4] = {set, &desc->address, &desc->key, &back->field};
    uint64_t need = field_io_need(fields, 4);
    uint64_t back_slot = back->start;
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
        if (back->ring) {
            uint64_t w = desc_word(back, back_slot);
            if ((w & back->check_mask) != back->check_want ||
                ((w >> back->shift) & back->value_mask) > back->value_max) {
                if (bad_index) *bad_index = i;
                return RL_EINVAL; /* the descriptor is not what the caller expects */
            }
            back_slot = back_slot + 1 == back->size ? 0 : back_slot + 1;
        }
    }
    back_slot = back->start;
    uint64_t *dring = dw + 2, dat = (dw[0] + dlen) % dcap, slot = desc->start;
    for (uint64_t i = 0, at = shead; i < n; i++, at = at + 1 == scap ? 0 : at + 1) {
        uint64_t id = sring[at]; /* second pass: field work, then the move */
        rl_slot *s = resolve(h, id);
        uint8_t *item = h->base + s->offset;
        if (set->buf) copy_width(item + set->offset, set->buf + i * set->width, set->width);
        if (desc->ring) {
            desc->ring[2 * slot] = h->iova_base + s->offset + desc->address.offset;
            desc->ring[2 * slot + 1] =
                desc->table   ? desc->table[field_value(item + desc->key.offset, desc->key.width)]
                : desc->words ? desc->words[i]
                              : desc->word;
            slot = slot + 1 == desc->size ? 0 : slot + 1;
        }
        if (back->ring) {
            uint64_t value = (desc_word(back, back_slot) >> back->shift) & back->value_mask;
            copy_width(item + back->field.offset, (const uint8_t *)&value, back->field.width);
            back_slot = back_slot + 1 == back->size ? 0 : back_slot + 1;
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

/* A field width a value can be read from or written to (1, 2, 4 or 8 bytes). */
static int value_width(uint64_t width) {
    return width == 1 || width == 2 || width == 4 || width == 8;
}

static const field_io NO_FIELD = {0, 0, NULL};
static const desc_out NO_DESC = {NULL, 0, 0, {0, 0, NULL}, NULL, 0, NULL, 0, {0, 0, NULL}};
static const desc_in NO_BACK = {NULL, 0, 0, 0, 0, 0, 0, 0, 0, {0, 0, NULL}};

/* move_locked under the heap mutex; the count moved, or -error */
static int64_t locked_move(rl_heap *h, uint64_t src, uint64_t dst, uint32_t owner,
                           uint64_t limit, int exact, const field_io *set,
                           const desc_out *desc, const desc_in *back, uint64_t *bad_index) {
    uint64_t moved = 0;
    if (bad_index) *bad_index = RL_NO_INDEX;
    pthread_mutex_lock(&h->lock);
    int rc = move_locked(h, src, dst, owner, limit, exact, set, desc, back, &moved, bad_index);
    pthread_mutex_unlock(&h->lock);
    return rc ? -(int64_t)rc : (int64_t)moved;
}

int64_t rl_deque_move(rl_heap *h, uint64_t src, uint64_t dst, uint32_t owner, uint64_t limit,
                      int exact, uint64_t set_offset, uint64_t set_width, const void *set_src) {
    /* the cast drops a const the move never violates: it only reads set_src */
    const field_io set = {set_offset, set_width, (uint8_t *)(uintptr_t)set_src};
    if (set.buf && !exact) return -RL_EINVAL; /* the caller must know how many it writes */
    return locked_move(h, src, dst, owner, limit, exact, &set, &NO_DESC, &NO_BACK, NULL);
}

int64_t rl_deque_move_to_ring(rl_heap *h, uint64_t src, uint64_t dst, uint32_t owner,
                              uint64_t limit, uint64_t iova_offset, uint64_t iova_width,
                              uint64_t *ring, uint64_t ring_size, uint64_t start,
                              const uint64_t *words, uint64_t word, const uint64_t *table,
                              uint64_t table_len, uint64_t key_offset, uint64_t key_width,
                              uint64_t *bad_index) {
    const desc_out desc = {ring,  ring_size, start, {iova_offset, iova_width, (uint8_t *)1},
                           words, word,      table, table_len,
                           {key_offset, key_width, table ? (uint8_t *)1 : NULL}};
    if (bad_index) *bad_index = RL_NO_INDEX;
    if (!ring || !ring_size || start >= ring_size) return -RL_EINVAL;
    if (table && !value_width(key_width)) return -RL_EINVAL;
    return locked_move(h, src, dst, owner, limit, 0, &NO_FIELD, &desc, &NO_BACK, bad_index);
}

int64_t rl_deque_move_from_ring(rl_heap *h, uint64_t src, uint64_t dst, uint32_t owner,
                                uint64_t limit, const uint64_t *ring, uint64_t ring_size,
                                uint64_t start, uint64_t word, uint64_t check_mask,
                                uint64_t check_want, uint64_t shift, uint64_t value_mask,
                                uint64_t value_max, uint64_t field_offset,
                                uint64_t field_width, uint64_t *bad_index) {
    const desc_in back = {ring,       ring_size, start,     word,
                          check_mask, check_want, shift,    value_mask,
                          value_max,  {field_offset, field_width, (uint8_t *)1}};
    if (bad_index) *bad_index = RL_NO_INDEX;
    if (!ring || !ring_size || start >= ring_size || word > 1 || shift > 63) return -RL_EINVAL;
    if (!value_width(field_width)) return -RL_EINVAL;
    return locked_move(h, src, dst, owner, limit, 0, &NO_FIELD, &NO_DESC, &back, bad_index);
}
