/* The C reference hash table; the contract is in hashtable.h. */
#define _GNU_SOURCE
#include "hashtable.h"

#include <stdlib.h>
#include <time.h>

uint64_t rl_fnv1a64(uint64_t key) { return rl_fnv1a64_inline(key); }

rl_ht *rl_ht_create(uint32_t log2_capacity) {
    if (log2_capacity < 1 || log2_capacity > RL_HT_MAX_LOG2) return NULL;
    rl_ht *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    uint64_t cap = 1ull << log2_capacity;
    t->entries = calloc(cap, sizeof *t->entries);
    t->used = calloc(cap, 1);
    if (!t->entries || !t->used) {
        rl_ht_destroy(t);
        return NULL;
    }
    t->mask = cap - 1;
    return t;
}

void rl_ht_destroy(rl_ht *t) {
    if (!t) return;
    free(t->entries);
    free(t->used);
    free(t);
}

int rl_ht_set(rl_ht *t, uint64_t key, uint64_t value) {
    uint64_t slot = rl_fnv1a64_inline(key) & t->mask;
    for (uint64_t step = 0; step <= t->mask; step++) {
        if (!t->used[slot]) {
            t->used[slot] = 1;
            t->entries[slot].key = key;
            t->entries[slot].value = value;
            t->count++;
            return RL_HT_INSERTED;
        }
        if (t->entries[slot].key == key) {
            t->entries[slot].value = value;
            return RL_HT_UPDATED;
        }
        slot = (slot + 1) & t->mask;
    }
    return RL_HT_FULL;
}

static int64_t find(const rl_ht *t, uint64_t key) {
    uint64_t slot = rl_fnv1a64_inline(key) & t->mask;
    for (uint64_t step = 0; step <= t->mask; step++) {
        if (!t->used[slot]) return -1;
        if (t->entries[slot].key == key) return (int64_t)slot;
        slot = (slot + 1) & t->mask;
    }
    return -1;
}

int rl_ht_get(const rl_ht *t, uint64_t key, uint64_t *value) {
    int64_t slot = find(t, key);
    if (slot < 0) return 0;
    *value = t->entries[slot].value;
    return 1;
}

int rl_ht_delete(rl_ht *t, uint64_t key) {
    int64_t found = find(t, key);
    if (found < 0) return 0;
    uint64_t gap = (uint64_t)found, slot = gap, mask = t->mask;
    t->used[gap] = 0;
    t->count--;
    for (;;) { /* backward shift: pull later chain members into the gap */
        slot = (slot + 1) & mask;
        if (!t->used[slot]) return 1;
        uint64_t home = rl_fnv1a64_inline(t->entries[slot].key) & mask;
        if (((slot - home) & mask) >= ((slot - gap) & mask)) {
            t->entries[gap] = t->entries[slot];
            t->used[gap] = 1;
            t->used[slot] = 0;
            gap = slot;
        }
    }
}

uint64_t rl_ht_count(const rl_ht *t) { return t->count; }
uint64_t rl_ht_capacity(const rl_ht *t) { return t->mask + 1; }

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t rl_ht_bench_set(rl_ht *t, const uint64_t *keys, const uint64_t *values, uint64_t n,
                        int64_t *inserted) {
    int64_t sum = 0, t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) sum += rl_ht_set(t, keys[i], values[i]);
    int64_t ns = now_ns() - t0;
    *inserted = sum;
    return ns;
}

int64_t rl_ht_bench_get(const rl_ht *t, const uint64_t *keys, uint64_t n, uint64_t *checksum,
                        uint64_t *found) {
    uint64_t sum = 0, hits = 0, v = 0;
    int64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        if (rl_ht_get(t, keys[i], &v)) {
            hits++;
            sum += v;
        }
    }
    int64_t ns = now_ns() - t0;
    *checksum = sum;
    *found = hits;
    return ns;
}
