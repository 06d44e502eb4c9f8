/* RedLeaf Lab shared heap: registry, ownership and containers.
 *
 * Purpose: implements heap.h's mutating operations. The arena's block allocator is
 * arena.c, the read-only queries are query.c, whole-deque moves deque.c; the private
 * layout they share is heap_internal.h. Registry slots are recycled FIFO, and only once
 * SLOT_QUARANTINE of them are waiting, so stale ids stay diagnosable (rl_free_reason)
 * for a while.
 *
 * Interface: see heap.h. Static helpers assume the mutex is held; only the exported rl_*
 * functions lock (mostly through the LOCKED macro).
 *
 * Locking/ownership: one pthread mutex per heap guards every mutable field. Container
 * frees walk children iteratively through the registry (no recursion, no allocation), and
 * free a slot value only if it is a live id whose parent is that container, so garbage in
 * a slot array can neither overflow the C stack nor free an unrelated object.
 */
#define _GNU_SOURCE
#include "heap_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- registry slots, ids, owners ---- */

static rl_slot *take_slot(rl_heap *h) {
    int fresh_left = h->slots_used < h->max_objects;
    if (h->free_head == NO_SLOT || (fresh_left && h->free_queued < SLOT_QUARANTINE))
        return fresh_left ? &h->slots[h->slots_used++] : NULL;
    rl_slot *s = &h->slots[h->free_head];
    h->free_head = s->next_free;
    if (h->free_head == NO_SLOT) h->free_tail = NO_SLOT;
    h->free_queued--;
    return s;
}

static void queue_slot(rl_heap *h, rl_slot *s) {
    uint32_t index = (uint32_t)(s - h->slots);
    s->next_free = NO_SLOT;
    if (h->free_tail == NO_SLOT) h->free_head = index;
    else h->slots[h->free_tail].next_free = index;
    h->free_tail = index;
    h->free_queued++;
}

static int owner_valid(uint32_t owner) {
    return owner != RL_OWNER_NESTED && owner < RL_MAX_OWNERS;
}

static int is_dead(const rl_heap *h, uint32_t owner) {
    return (h->dead[owner >> 3] >> (owner & 7)) & 1;
}

static int ensure_owner_page(rl_heap *h, uint32_t owner) {
    owner_count **page = &h->owner_pages[owner >> OWNER_PAGE_BITS];
    if (!*page) *page = calloc(1u << OWNER_PAGE_BITS, sizeof(owner_count));
    return *page ? RL_OK : RL_ENOMEM;
}

/* `objects` objects of `size` bytes in all join (objects > 0) or leave the owner's count.
 * The page exists: every path that gives an object an owner ensures it first. */
static void count_owner(rl_heap *h, uint32_t owner, int64_t objects, uint64_t size) {
    owner_count *c = owner_counter(h, owner);
    c->objects += (uint64_t)objects; /* unsigned wrap-around adds negative deltas */
    c->bytes += objects > 0 ? size : (uint64_t)0 - size;
}

static void set_owner(rl_heap *h, rl_slot *s, uint32_t owner, uint64_t parent) {
    count_owner(h, s->owner, -1, s->size);
    count_owner(h, owner, 1, s->size);
    s->owner = owner;
    s->parent = parent;
}

/* A destination owner must be a live domain (or root) with a counter page. */
static int check_destination(rl_heap *h, uint32_t to) {
    if (!owner_valid(to)) return RL_EINVAL;
    if (is_dead(h, to)) return RL_EDEAD;
    return ensure_owner_page(h, to);
}

/* ---- freeing ---- */

/* The object is gone from the registry (its id is stale); a pinned one keeps its block
 * and slot out of circulation until its last view pin drops (rl_unpin), so a view that
 * outlived the object (a crashed domain's thread still running) never writes into memory
 * handed to someone else. */
