/* The C key-value store baseline of `bench kv` (issue 17): memcached's UDP text protocol
 * (get, set, delete; the 8-byte frame header) answered in place, as domains/kvnet does,
 * inside the C forwarding loop (ixgbe_host.c) on the same 82599 model. Records in
 * preallocated arrays, found through the C reference hash table keyed by the FNV-1a 64
 * digest of the key. Locking: as ixg_fwd_bench (single-threaded).
 */
#ifndef REDLEAF_KV_HOST_H
#define REDLEAF_KV_HOST_H

#include <stdint.h>

#include "ixgbe_model.h"

typedef struct {
    uint64_t gets, sets, deletes, hits, errors, dropped, ignored, keys;
} ixg_kv_counts;

typedef struct ixg_kv_store ixg_kv_store;

/* A store for `ip` (4 bytes), `mac` (6) and UDP `port`, 2^log2_capacity records of keys up
 * to key_max (<= 250) and values up to value_max (<= 1300) bytes; NULL on bad arguments or
 * no memory. It outlives bench runs (warm it with set requests, then measure). */
ixg_kv_store *ixg_kv_create(const uint8_t *ip, const uint8_t *mac, uint32_t port,
                            uint32_t log2_capacity, uint32_t key_max, uint32_t value_max);
void ixg_kv_destroy(ixg_kv_store *s);
/* Serve in the C forwarding loop; counts go to *counts (gets ... keys: this run's).
 * 0 on success; -1 bad arguments, -2 NIC did not come up. */
int ixg_kv_bench(ixg_dev *d, uint64_t mem_iova, uint64_t mem_bytes, uint32_t ring,
                 uint32_t batch, uint64_t max_packets, int64_t max_ns, ixg_kv_store *store,
                 ixg_fwd_result *out, ixg_kv_counts *counts);

#endif
