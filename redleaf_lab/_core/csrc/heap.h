/* RedLeaf Lab shared heap: one contiguous arena plus a registry of every allocation.
 *
 * Purpose: the exchangeable heap that domains hand objects across. Each allocation
 * has a registry entry (owner domain, borrow count, generation, parent container,
 * type id), and is named by a 64-bit id = (generation << 32) | (slot index + 1), so a
 * freed or reused slot makes old ids detectably stale. Device models DMA into the
 * arena, so every object also has an IOVA = iova_base + (ptr - base).
 *
 * Interface: functions return an RL_* error code (0 = RL_OK) unless documented
 * otherwise; results go through out-pointers. Owner 0 (RL_OWNER_NESTED) marks an
 * object living inside a container, owner 1 is the root/kernel, owners >= 2 are
 * domains; domain ids are never reused and must be < RL_MAX_OWNERS.
 *
 * Locking/ownership: every public function that reads or changes the registry takes
 * the heap's single mutex, so Python threads (cffi releases the GIL) and C device
 * threads may call concurrently. rl_heap_base/size/iova_base return values fixed at
 * creation and take no lock. The caller owns the rl_heap and must not call
 * rl_heap_destroy while other threads still use it. Pointers returned by rl_ptr or
 * rl_alloc stay valid memory for the heap's lifetime, but the object behind them is
 * only the caller's while its id is live.
 */
#ifndef REDLEAF_HEAP_H
#define REDLEAF_HEAP_H

#include <stdint.h>

#define RL_OK 0
#define RL_ESTALE 1     /* id invalid, freed, or generation mismatch */
#define RL_ENOTOWNER 2  /* the given domain does not own the object */
#define RL_EBORROWED 3  /* the object is borrowed */
#define RL_ENOMEM 4     /* arena (or host memory) exhausted */
#define RL_EDEAD 5      /* the target domain is dead */
#define RL_EINVAL 6     /* bad argument */
#define RL_ENESTED 7    /* the object is inside a container / not a child of it */
#define RL_EFULL 8      /* registry table full */

#define RL_OWNER_NESTED 0u
#define RL_OWNER_ROOT 1u
#define RL_MAX_OWNERS (1u << 22)

#define RL_FLAG_CONTAINER 1u    /* holds child ids from child_offset to the end */
#define RL_FLAG_ORPHANED 2u     /* owner reclaimed while borrowed; freed at last unborrow */
#define RL_FLAG_FREE_PENDING 4u /* freed while borrowed; freed at last unborrow */

#define RL_FREED_BY_OWNER 1
#define RL_RECLAIMED 2
#define RL_FREED_WITH_CONTAINER 3

#define RL_MAX_ALLOC (4ull * 1024 * 1024)
#define RL_DEFAULT_ARENA (1ull << 30)
#define RL_NO_INDEX UINT64_MAX /* bad_index value for errors not tied to one id */

typedef struct rl_heap rl_heap;

typedef struct {
    uint64_t id;
    uint64_t size; /* requested size in bytes */
    uint32_t type_id;
    uint32_t owner;
    uint32_t borrows;
    uint32_t generation;
    uint32_t flags; /* RL_FLAG_* */
    uint32_t child_offset;
    uint64_t parent; /* container id, or 0 */
    uint64_t iova;
} rl_entry_info;

typedef struct {
    uint64_t live_objects;
    uint64_t live_bytes; /* sum of requested sizes */
    uint64_t total_allocs;
    uint64_t total_frees;
    uint64_t reclaimed_objects;
    uint64_t reclaimed_bytes;
    uint64_t arena_bytes;
    uint64_t arena_used; /* bump pointer high-water mark */
    uint64_t free_list_bytes;
    uint64_t pending_objects; /* borrowed objects waiting for their last unborrow */
    uint64_t max_objects;
    uint64_t held_objects; /* freed, but memory kept until their last view pin drops */
} rl_heap_stats;

/* Lifetime. arena_bytes 0 means RL_DEFAULT_ARENA; iova_base must be 4096-aligned. */
rl_heap *rl_heap_create(uint64_t arena_bytes, uint32_t max_objects, uint64_t iova_base);
void rl_heap_destroy(rl_heap *h);
/* Reference counting of the heap itself (rl_heap_destroy drops the creator's). */
void rl_heap_retain(rl_heap *h);
void rl_heap_release(rl_heap *h);
void *rl_heap_base(rl_heap *h);
uint64_t rl_heap_size(rl_heap *h);
uint64_t rl_heap_iova_base(rl_heap *h);

/* Allocation. Memory is zeroed. flags may only be 0 or RL_FLAG_CONTAINER (child_offset 0). */
int rl_alloc(rl_heap *h, uint64_t size, uint32_t type_id, uint32_t owner, uint32_t flags,
             uint64_t *id_out, void **ptr_out);
