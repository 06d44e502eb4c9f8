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
    uint64_t n; /* 0 once disarmed */
    uint32_t owner;
    uint64_t ids[];
};

rl_batch *rl_batch_new(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t owner) {
    if ((n && !ids) || n > (UINT64_MAX - sizeof(rl_batch)) / sizeof(uint64_t)) return NULL;
    rl_batch *b = malloc(sizeof *b + n * sizeof(uint64_t));
    if (!b) return NULL;
    b->heap = h;
    b->n = n;
    b->owner = owner;
    if (n) memcpy(b->ids, ids, n * sizeof(uint64_t));
    rl_heap_retain(h);
    return b;
}

const uint64_t *rl_batch_ids(rl_batch *b) { return b->ids; }

void rl_batch_disarm(rl_batch *b) { b->n = 0; }

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
