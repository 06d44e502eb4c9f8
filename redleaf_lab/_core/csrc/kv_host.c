/* The C key-value store baseline; see kv_host.h. Per frame: IPv4 (IHL 5) UDP to our
 * address and port, not a fragment, UDP checksum valid when not 0 (RFC 768, RFC 791);
 * memcached frame header: sequence 0 of 1 (protocol.txt "UDP protocol"; the reserved
 * field is ignored, as memcached does);
 * then the command, as domains/kvnet/protocol.py: get <key>+, set <key> <flags>
 * <exptime> <bytes> [noreply], delete <key> [noreply]; anything malformed -> ERROR. One
 * command per datagram (the benchmark's requests; kvnet also runs several in a row).
 * The reply replaces the request in its buffer: MACs, addresses and ports swapped, a
 * 20-byte IPv4 header, both checksums. Frames not for us, or damaged, are dropped. */
#define _GNU_SOURCE
#include "kv_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashtable.h"
#include "ixgbe_internal.h"

#define MAX_REPLY 1400u

struct ixg_kv_store {
    uint8_t ip[4], mac[6];
    uint32_t port, key_max, value_max, capacity;
    rl_ht *table;
    uint8_t *keys, *values;
    uint32_t *key_len, *value_len, *flags, *free_slots;
    uint32_t free_top;
    ixg_kv_counts *c;
};
typedef struct ixg_kv_store kv;

static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static void put16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static uint32_t sum16(const uint8_t *p, uint32_t len, uint32_t s) {
    for (uint32_t i = 0; i + 1 < len; i += 2) s += get16(p + i);
    if (len & 1u) s += (uint32_t)p[len - 1] << 8;
    return s;
}
static uint32_t fold(uint32_t s) {
    while (s >> 16) s = (s & 0xFFFFu) + (s >> 16);
    return s;
}

static uint64_t digest(const uint8_t *k, uint32_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (uint32_t i = 0; i < n; i++) h = (h ^ k[i]) * 0x100000001B3ull;
    return h;
}

static int key_ok(const uint8_t *k, uint32_t n, uint32_t key_max) {
    if (n == 0 || n > key_max) return 0;
    for (uint32_t i = 0; i < n; i++) {
        if (k[i] == 0 || (k[i] >= 0x09 && k[i] <= 0x0D) || k[i] == 0x20) return 0;
    }
    return 1;
}

/* slot of key, -1 absent, -2 another key with the same digest */
static int64_t find(kv *s, const uint8_t *k, uint32_t n, uint64_t h) {
    uint64_t slot;
    if (!rl_ht_get(s->table, h, &slot)) return -1;
    if (s->key_len[slot] != n || memcmp(s->keys + slot * s->key_max, k, n)) return -2;
    return (int64_t)slot;
}

/* a decimal number of at most `bits` bits filling [p, p+n); -1 otherwise */
static int64_t number(const uint8_t *p, uint32_t n) {
    if (n == 0 || n > 10) return -1;
    uint64_t v = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10u + (uint32_t)(p[i] - '0');
    }
    return v <= 0xFFFFFFFFull ? (int64_t)v : -1;
}

/* split the command line into words at single spaces; returns the count (max 8), -1 bad */
static int words(const uint8_t *line, uint32_t n, const uint8_t **w, uint32_t *wl) {
    int count = 0;
    uint32_t start = 0;
    for (uint32_t i = 0; i <= n; i++) {
        if (i == n || line[i] == ' ') {
            if (count == 8) return -1;
            w[count] = line + start;
            wl[count++] = i - start;
            start = i + 1;
        }
    }
    return count;
}

#define ERR(s) (s->c->errors++, memcpy(out, "ERROR\r\n", 7), 7u)