int rl_alloc_container(rl_heap *h, uint64_t size, uint32_t type_id, uint32_t owner,
                       uint32_t child_offset, uint64_t *id_out, void **ptr_out);
int rl_free(rl_heap *h, uint64_t id);
int rl_free_if_live(rl_heap *h, uint64_t id);

/* Ownership. Bulk forms validate every id first and change nothing on error. */
int rl_move(rl_heap *h, uint64_t id, uint32_t from, uint32_t to);
/* Two objects at once, all or nothing (a proxy moving two deques, or returning them). */
int rl_move_pair(rl_heap *h, uint64_t a, uint64_t b, uint32_t from, uint32_t to);
int rl_move_bulk(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t from, uint32_t to,
                 uint64_t *bad_index);
int rl_borrow(rl_heap *h, uint64_t id, uint32_t owner);
int rl_unborrow(rl_heap *h, uint64_t id);

/* Containers. */
int rl_attach(rl_heap *h, uint64_t container, uint64_t child, uint32_t from);
int rl_detach(rl_heap *h, uint64_t container, uint64_t child, uint32_t to);
int rl_attach_bulk(rl_heap *h, uint64_t container, const uint64_t *ids, uint64_t n,
                   uint32_t from, uint64_t *bad_index);
int rl_detach_bulk(rl_heap *h, uint64_t container, const uint64_t *ids, uint64_t n,
                   uint32_t to, uint64_t *bad_index);

/* Batches of fields (bulk.c): one call reads, writes or addresses bytes
 * [offset, offset + width) of each of n objects. Every id is checked first (live and not
 * pending, owned by `owner`, which must be a live domain or root; the range inside the
 * object; rl_scatter: not borrowed); on any error nothing is copied or written and
 * *bad_index names the first bad id (RL_NO_INDEX if the error is not about one id).
 * `out`/`src` hold n * width bytes, item i at i * width. rl_iova_bulk writes each range's
 * IOVA (a certified DMA target of `width` bytes). */
int rl_gather(rl_heap *h, const uint64_t *ids, uint64_t n, uint64_t offset, uint64_t width,
              uint32_t owner, void *out, uint64_t *bad_index);
int rl_scatter(rl_heap *h, const uint64_t *ids, uint64_t n, uint64_t offset, uint64_t width,
               uint32_t owner, const void *src, uint64_t *bad_index);
int rl_iova_bulk(rl_heap *h, const uint64_t *ids, uint64_t n, uint64_t offset, uint64_t width,
                 uint32_t owner, uint64_t *out, uint64_t *bad_index);
/* Frees each id that is live, top level and owned by `owner` (deferred if borrowed) and
 * skips every other one; returns how many it freed or deferred. Never fails. */
uint64_t rl_free_owned_bulk(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t owner);

/* Domains. */
int rl_kill_domain(rl_heap *h, uint32_t owner);
int rl_domain_dead(rl_heap *h, uint32_t owner); /* 1 dead, 0 alive */
int rl_reclaim(rl_heap *h, uint32_t owner, uint64_t *objects_out, uint64_t *bytes_out,
               uint64_t *deferred_out);

/* Queries and addressing. */
/* Deques (deque.c): rl_deque_take moves up to `limit` children from the front of the
 * deque out to `owner` (ids in ids_out, count in *n_out); rl_deque_put appends n objects
 * of `owner` (RL_EFULL if they do not fit). One mutex hold each, all or nothing. */
int rl_deque_take(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t limit,
                  uint64_t *ids_out, uint64_t *n_out);
int rl_deque_put(rl_heap *h, uint64_t deque, uint32_t owner, const uint64_t *ids, uint64_t n,
                 uint64_t *bad_index);
/* rl_deque_take and the IOVA of one field (offset, width) of each taken object, in
 * iovas_out; RL_EINVAL and no change if the field does not fit an object. */
int rl_deque_take_iovas(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t limit,
                        uint64_t *ids_out, uint64_t *n_out, uint64_t offset, uint64_t width,
                        uint64_t *iovas_out);
/* Read (write = 0) or write one field of every object in the deque, front first, where
 * it is; `owner` must own the deque, which must hold exactly n objects (else RL_EINVAL);
 * buf holds n * width bytes. All or nothing (*bad_index: the first bad position). */
/* rl_deque_move (clipped, no other field work) that also writes, for moved item i, the
 * 16-byte descriptor ring[(start + i) % ring_size] = {IOVA of field (iova_offset,
 * iova_width), word}: word = table[v] if table is given, v being the item's unsigned key
 * field (key_offset, key_width 1/2/4/8; v past table_len or table[v] == 0 refuses the
 * item: RL_EINVAL, *bad_index = i, nothing moves), else words[i] if given, else `word`.
 * ring holds ring_size entries, words at least min(limit, ring_size); at most ring_size
 * items move. Returns the count moved, or -error. */