static void release(rl_heap *h, rl_slot *s, uint32_t reason) {
    count_owner(h, s->owner, -1, s->size);
    if (s->flags & F_PENDING) h->stats.pending_objects--;
    h->stats.live_objects--;
    h->stats.live_bytes -= s->size;
    h->stats.total_frees++;
    s->generation++;
    s->flags = 0;
    s->borrows = 0;
    s->parent = 0;
    s->free_reason = reason;
    if (s->pins) {
        s->flags = F_HELD;
        h->stats.held_objects++;
        return;
    }
    rl_push_block(h, s->offset, s->size);
    queue_slot(h, s);
}

/* Frees root and, depth first, every slot value that is a live id nested under the
 * container being scanned. The scan cursor lives in the slot and the way back up is the
 * child's parent field, so this needs neither recursion nor allocation. Objects freed
 * with reason RL_RECLAIMED (and their children) count as reclaimed. */
static void free_tree(rl_heap *h, rl_slot *root, uint32_t reason, uint64_t *objects,
                      uint64_t *bytes) {
    uint64_t freed = 0, freed_bytes = 0;
    rl_slot *cur = root;
    cur->scan = cur->child_offset;
    for (;;) {
        if ((cur->flags & RL_FLAG_CONTAINER) && cur->scan + 8 <= cur->size) {
            uint64_t value;
            memcpy(&value, h->base + cur->offset + cur->scan, sizeof value);
            cur->scan += 8;
            rl_slot *child = resolve(h, value);
            if (child && child->owner == RL_OWNER_NESTED && child->parent == slot_id(h, cur)) {
                child->scan = child->child_offset;
                cur = child;
            }
            continue;
        }
        rl_slot *parent = cur == root ? NULL : resolve(h, cur->parent);
        freed++;
        freed_bytes += cur->size;
        release(h, cur, cur == root ? reason : RL_FREED_WITH_CONTAINER);
        if (!parent) break;
        cur = parent;
    }
    if (reason == RL_RECLAIMED) {
        h->stats.reclaimed_objects += freed;
        h->stats.reclaimed_bytes += freed_bytes;
    }
    if (objects) *objects += freed;
    if (bytes) *bytes += freed_bytes;
}

/* Marks a borrowed object to be freed at its last unborrow. */
static void defer_free(rl_heap *h, rl_slot *s, uint32_t flag) {
    if (!(s->flags & F_PENDING)) h->stats.pending_objects++;
    s->flags |= flag;
}

/* ---- lifetime ---- */