/* the reply body to message[0..n) into out; returns its length (0: none, noreply) */
static uint32_t answer(kv *s, const uint8_t *m, uint32_t n, uint8_t *out) {
    const uint8_t *end = memmem(m, n, "\r\n", 2);
    if (!end) return ERR(s);
    uint32_t line = (uint32_t)(end - m);
    const uint8_t *w[8];
    uint32_t wl[8];
    int nw = words(m, line, w, wl);
    if (nw < 1) return ERR(s);
    if (wl[0] == 3 && !memcmp(w[0], "get", 3)) {
        if (nw < 2 || line + 2 != n) return ERR(s);
        for (int i = 1; i < nw; i++) {
            if (!key_ok(w[i], wl[i], s->key_max)) return ERR(s);
        }
        s->c->gets++;
        uint32_t len = 0;
        for (int i = 1; i < nw; i++) {
            int64_t slot = find(s, w[i], wl[i], digest(w[i], wl[i]));
            if (slot < 0) continue;
            s->c->hits++;
            uint32_t vl = s->value_len[slot];
            if (len + wl[i] + vl + 40u > MAX_REPLY) return ERR(s);
            len += (uint32_t)sprintf((char *)out + len, "VALUE %.*s %u %u\r\n", (int)wl[i],
                                     (const char *)w[i], s->flags[slot], vl);
            memcpy(out + len, s->values + (uint64_t)slot * s->value_max, vl);
            len += vl;
            memcpy(out + len, "\r\n", 2);
            len += 2;
        }
        memcpy(out + len, "END\r\n", 5);
        return len + 5;
    }
    if (wl[0] == 3 && !memcmp(w[0], "set", 3)) {
        int noreply = nw == 6 && wl[5] == 7 && !memcmp(w[5], "noreply", 7);
        if (nw != 5 && !noreply) return ERR(s);
        int64_t flags = number(w[2], wl[2]), exptime = number(w[3], wl[3]);
        int64_t size = number(w[4], wl[4]);
        if (!key_ok(w[1], wl[1], s->key_max) || flags < 0 || exptime < 0 || size < 0 ||
            size > s->value_max || n != line + 2u + (uint32_t)size + 2u ||
            memcmp(m + line + 2 + size, "\r\n", 2)) {
            return ERR(s);
        }
        s->c->sets++;
        uint64_t h = digest(w[1], wl[1]);
        int64_t slot = find(s, w[1], wl[1], h);
        int stored = slot != -2;
        if (slot == -1) {
            if (!s->free_top || rl_ht_set(s->table, h, s->free_slots[s->free_top - 1]) ==
                                    RL_HT_FULL) {
                stored = 0;
            } else {
                slot = s->free_slots[--s->free_top];
                memcpy(s->keys + (uint64_t)slot * s->key_max, w[1], wl[1]);
                s->key_len[slot] = wl[1];
                s->c->keys++;
            }
        }
        if (stored) {
            memcpy(s->values + (uint64_t)slot * s->value_max, m + line + 2, (size_t)size);
            s->value_len[slot] = (uint32_t)size;
            s->flags[slot] = (uint32_t)flags;
        }
        if (noreply) return 0;
        if (stored) {
            memcpy(out, "STORED\r\n", 8);
            return 8;
        }
        memcpy(out, "NOT_STORED\r\n", 12);
        return 12;
    }
    if (wl[0] == 6 && !memcmp(w[0], "delete", 6)) {
        int noreply = nw == 3 && wl[2] == 7 && !memcmp(w[2], "noreply", 7);
        if ((nw != 2 && !noreply) || !key_ok(w[1], wl[1], s->key_max) || line + 2 != n) {
            return ERR(s);
        }
        s->c->deletes++;
        uint64_t h = digest(w[1], wl[1]);
        int64_t slot = find(s, w[1], wl[1], h);
        if (slot >= 0) {
            rl_ht_delete(s->table, h);
            s->free_slots[s->free_top++] = (uint32_t)slot;
            s->c->keys--;
        }
        if (noreply) return 0;
        if (slot >= 0) {
            memcpy(out, "DELETED\r\n", 9);
            return 9;
        }
        memcpy(out, "NOT_FOUND\r\n", 11);
        return 11;
    }
    return ERR(s);
}

