/* handle.c: drop tokens for Python RRef handles and handle-free batches (see handle.h). */
#include "handle.h"

#include <stdlib.h>
#include <string.h>

struct rl_handle {
    rl_heap *heap;
    uint64_t id; /* 0 once disarmed */
};

rl_handle *rl_handle_new(rl_heap *h, uint64_t id) {
    rl_handle *t = malloc(sizeof *t);
    if (!t) return NULL;
    t->heap = h;
    t->id = id;
    rl_heap_retain(h);
    return t;
}

void rl_handle_disarm(rl_handle *t) { t->id = 0; }

void rl_handle_drop(rl_handle *t) {
    if (!t) return;
    if (t->id) rl_free_if_live(t->heap, t->id);
    rl_heap_release(t->heap);
    free(t);
}

struct rl_batch {
    rl_heap *heap;
    uint64_t n;   /* 0 once disarmed */
    uint64_t cap; /* room in ids[] */
    uint32_t owner;
    uint64_t ids[];
};

rl_batch *rl_batch_reserve(rl_heap *h, uint64_t cap, uint32_t owner) {
    if (cap > (UINT64_MAX - sizeof(rl_batch)) / sizeof(uint64_t)) return NULL;
    rl_batch *b = malloc(sizeof *b + cap * sizeof(uint64_t));
    if (!b) return NULL;
    b->heap = h;
    b->n = 0;
    b->cap = cap;
    b->owner = owner;
    rl_heap_retain(h);
    return b;
}

rl_batch *rl_batch_new(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t owner) {
    if (n && !ids) return NULL;
    rl_batch *b = rl_batch_reserve(h, n, owner);
    if (!b) return NULL;
    b->n = n;
    if (n) memcpy(b->ids, ids, n * sizeof(uint64_t));
    return b;
}

int rl_batch_take(rl_batch *b, uint64_t deque, uint64_t limit) {
    if (b->n) return RL_EINVAL; /* only into an empty token */
    return rl_deque_take(b->heap, deque, b->owner, limit < b->cap ? limit : b->cap, b->ids,
                         &b->n);
}

int rl_batch_take_iovas(rl_batch *b, uint64_t deque, uint64_t limit, uint64_t offset,
                        uint64_t width, uint64_t *iovas_out) {
    if (b->n) return RL_EINVAL;
    return rl_deque_take_iovas(b->heap, deque, b->owner, limit < b->cap ? limit : b->cap,
                               b->ids, &b->n, offset, width, iovas_out);
}

int rl_batch_put_field(rl_batch *b, uint64_t deque, uint32_t owner, uint64_t offset,
                       uint64_t width, const void *src, uint64_t *bad_index) {
    int rc = rl_scatter(b->heap, b->ids, b->n, offset, width, owner, src, bad_index);
    return rc ? rc : rl_batch_put(b, deque, owner, bad_index);
}

int rl_batch_put(rl_batch *b, uint64_t deque, uint32_t owner, uint64_t *bad_index) {
    int rc = rl_deque_put(b->heap, deque, owner, b->ids, b->n, bad_index);
    if (rc == RL_OK) b->n = 0; /* the deque holds them now */
    return rc;
}

uint64_t rl_batch_len(rl_batch *b) { return b->n; }

const uint64_t *rl_batch_ids(rl_batch *b) { return b->ids; }

void rl_batch_drop(rl_batch *b) {
    if (!b) return;
    if (b->n) rl_free_owned_bulk(b->heap, b->ids, b->n, b->owner);
    rl_heap_release(b->heap);
    free(b);
}

struct rl_view_pin {
    rl_heap *heap;
    uint32_t slot;
};

rl_view_pin *rl_view_pin_new(rl_heap *h, uint64_t id) {
    rl_view_pin *p = malloc(sizeof *p);
    if (!p) return NULL;
    if (rl_pin(h, id, &p->slot)) {
        free(p);
        return NULL;
    }
    p->heap = h;
    rl_heap_retain(h);
    return p;
}

void rl_view_pin_drop(rl_view_pin *p) {
    if (!p) return;
    rl_unpin(p->heap, p->slot);
    rl_heap_release(p->heap);
    free(p);
}

/* ---- construction an asynchronous exception cannot leak (handle.h) ---- */

struct pending { rl_heap *h; uint64_t id; };
static _Thread_local struct pending pending_handle, pending_pin;

/* Take the thread's recorded arguments (once: a second alloc without a prepare gets
 * NULL); returns the heap, NULL when nothing was prepared. */
static rl_heap *take_pending(struct pending *p, uint64_t *id) {
    rl_heap *h = p->h;
    p->h = NULL;
    *id = p->id;
    return h;
}

void rl_handle_prepare(rl_heap *h, uint64_t id) {
    pending_handle = (struct pending){h, id};
}

void *rl_handle_alloc_prepared(size_t size) {
    (void)size;
    uint64_t id;
    rl_heap *h = take_pending(&pending_handle, &id);
    return h ? rl_handle_new(h, id) : NULL;
}

void rl_handle_free(void *t) { rl_handle_drop(t); }

void rl_handle_disarm_any(void *t) { rl_handle_disarm(t); }

void rl_view_pin_prepare(rl_heap *h, uint64_t id) {
    pending_pin = (struct pending){h, id};
}

void *rl_view_pin_alloc_prepared(size_t size) {
    (void)size;
    uint64_t id;
    rl_heap *h = take_pending(&pending_pin, &id);
    return h ? rl_view_pin_new(h, id) : NULL;
}

void rl_view_pin_free(void *p) { rl_view_pin_drop(p); }

struct pending_batch { rl_heap *h; const uint64_t *ids; uint64_t n; uint32_t owner; };
static _Thread_local struct pending_batch pending_batch;

void rl_batch_prepare(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t owner) {
    pending_batch = (struct pending_batch){h, ids, n, owner};
}

void *rl_batch_alloc_prepared(size_t size) {
    (void)size;
    struct pending_batch p = pending_batch;
    pending_batch.h = NULL; /* once, as take_pending */
    if (!p.h) return NULL;
    return p.ids ? rl_batch_new(p.h, p.ids, p.n, p.owner) : rl_batch_reserve(p.h, p.n, p.owner);
}

void rl_batch_free(void *b) { rl_batch_drop(b); }
