/* The C reference hash table of the language-overheads study (RedLeaf Fig. 5): FNV-1a 64
 * over a key's 8 bytes, open addressing with linear probing, 8-byte keys and values,
 * backward-shift deletion (no tombstones). The same contract as the Python styles in
 * redleaf_lab/hashtable/ (common.py): capacity 2^1..2^26; set returns RL_HT_INSERTED,
 * RL_HT_UPDATED or RL_HT_FULL (an error value); get returns 1 and stores the value, or 0.
 *
 * Also compiled into the device module (the C Maglev baseline, maglev_host.c).
 * Ownership/locking: a table belongs to its creator; no locking (one thread at a time).
 */
#ifndef REDLEAF_HASHTABLE_H
#define REDLEAF_HASHTABLE_H

#include <stdint.h>

#define RL_HT_INSERTED 1
#define RL_HT_UPDATED 0
#define RL_HT_FULL (-1)
#define RL_HT_MAX_LOG2 26

typedef struct {
    uint64_t key, value;
} rl_ht_entry;

typedef struct rl_ht {
    rl_ht_entry *entries;
    uint8_t *used;
    uint64_t mask;
    uint64_t count;
} rl_ht;

static inline uint64_t rl_fnv1a64_inline(uint64_t key) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (int i = 0; i < 8; i++) {
        h ^= (key >> (8 * i)) & 0xFFu;
        h *= 0x100000001B3ull;
    }
    return h;
}

uint64_t rl_fnv1a64(uint64_t key);
/* NULL if log2_capacity is outside 1..RL_HT_MAX_LOG2 or memory runs out. */
rl_ht *rl_ht_create(uint32_t log2_capacity);
void rl_ht_destroy(rl_ht *t);
int rl_ht_set(rl_ht *t, uint64_t key, uint64_t value);
int rl_ht_get(const rl_ht *t, uint64_t key, uint64_t *value);
int rl_ht_delete(rl_ht *t, uint64_t key);
uint64_t rl_ht_count(const rl_ht *t);
uint64_t rl_ht_capacity(const rl_ht *t);
/* Benchmark loops: n sets (statuses summed into *inserted) / n gets (values summed into
 * *checksum, hits counted in *found); each returns the elapsed CLOCK_MONOTONIC ns. */
int64_t rl_ht_bench_set(rl_ht *t, const uint64_t *keys, const uint64_t *values, uint64_t n,
                        int64_t *inserted);
int64_t rl_ht_bench_get(const rl_ht *t, const uint64_t *keys, uint64_t n, uint64_t *checksum,
                        uint64_t *found);

#endif
