/* The C Maglev baseline of `bench maglev` (issue 17): the same steering as
 * domains/maglev (steer.py) in C, inside the C forwarding loop (ixgbe_host.c), on the
 * same 82599 model. The caller gives the lookup table (backend index per slot, built by
 * the domain's population code), the backends' MACs and addresses and the VIP; the flow
 * table is the C reference hash table (hashtable.c) of 2^flow_log2 slots.
 * Locking: as ixg_fwd_bench (single-threaded; the caller does not use the NIC meanwhile).
 */
#ifndef REDLEAF_MAGLEV_HOST_H
#define REDLEAF_MAGLEV_HOST_H

#include <stdint.h>

#include "ixgbe_model.h"

typedef struct {
    uint64_t steered, misses, untracked, rejected;
} ixg_maglev_counts;

/* 0 on success; -1 bad arguments, -2 NIC did not come up, -3 out of memory. */
int ixg_maglev_bench(ixg_dev *d, uint64_t mem_iova, uint64_t mem_bytes, uint32_t ring,
                     uint32_t batch, uint64_t max_packets, int64_t max_ns,
                     const int32_t *lookup, uint32_t m, const uint8_t *macs,
                     const uint8_t *ips, uint32_t backends, uint32_t flow_log2,
                     const uint8_t *vip, ixg_fwd_result *out, ixg_maglev_counts *counts);

#endif