static uint32_t serve_one(kv *s, uint8_t *f, uint32_t len) {
    if (len < 42 || f[12] != 8 || f[13] != 0 || f[23] != 17 || memcmp(f + 30, s->ip, 4) != 0) {
        s->c->ignored++;
        return 0;
    }
    uint32_t total = get16(f + 16);
    if (f[14] != 0x45 || total < 28 || 14u + total > len || fold(sum16(f + 14, 20, 0)) != 0xFFFFu ||
        (get16(f + 20) & 0x3FFFu)) {
        s->c->dropped++;
        return 0;
    }
    uint8_t *udp = f + 34;
    if (get16(udp + 2) != s->port) {
        s->c->ignored++;
        return 0;
    }
    uint32_t ulen = get16(udp + 4);
    if (ulen < 8 || ulen > total - 20u) {
        s->c->dropped++;
        return 0;
    }
    if (get16(udp + 6)) {
        uint32_t ps = sum16(f + 26, 8, 17u + ulen);
        if (fold(sum16(udp, ulen, ps)) != 0xFFFFu) {
            s->c->dropped++;
            return 0;
        }
    }
    const uint8_t *dg = udp + 8;
    uint32_t dlen = ulen - 8u;
    if (dlen < 8 || get16(dg + 2) != 0 || get16(dg + 4) != 1) { /* reserved: ignored */
        s->c->dropped++;
        return 0;
    }
    uint8_t body[MAX_REPLY + 64];
    uint32_t blen = answer(s, dg + 8, dlen - 8u, body + 8);
    if (blen == 0) return 0;
    memcpy(body, dg, 2); /* the request id */
    put16(body + 2, 0);
    put16(body + 4, 1);
    put16(body + 6, 0);
    blen += 8;
    uint16_t src_port = (uint16_t)get16(udp);
    uint8_t client_ip[4], client_mac[6];
    memcpy(client_ip, f + 26, 4);
    memcpy(client_mac, f + 6, 6);
    memcpy(f, client_mac, 6);
    memcpy(f + 6, s->mac, 6);
    uint8_t *ip = f + 14;
    uint32_t out_ulen = 8u + blen;
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, 20u + out_ulen);
    put16(ip + 4, 0);
    put16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = 17;
    put16(ip + 10, 0);
    memcpy(ip + 12, s->ip, 4);
    memcpy(ip + 16, client_ip, 4);
    put16(ip + 10, ~fold(sum16(ip, 20, 0)) & 0xFFFFu);
    put16(udp, s->port);
    put16(udp + 2, src_port);
    put16(udp + 4, out_ulen);
    put16(udp + 6, 0);
    memcpy(udp + 8, body, blen);
    uint32_t c = ~fold(sum16(udp, out_ulen, sum16(ip + 12, 8, 17u + out_ulen))) & 0xFFFFu;
    put16(udp + 6, c ? c : 0xFFFFu);
    return 34u + out_ulen; /* the NIC pads a short frame (HLREG0.TXPADEN) */
}

static void kv_batch(void *ctx, uint8_t **frames, uint32_t *lens, uint32_t n) {
    kv *s = ctx;
    for (uint32_t i = 0; i < n; i++) lens[i] = serve_one(s, frames[i], lens[i]);
}

kv *ixg_kv_create(const uint8_t *ip, const uint8_t *mac, uint32_t port,
                  uint32_t log2_capacity, uint32_t key_max, uint32_t value_max) {
    if (!ip || !mac || port == 0 || port > 65535 || key_max < 1 || key_max > 250 ||
        value_max < 1 || value_max > 1300 || log2_capacity < 1 || log2_capacity > 24) {
        return NULL;
    }
    kv *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    uint32_t cap = 1u << log2_capacity;
    memcpy(s->ip, ip, 4);
    memcpy(s->mac, mac, 6);
    s->port = port;
    s->key_max = key_max;
    s->value_max = value_max;
    s->capacity = cap;
    s->table = rl_ht_create(log2_capacity);
    s->keys = malloc((uint64_t)cap * key_max);
    s->values = malloc((uint64_t)cap * value_max);
    s->key_len = calloc(cap, 4);
    s->value_len = calloc(cap, 4);
    s->flags = calloc(cap, 4);
    s->free_slots = malloc((uint64_t)cap * 4u);
    if (!s->table || !s->keys || !s->values || !s->key_len || !s->value_len || !s->flags ||
        !s->free_slots) {
        ixg_kv_destroy(s);
        return NULL;
    }
    for (uint32_t i = 0; i < cap; i++) s->free_slots[i] = cap - 1u - i;
    s->free_top = cap;
    return s;
}

void ixg_kv_destroy(kv *s) {
    if (!s) return;
    rl_ht_destroy(s->table);
    free(s->keys);
    free(s->values);
    free(s->key_len);
    free(s->value_len);
    free(s->flags);
    free(s->free_slots);
    free(s);
}

int ixg_kv_bench(ixg_dev *d, uint64_t mem_iova, uint64_t mem_bytes, uint32_t ring,
                 uint32_t batch, uint64_t max_packets, int64_t max_ns, kv *store,
                 ixg_fwd_result *out, ixg_kv_counts *counts) {
    if (!store || !counts) return -1;
    store->c = counts;
    int rc = ixg_fwd_bench_work(d, mem_iova, mem_bytes, ring, batch, max_packets, max_ns,
                                kv_batch, store, out);
    store->c = NULL;
    return rc;
}