int64_t rl_deque_move_to_ring(rl_heap *h, uint64_t src, uint64_t dst, uint32_t owner,
                              uint64_t limit, uint64_t iova_offset, uint64_t iova_width,
                              uint64_t *ring, uint64_t ring_size, uint64_t start,
                              const uint64_t *words, uint64_t word, const uint64_t *table,
                              uint64_t table_len, uint64_t key_offset, uint64_t key_width,
                              uint64_t *bad_index);
/* Move up to `limit` items (clipped to what src holds, dst has room for and the ring
 * has slots) from the front of src to the back of dst, reading item i's 16-byte
 * descriptor back from ring[(start + i) % ring_size]: its 64-bit word `word` (0 or 1)
 * must satisfy (w & check_mask) == check_want and its value (w >> shift) & value_mask
 * must be at most value_max (else RL_EINVAL, *bad_index = i, nothing moves); the value
 * is written into the item's unsigned field
 * (field_offset, field_width 1/2/4/8): a received frame's length from its writeback.
 * Returns the count moved, or -error. */
int64_t rl_deque_move_from_ring(rl_heap *h, uint64_t src, uint64_t dst, uint32_t owner,
                                uint64_t limit, const uint64_t *ring, uint64_t ring_size,
                                uint64_t start, uint64_t word, uint64_t check_mask,
                                uint64_t check_want, uint64_t shift, uint64_t value_mask,
                                uint64_t value_max, uint64_t field_offset,
                                uint64_t field_width, uint64_t *bad_index);
/* Add `addend` (wrapping; minus k is 2^64 - k) to the unsigned little-endian field of
 * width 1, 2, 4 or 8 bytes at `offset` of every object in the deque, in place; the
 * deque must hold exactly n objects. All or nothing (*bad_index: the first bad position). */
int rl_deque_add(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t offset, uint64_t width,
                 uint64_t addend, uint64_t n, uint64_t *bad_index);
/* Move up to `limit` items from the front of deque src to the back of deque dst, both
 * owned by `owner` (they stay nested; only their parent changes). exact: exactly `limit`
 * or nothing (RL_EINVAL if src holds fewer, RL_EFULL if dst lacks room); else clipped to
 * what src holds and dst has room for. With set_src (exact moves only), first write field
 * (set_offset, set_width) of item i from set_src + i * set_width, checked for every item
 * (inside it, not borrowed) before anything changes. Returns the count moved, or -error. */
int64_t rl_deque_move(rl_heap *h, uint64_t src, uint64_t dst, uint32_t owner, uint64_t limit,
                      int exact, uint64_t set_offset, uint64_t set_width, const void *set_src);
/* The deque's length if `owner` owns it, else minus the error code. */
int64_t rl_deque_len(rl_heap *h, uint64_t deque, uint32_t owner);
int rl_deque_fields(rl_heap *h, uint64_t deque, uint32_t owner, uint64_t offset,
                    uint64_t width, void *buf, uint64_t n, int write, uint64_t *bad_index);

/* Rescue (shadows, before the reclaim of a killed domain `dead`): each of `ids` that
 * `dead` holds, at top level or nested at any depth in a container it owns, becomes a
 * top-level object of `to` (a live domain), if its type is `type_id` (0: any). Other
 * ids (stale, pending free, held by someone else, of another type) are skipped;
 * *rescued_out counts the rescued ones. */
int rl_rescue(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t dead, uint32_t to,
              uint32_t type_id, uint64_t *rescued_out);

/* View pins: a pinned object's memory is never reused, even after the object is freed or
 * reclaimed (its id goes stale at once); it returns to the arena at the last unpin.
 * rl_pin gives the slot index to unpin with. handle.c wraps them as tokens. */
int rl_pin(rl_heap *h, uint64_t id, uint32_t *slot_out);
void rl_unpin(rl_heap *h, uint32_t slot);

int rl_lookup(rl_heap *h, uint64_t id, rl_entry_info *out);
int rl_owner(rl_heap *h, uint64_t id, uint32_t *owner_out);
/* The owner (>= 0), or -RL_E* for a stale id. No out-parameter: safe to share. */
int64_t rl_owner_of(rl_heap *h, uint64_t id);
int rl_free_reason(rl_heap *h, uint64_t id);
int rl_stats(rl_heap *h, rl_heap_stats *out);
int rl_domain_stats(rl_heap *h, uint32_t owner, uint64_t *objects, uint64_t *bytes);
uint64_t rl_list(rl_heap *h, rl_entry_info *out, uint64_t max);
void *rl_ptr(rl_heap *h, uint64_t id);
void *rl_ptr_range(rl_heap *h, uint64_t id, uint64_t offset, uint64_t len);
uint64_t rl_iova(rl_heap *h, uint64_t id);
void *rl_iova_to_ptr(rl_heap *h, uint64_t iova, uint64_t len);

#endif