rl_heap *rl_heap_create(uint64_t arena_bytes, uint32_t max_objects, uint64_t iova_base) {
    arena_bytes = rl_round_up(arena_bytes ? arena_bytes : RL_DEFAULT_ARENA, PAGE);
    if (max_objects == 0 || max_objects == NO_SLOT || iova_base % PAGE) return NULL;
    if (iova_base + arena_bytes < iova_base) return NULL;
    rl_heap *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    h->table_bytes = rl_round_up((uint64_t)max_objects * sizeof(rl_slot), PAGE);
    void *arena = mmap(NULL, arena_bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
    void *table = mmap(NULL, h->table_bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (arena == MAP_FAILED || table == MAP_FAILED || ensure_owner_page(h, RL_OWNER_NESTED) ||
        pthread_mutex_init(&h->lock, NULL)) {
        if (arena != MAP_FAILED) munmap(arena, arena_bytes);
        if (table != MAP_FAILED) munmap(table, h->table_bytes);
        free(h->owner_pages[0]);
        free(h);
        return NULL;
    }
    h->base = arena;
    h->slots = table;
    h->arena_bytes = h->stats.arena_bytes = arena_bytes;
    h->iova_base = iova_base;
    h->max_objects = max_objects;
    h->stats.max_objects = max_objects;
    h->free_head = h->free_tail = NO_SLOT;
    atomic_init(&h->refs, 1);
    return h;
}

void rl_heap_retain(rl_heap *h) { atomic_fetch_add(&h->refs, 1); }

/* Drops one reference; the last one unmaps everything. The creator's reference is
 * dropped by rl_heap_destroy, the others by handle tokens (handle.c), so an arena
 * outlives every Python handle into it whatever order finalizers run in. */
void rl_heap_release(rl_heap *h) {
    if (!h || atomic_fetch_sub(&h->refs, 1) != 1) return;
    munmap(h->base, h->arena_bytes);
    munmap(h->slots, h->table_bytes);
    for (uint32_t i = 0; i < NUM_CLASSES; i++) free(h->free_blocks[i].items);
    for (uint32_t i = 0; i < OWNER_PAGES; i++) free(h->owner_pages[i]);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

void rl_heap_destroy(rl_heap *h) { rl_heap_release(h); }

void *rl_heap_base(rl_heap *h) { return h->base; }
uint64_t rl_heap_size(rl_heap *h) { return h->arena_bytes; }
uint64_t rl_heap_iova_base(rl_heap *h) { return h->iova_base; }

/* ---- allocation and free ---- */

static int alloc_locked(rl_heap *h, uint64_t size, uint32_t type_id, uint32_t owner,
                        uint32_t flags, uint32_t child_offset, uint64_t *id_out, void **ptr_out) {
    uint64_t rounded;
    uint32_t cls;
    if (!owner_valid(owner) || rl_size_class(size, &rounded, &cls)) return RL_EINVAL;
    if (is_dead(h, owner)) return RL_EDEAD;
    if (h->slots_used == h->max_objects && h->free_head == NO_SLOT) return RL_EFULL;
    if (!rl_block_available(h, rounded, cls) || ensure_owner_page(h, owner)) return RL_ENOMEM;
    rl_slot *s = take_slot(h);
    *s = (rl_slot){.size = size, .offset = rl_take_block(h, rounded, cls), .type_id = type_id,
                   .owner = owner, .generation = s->generation, .flags = F_LIVE | flags,
                   .child_offset = child_offset};
    count_owner(h, owner, 1, size);
    h->stats.live_objects++;
    h->stats.live_bytes += size;
    h->stats.total_allocs++;
    if (id_out) *id_out = slot_id(h, s);
    if (ptr_out) *ptr_out = h->base + s->offset;
    return RL_OK;
}

int rl_alloc(rl_heap *h, uint64_t size, uint32_t type_id, uint32_t owner, uint32_t flags,
             uint64_t *id_out, void **ptr_out) {
    if (flags & ~RL_FLAG_CONTAINER) return RL_EINVAL;
    LOCKED(h, alloc_locked(h, size, type_id, owner, flags, 0, id_out, ptr_out));
}

int rl_alloc_container(rl_heap *h, uint64_t size, uint32_t type_id, uint32_t owner,
                       uint32_t child_offset, uint64_t *id_out, void **ptr_out) {
    if (child_offset % 8 || child_offset > size) return RL_EINVAL;
    LOCKED(h, alloc_locked(h, size, type_id, owner, RL_FLAG_CONTAINER, child_offset, id_out,
                           ptr_out));
}

int rl_free_locked(rl_heap *h, uint64_t id, int quiet) {
    rl_slot *s = resolve(h, id);
    if (!s) return quiet ? RL_OK : RL_ESTALE;
    if (s->owner == RL_OWNER_NESTED) return quiet ? RL_OK : RL_ENESTED;
    if (s->borrows && !quiet) return RL_EBORROWED;
    if (s->borrows) defer_free(h, s, RL_FLAG_FREE_PENDING);
    else free_tree(h, s, RL_FREED_BY_OWNER, NULL, NULL);
    return RL_OK;
}

int rl_free(rl_heap *h, uint64_t id) { LOCKED(h, rl_free_locked(h, id, 0)); }
int rl_free_if_live(rl_heap *h, uint64_t id) { LOCKED(h, rl_free_locked(h, id, 1)); }

/* ---- batches: validate everything, then apply ---- */

enum batch_kind { BATCH_MOVE, BATCH_ATTACH, BATCH_DETACH };

/* Checks one id of a batch. `owner` is the source domain (move, attach) and `container`
 * the container's id (attach, detach). */
static int check_item(rl_heap *h, enum batch_kind kind, rl_slot *s, uint32_t owner,
                      uint64_t container) {
    if (!s) return RL_ESTALE;
    if (s->flags & F_MARK) return RL_EINVAL; /* the same id twice in one batch */
    if (kind == BATCH_DETACH)
        return s->owner == RL_OWNER_NESTED && s->parent == container ? RL_OK : RL_ENESTED;
    if (kind == BATCH_ATTACH && slot_id(h, s) == container) return RL_EINVAL;
    if (s->owner == RL_OWNER_NESTED) return RL_ENESTED;
    if (s->owner != owner) return RL_ENOTOWNER;
    return s->borrows ? RL_EBORROWED : RL_OK;
}

static void clear_marks(rl_heap *h, const uint64_t *ids, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        rl_slot *s = resolve(h, ids[i]);
        if (s) s->flags &= ~F_MARK;
    }
}

/* Two passes: check (and mark, to catch an id given twice) every item, then clear the
 * marks and apply. Every item leaves the same owner (`owner`, or NESTED for a detach) for
 * the same new one, so the per-owner counters change once per batch. */
static int run_batch(rl_heap *h, enum batch_kind kind, const uint64_t *ids, uint64_t n,
                     uint32_t owner, uint64_t container, uint32_t new_owner, uint64_t new_parent,
                     uint64_t *bad_index) {
    for (uint64_t i = 0; i < n; i++) {
        rl_slot *s = resolve(h, ids[i]);
        int rc = check_item(h, kind, s, owner, container);
        if (rc) {
            clear_marks(h, ids, i);
            if (bad_index) *bad_index = i;
            return rc;
        }
        s->flags |= F_MARK;
    }
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        rl_slot *s = resolve(h, ids[i]);
        s->flags &= ~F_MARK;
        s->owner = new_owner;
        s->parent = new_parent;
        bytes += s->size;
    }
    if (n) {
        uint32_t old_owner = kind == BATCH_DETACH ? RL_OWNER_NESTED : owner;
        count_owner(h, old_owner, -(int64_t)n, bytes);
        count_owner(h, new_owner, (int64_t)n, bytes);
    }
    return RL_OK;
}

static int move_locked(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t from, uint32_t to,
                       uint64_t *bad_index) {
    int rc = check_destination(h, to);
    return rc ? rc : run_batch(h, BATCH_MOVE, ids, n, from, 0, to, 0, bad_index);
}

/* The container must be a live, top-level, not-pending container owned by `owner`. A
 * top-level container has no ancestors, so the only possible cycle is attaching it to
 * itself, which check_item refuses. */
static int check_container(rl_heap *h, uint64_t id, uint32_t owner) {
    rl_slot *c = resolve(h, id);
    if (!c || (c->flags & F_PENDING)) return RL_ESTALE;
    if (!(c->flags & RL_FLAG_CONTAINER)) return RL_EINVAL;
    if (c->owner == RL_OWNER_NESTED) return RL_ENESTED;
    return c->owner == owner ? RL_OK : RL_ENOTOWNER;
}

int rl_attach_locked(rl_heap *h, uint64_t container, const uint64_t *ids, uint64_t n,
                     uint32_t from, uint64_t *bad_index) {
    int rc = check_destination(h, from);
    if (!rc) rc = check_container(h, container, from);
    if (rc) return rc;
    return run_batch(h, BATCH_ATTACH, ids, n, from, container, RL_OWNER_NESTED, container,
                     bad_index);
}

int rl_detach_locked(rl_heap *h, uint64_t container, const uint64_t *ids, uint64_t n,
                     uint32_t to, uint64_t *bad_index) {
    int rc = check_destination(h, to);
    if (!rc) rc = check_container(h, container, to);
    return rc ? rc : run_batch(h, BATCH_DETACH, ids, n, 0, container, to, 0, bad_index);
}

static int batch_args_ok(const uint64_t *ids, uint64_t n, uint64_t *bad_index) {
    if (bad_index) *bad_index = RL_NO_INDEX;
    return !n || ids;
}

int rl_move(rl_heap *h, uint64_t id, uint32_t from, uint32_t to) {
    LOCKED(h, move_locked(h, &id, 1, from, to, NULL));
}

int rl_move_pair(rl_heap *h, uint64_t a, uint64_t b, uint32_t from, uint32_t to) {
    uint64_t ids[2] = {a, b};
    LOCKED(h, move_locked(h, ids, 2, from, to, NULL));
}

int rl_move_bulk(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t from, uint32_t to,
                 uint64_t *bad_index) {
    if (!batch_args_ok(ids, n, bad_index)) return RL_EINVAL;
    LOCKED(h, move_locked(h, ids, n, from, to, bad_index));
}

int rl_attach(rl_heap *h, uint64_t container, uint64_t child, uint32_t from) {
    LOCKED(h, rl_attach_locked(h, container, &child, 1, from, NULL));
}

int rl_detach(rl_heap *h, uint64_t container, uint64_t child, uint32_t to) {
    LOCKED(h, rl_detach_locked(h, container, &child, 1, to, NULL));
}

int rl_attach_bulk(rl_heap *h, uint64_t container, const uint64_t *ids, uint64_t n,
                   uint32_t from, uint64_t *bad_index) {
    if (!batch_args_ok(ids, n, bad_index)) return RL_EINVAL;
    LOCKED(h, rl_attach_locked(h, container, ids, n, from, bad_index));
}

int rl_detach_bulk(rl_heap *h, uint64_t container, const uint64_t *ids, uint64_t n,
                   uint32_t to, uint64_t *bad_index) {
    if (!batch_args_ok(ids, n, bad_index)) return RL_EINVAL;
    LOCKED(h, rl_detach_locked(h, container, ids, n, to, bad_index));
}

/* ---- rescue: a shadow takes back what a dead domain held for one of its calls ---- */

/* The top-level owner of s: its own, or that of the outermost container it is nested in
 * (NESTED if the chain is broken, which cannot happen for a live nested object). */
static uint32_t holder_of(rl_heap *h, rl_slot *s) {
    for (uint32_t depth = 0; s && s->owner == RL_OWNER_NESTED; depth++) {
        if (depth > h->slots_used) return RL_OWNER_NESTED; /* a cycle: refused at attach */
        s = resolve(h, s->parent);
    }
    return s ? s->owner : RL_OWNER_NESTED;
}

static int rescue_locked(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t dead,
                         uint32_t to, uint32_t type_id, uint64_t *rescued_out) {
    uint64_t rescued = 0;
    if (!owner_valid(dead) || !is_dead(h, dead)) return RL_EINVAL;
    int rc = check_destination(h, to);
    if (rc) return rc;
    for (uint64_t i = 0; i < n; i++) {
        rl_slot *s = resolve(h, ids[i]);
        if (!s || (s->flags & F_PENDING) || holder_of(h, s) != dead) continue;
        if (type_id && s->type_id != type_id) continue;
        set_owner(h, s, to, 0); /* nested: its container's slot keeps a stale id, skipped */
        rescued++;
    }
    if (rescued_out) *rescued_out = rescued;
    return RL_OK;
}

int rl_rescue(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t dead, uint32_t to,
              uint32_t type_id, uint64_t *rescued_out) {
    if (n && !ids) return RL_EINVAL;
    LOCKED(h, rescue_locked(h, ids, n, dead, to, type_id, rescued_out));
}

/* ---- view pins ---- */

int rl_pin(rl_heap *h, uint64_t id, uint32_t *slot_out) {
    pthread_mutex_lock(&h->lock);
    rl_slot *s = resolve(h, id);
    int rc = !s ? RL_ESTALE : s->pins == UINT32_MAX ? RL_EINVAL : RL_OK;
    if (rc == RL_OK) {
        s->pins++;
        *slot_out = (uint32_t)(s - h->slots);
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void rl_unpin(rl_heap *h, uint32_t slot) {
    pthread_mutex_lock(&h->lock);
    rl_slot *s = slot < h->slots_used ? &h->slots[slot] : NULL;
    if (s && s->pins && --s->pins == 0 && (s->flags & F_HELD)) {
        s->flags = 0;
        h->stats.held_objects--;
        rl_push_block(h, s->offset, s->size);
        queue_slot(h, s);
    }
    pthread_mutex_unlock(&h->lock);
}

/* ---- borrows ---- */

static int borrow_locked(rl_heap *h, uint64_t id, uint32_t owner) {
    rl_slot *s = resolve(h, id);
    if (!s || (s->flags & RL_FLAG_FREE_PENDING)) return RL_ESTALE;
    if (s->owner == RL_OWNER_NESTED) return RL_ENESTED;
    if (s->owner != owner) return RL_ENOTOWNER;
    if ((s->flags & RL_FLAG_ORPHANED) || is_dead(h, owner)) return RL_EDEAD;
    if (s->borrows == UINT32_MAX) return RL_EINVAL;
    s->borrows++;
    return RL_OK;
}

static int unborrow_locked(rl_heap *h, uint64_t id) {
    rl_slot *s = resolve(h, id);
    if (!s) return RL_ESTALE;
    if (s->borrows == 0) return RL_EINVAL;
    if (--s->borrows) return RL_OK;
    if ((s->flags & RL_FLAG_ORPHANED) || is_dead(h, s->owner))
        free_tree(h, s, RL_RECLAIMED, NULL, NULL);
    else if (s->flags & RL_FLAG_FREE_PENDING)
        free_tree(h, s, RL_FREED_BY_OWNER, NULL, NULL);
    return RL_OK;
}

int rl_borrow(rl_heap *h, uint64_t id, uint32_t owner) { LOCKED(h, borrow_locked(h, id, owner)); }
int rl_unborrow(rl_heap *h, uint64_t id) { LOCKED(h, unborrow_locked(h, id)); }

/* ---- domains ---- */

static int kill_locked(rl_heap *h, uint32_t owner) {
    if (!owner_valid(owner) || owner == RL_OWNER_ROOT) return RL_EINVAL;
    h->dead[owner >> 3] |= (uint8_t)(1u << (owner & 7));
    return RL_OK;
}

int rl_kill_domain(rl_heap *h, uint32_t owner) { LOCKED(h, kill_locked(h, owner)); }

int rl_domain_dead(rl_heap *h, uint32_t owner) {
    LOCKED(h, owner < RL_MAX_OWNERS ? is_dead(h, owner) : 0);
}

static int reclaim_locked(rl_heap *h, uint32_t owner, uint64_t *objects_out,
                          uint64_t *bytes_out, uint64_t *deferred_out) {
    uint64_t objects = 0, bytes = 0, deferred = 0;
    if (!owner_valid(owner)) return RL_EINVAL;
    for (uint32_t i = 0; i < h->slots_used; i++) {
        rl_slot *s = &h->slots[i];
        if (!(s->flags & F_LIVE) || s->owner != owner) continue;
        if (s->borrows) {
            defer_free(h, s, RL_FLAG_ORPHANED);
            deferred++;
        } else {
            free_tree(h, s, RL_RECLAIMED, &objects, &bytes);
        }
    }
    if (objects_out) *objects_out = objects;
    if (bytes_out) *bytes_out = bytes;
    if (deferred_out) *deferred_out = deferred;
    return RL_OK;
}

int rl_reclaim(rl_heap *h, uint32_t owner, uint64_t *objects_out, uint64_t *bytes_out,
               uint64_t *deferred_out) {
    LOCKED(h, reclaim_locked(h, owner, objects_out, bytes_out, deferred_out));
}
