/* handle.h: drop tokens for Python RRef handles.
 *
 * A Python handle on a heap object owns one token, wrapped with ffi.gc so that
 * rl_handle_drop runs when the handle is garbage: it frees the object if it is
 * still live (Rust's drop) and releases the token's reference on the heap.
 *
 * Why C and not a Python __del__: the kernel unwinds threads with asynchronous
 * exceptions, and one that lands at the entry of a Python finalizer is swallowed
 * ("exception ignored"), losing both the free and the unwinding. A C destructor
 * runs no bytecode, so nothing can land in it. The heap reference also makes the
 * arena outlive every handle, whatever order garbage cycles finalize in.
 *
 * Ownership: a token is used by one Python handle; rl_handle_disarm (the object
 * moved into a container, or was freed explicitly) makes the drop free nothing.
 *
 * A batch token does the same for a handle-free batch (heap/batch.py): it keeps a copy
 * of n ids and the domain that took them; its drop frees those of them that domain
 * still owns at top level (rl_free_owned_bulk), so ids that moved on (put back into a
 * container, or reclaimed and reused) are never touched. rl_batch_ids gives the copy,
 * valid for the token's lifetime, for bulk calls.
 *
 * A view pin is held by what numpy views of an object hang from (heap/rref.py
 * ViewExporter, devices/device.py DMA buffers): while it lives the object's memory is
 * never handed to another object, even if the object is freed or reclaimed meanwhile
 * (rl_pin in heap.h). Its drop unpins; NULL from rl_view_pin_new means a stale id (or
 * no memory).
 */
#ifndef REDLEAF_HANDLE_H
#define REDLEAF_HANDLE_H

#include <stddef.h>
#include <stdint.h>

#include "heap.h"

typedef struct rl_handle rl_handle;

rl_handle *rl_handle_new(rl_heap *h, uint64_t id);
void rl_handle_disarm(rl_handle *t);
void rl_handle_drop(rl_handle *t);

typedef struct rl_batch rl_batch;

rl_batch *rl_batch_new(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t owner);
/* An empty token with room for `cap` ids: arm it (ffi.gc) first, then rl_batch_take
 * fills it from a deque in one registry call, so no object is ever unaccounted for.
 * rl_batch_put appends its objects to a deque and disarms it (all or nothing).
 * rl_batch_take_iovas also gives the IOVA of one field of each (rl_deque_take_iovas);
 * rl_batch_put_field first writes one field of every object (rl_scatter) from `src`, then
 * puts: if the put then fails (the deque is full) the field stays written and the batch
 * stays armed. */
rl_batch *rl_batch_reserve(rl_heap *h, uint64_t cap, uint32_t owner);
int rl_batch_take(rl_batch *b, uint64_t deque, uint64_t limit);
int rl_batch_put(rl_batch *b, uint64_t deque, uint32_t owner, uint64_t *bad_index);
int rl_batch_take_iovas(rl_batch *b, uint64_t deque, uint64_t limit, uint64_t offset,
                        uint64_t width, uint64_t *iovas_out);
int rl_batch_put_field(rl_batch *b, uint64_t deque, uint32_t owner, uint64_t offset,
                       uint64_t width, const void *src, uint64_t *bad_index);
uint64_t rl_batch_len(rl_batch *b);
const uint64_t *rl_batch_ids(rl_batch *b);
void rl_batch_drop(rl_batch *b);

typedef struct rl_view_pin rl_view_pin;

rl_view_pin *rl_view_pin_new(rl_heap *h, uint64_t id);
void rl_view_pin_drop(rl_view_pin *p);

/* Construction that an asynchronous exception cannot leak (used through cffi's
 * ffi.new_allocator, heap/rref.py). `x = ffi.gc(rl_view_pin_new(h, id), drop)` is two
 * calls: a DomainUnwind delivered between them (the interpreter checks for one after
 * every call of a C function) would drop the new pin on the floor, and its object's
 * memory would stay held forever. Instead Python calls rl_*_prepare(h, id), which only
 * records the arguments in thread-local storage, then the allocator, whose one C call
 * runs rl_*_alloc_prepared (build from the recorded arguments) and attaches
 * rl_*_free, the destructor: nothing exists between the two. An unwind after prepare
 * leaves only the record, which the next prepare of the thread overwrites. The
 * allocated object is returned as a `char[]` cdata that owns it; pass it where a
 * `void *` is taken (rl_handle_disarm_any). */
void rl_handle_prepare(rl_heap *h, uint64_t id);
void *rl_handle_alloc_prepared(size_t size);
void rl_handle_free(void *t);
void rl_handle_disarm_any(void *t);
void rl_view_pin_prepare(rl_heap *h, uint64_t id);
void *rl_view_pin_alloc_prepared(size_t size);
void rl_view_pin_free(void *p);
/* Batches the same way: rl_batch_prepare records a reserve (ids NULL: room for `n`) or a
 * new batch (a copy of ids[0..n), taken at alloc: keep the array alive until then). */
void rl_batch_prepare(rl_heap *h, const uint64_t *ids, uint64_t n, uint32_t owner);
void *rl_batch_alloc_prepared(size_t size);
void rl_batch_free(void *b);

#endif
