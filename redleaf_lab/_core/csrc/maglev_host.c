/* The C Maglev baseline; see maglev_host.h. Per frame, as steer.py does per batch:
 * accept IPv4 (IHL 5) UDP to the VIP (RFC 791 §3.1); flow key = (bytes 26..33 as a
 * little-endian word) XOR (bytes 34..37 as a little-endian 32-bit word * KEY_MIX);
 * FNV-1a 64 of the key picks the flow-table slot and the lookup entry (hash mod M); a
 * tracked flow keeps a backend that is still in use; rewrite destination MAC and IPv4,
 * recompute the IPv4 header checksum (RFC 1071), update the UDP checksum (RFC 1624
 * eqn. 3; 0 stays 0; a computed 0 is sent as 0xFFFF, RFC 768). Other frames are left
 * as they are and counted (the Python domain drops them; the bench sends none). */
#define _GNU_SOURCE
#include "maglev_host.h"

#include <string.h>

#include "hashtable.h"
#include "ixgbe_internal.h"

#define KEY_MIX 0x9E3779B97F4A7C15ull

typedef struct {
    const int32_t *lookup;
    uint32_t m;
    const uint8_t *macs, *ips;
    uint32_t backends;
    const uint8_t *vip;
    rl_ht *flows;
    ixg_maglev_counts *counts;
} maglev;

static uint32_t fold(uint32_t s) {
    s = (s & 0xFFFFu) + (s >> 16);
    return (s & 0xFFFFu) + (s >> 16);
}

static void steer_one(maglev *g, uint8_t *f, uint32_t len) {
    if (len < 42 || f[12] != 8 || f[13] != 0 || f[14] != 0x45 || f[23] != 17 ||
        memcmp(f + 30, g->vip, 4) != 0) {
        g->counts->rejected++;
        return;
    }
    uint64_t addresses;
    uint32_t ports;
    memcpy(&addresses, f + 26, 8);
    memcpy(&ports, f + 34, 4);
    uint64_t key = addresses ^ ((uint64_t)ports * KEY_MIX);
    uint64_t h = rl_fnv1a64_inline(key), value;
    int32_t backend;
    if (rl_ht_get(g->flows, key, &value) && value < g->backends) {
        backend = (int32_t)value;
    } else {
        g->counts->misses++;
        backend = g->lookup[h % g->m];
        if (backend < 0) {
            g->counts->rejected++;
            return;
        }
        if (rl_ht_set(g->flows, key, (uint64_t)backend) == RL_HT_FULL) g->counts->untracked++;
    }
    const uint8_t *ip = g->ips + 4u * (uint32_t)backend;
    uint32_t old1 = (uint32_t)f[30] << 8 | f[31], old2 = (uint32_t)f[32] << 8 | f[33];
    memcpy(f, g->macs + 6u * (uint32_t)backend, 6);
    memcpy(f + 30, ip, 4);
    f[24] = f[25] = 0;
    uint32_t s = 0;
    for (int i = 14; i < 34; i += 2) s += (uint32_t)f[i] << 8 | f[i + 1];
    uint32_t c = ~fold(s) & 0xFFFFu;
    f[24] = (uint8_t)(c >> 8);
    f[25] = (uint8_t)c;
    uint32_t udp = (uint32_t)f[40] << 8 | f[41];
    if (udp) {
        uint32_t new1 = (uint32_t)ip[0] << 8 | ip[1], new2 = (uint32_t)ip[2] << 8 | ip[3];
        uint32_t t = (~udp & 0xFFFFu) + (~old1 & 0xFFFFu) + (~old2 & 0xFFFFu) + new1 + new2;
        uint32_t fixed = ~fold(t) & 0xFFFFu;
        if (!fixed) fixed = 0xFFFFu;
        f[40] = (uint8_t)(fixed >> 8);
        f[41] = (uint8_t)fixed;
    }
    g->counts->steered++;
}

static void steer_batch(void *ctx, uint8_t **frames, uint32_t *lens, uint32_t n) {
    maglev *g = ctx;
    for (uint32_t i = 0; i < n; i++) steer_one(g, frames[i], lens[i]);
}

int ixg_maglev_bench(ixg_dev *d, uint64_t mem_iova, uint64_t mem_bytes, uint32_t ring,
                     uint32_t batch, uint64_t max_packets, int64_t max_ns,
                     const int32_t *lookup, uint32_t m, const uint8_t *macs,
                     const uint8_t *ips, uint32_t backends, uint32_t flow_log2,
                     const uint8_t *vip, ixg_fwd_result *out, ixg_maglev_counts *counts) {
    memset(counts, 0, sizeof *counts);
    if (!lookup || m < 3 || !macs || !ips || !vip || backends < 1) return -1;
    for (uint32_t i = 0; i < m; i++) {
        if (lookup[i] >= (int32_t)backends) return -1;
    }
    maglev g = {.lookup = lookup, .m = m, .macs = macs, .ips = ips, .backends = backends,
                .vip = vip, .flows = rl_ht_create(flow_log2), .counts = counts};
    if (!g.flows) return flow_log2 < 1 || flow_log2 > RL_HT_MAX_LOG2 ? -1 : -3;
    int rc = ixg_fwd_bench_work(d, mem_iova, mem_bytes, ring, batch, max_packets, max_ns,
                                steer_batch, &g, out);
    rl_ht_destroy(g.flows);
    return rc;
}
