/* 82599 model: the wire behind the MAC. One backend is chosen at creation:
 *
 * - generator: IPv4/UDP frames of cfg.frame_bytes (without FCS) for cfg.flows flows.
 *   Flow f: 10.(1 + (f >> 16)).((f >> 8) & 255).(f & 255):(10000 + f % 50000) ->
 *   10.2.0.1:9 (UDP discard), so every flow has its own 5-tuple (up to IXG_MAX_FLOWS);
 *   IPv4 DF, TTL 64, a valid header checksum; the UDP payload starts with a big-endian
 *   64-bit sequence number (one counter over all flows) and the 32-bit flow id, then
 *   bytes from the seed; the UDP checksum is valid (updated per frame from a per-flow
 *   partial sum, RFC 1624 style). Flows are picked by xorshift64 from the seed, so the
 *   stream is deterministic. Transmitted frames go to the sink.
 *   Flow-count mode: up to IXG_TEMPLATE_FLOWS flows, each has a prebuilt header
 *   template; above that (a million flows, as in Maglev's evaluation) only flow 0's
 *   template is built and each frame's header is flow 0's with the source address,
 *   source port and flow id patched in, both checksums updated incrementally (RFC 1624,
 *   eqn. 3): the same bytes a template would hold, with no per-flow memory.
 *   Replay mode (ixg_set_replay): instead, copies of frames the host gave, picked
 *   uniformly or by a cumulative distribution (memcached requests over Zipf keys).
 * - sink: counts transmitted frames and, with cfg.verify, checks the IPv4 header
 *   checksum, lengths and UDP checksum, and for generator frames that each flow's
 *   sequence number only grows (gaps are drops, which forwarders may have). The Ethernet
 *   header is not checked: forwarders rewrite it (ixy-fwd touches byte 1). With
 *   cfg.loopback, transmitted frames are also delivered back into RX.
 * - loopback: transmitted frames are delivered into RX, unchecked.
 * - tap: a Linux TAP device (/dev/net/tun, TUNSETIFF with IFF_TAP | IFF_NO_PI), opened
 *   non-blocking: transmitted frames are written to it, frames read from it (at most
 *   cfg.burst per pass) are delivered into RX.
 * cfg.capture keeps the last IXG_CAPTURE_SLOTS transmitted frames for inspection.
 * Locking: every function here runs under d->lock (see ixgbe_model.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ixgbe_internal.h"

#define GEN_DST_PORT 9u
#define GEN_HDR 54u /* Ethernet 14 + IPv4 20 + UDP 8 + sequence 8 + flow id 4 */
static const uint8_t GEN_SRC_MAC[6] = {0x02, 0x52, 0x4C, 0x00, 0x00, 0x01};

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void put16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }

/* Internet checksum partial sum of big-endian words (len even, or zero-padded). */
static uint64_t sum_be(const uint8_t *p, uint32_t len) {
    uint64_t s = 0;
    for (uint32_t i = 0; i + 1 < len; i += 2) s += get16(p + i);
    if (len & 1u) s += (uint32_t)p[len - 1] << 8;
    return s;
}

/* The same sum in native order, fast; folding it to 0xFFFF means "valid" in any order. */
static uint64_t sum_fast(const uint8_t *p, uint32_t len) {
    uint64_t s = 0;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        s += (v & 0xFFFFFFFFu) + (v >> 32);
    }
    for (; len >= 2; p += 2, len -= 2) {
        uint16_t v;
        memcpy(&v, p, 2);
        s += v;
    }
    if (len) s += p[0]; /* the odd last byte is the first byte of a word */
    return s;
}

static uint32_t fold(uint64_t s) {
    while (s >> 16) s = (s & 0xFFFFu) + (s >> 16);
    return (uint32_t)s;
}

/* The header template of flow f: Ethernet, IPv4, UDP with checksum 0, seq 0, flow id. */
static void build_flow(ixg_dev *d, uint32_t f, uint64_t payload_sum) {
    ixg_flow *fl = &d->gen.flows[f];
    uint8_t *h = fl->hdr;
    uint32_t fb = d->cfg.frame_bytes;
    memset(h, 0, sizeof fl->hdr);
    memcpy(h, d->cfg.mac, 6);
    memcpy(h + 6, GEN_SRC_MAC, 6);
    put16(h + 12, 0x0800);
    uint8_t *ip = h + 14;
    ip[0] = 0x45;
    put16(ip + 2, fb - 14u);
    put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = 17;
    uint8_t src[4] = {10, (uint8_t)(1u + (f >> 16)), (uint8_t)(f >> 8), (uint8_t)f};
    uint8_t dst[4] = {10, 2, 0, 1};
    memcpy(ip + 12, src, 4);
    memcpy(ip + 16, dst, 4);
    put16(ip + 10, ~fold(sum_be(ip, 20)) & 0xFFFFu);
    uint8_t *udp = ip + 20;
    uint32_t ulen = fb - 34u;
    put16(udp, 10000u + f % 50000u);
    put16(udp + 2, GEN_DST_PORT);
    put16(udp + 4, ulen);
    for (int i = 0; i < 4; i++) udp[16 + i] = (uint8_t)(f >> (24 - 8 * i));
    /* pseudo header (src, dst, protocol, UDP length) + UDP header + seq/flow + payload */
    fl->sum = fold(sum_be(ip + 12, 8) + 17u + ulen + sum_be(udp, 20) + payload_sum);
    fl->queue_hash = ixg_frame_hash(h, GEN_HDR);
}

static int gen_open(ixg_dev *d) {
    ixg_gen *g = &d->gen;
    uint32_t fb = d->cfg.frame_bytes;
    uint32_t templates = d->cfg.flows > IXG_TEMPLATE_FLOWS ? 1u : d->cfg.flows;
    g->flows = calloc(templates, sizeof(ixg_flow));
    g->payload = calloc(1, fb);
    g->last_seq = calloc(d->cfg.flows, sizeof(uint64_t));
    if (!g->flows || !g->payload || !g->last_seq) return -1;
    uint64_t s = d->cfg.seed * 0x9E3779B97F4A7C15ull + 1u;
    for (uint32_t i = GEN_HDR; i < fb; i++) g->payload[i] = (uint8_t)(xorshift(&s) >> 24);
    /* payload bytes start at an even offset of the UDP segment (54 - 34 = 20) */
    uint64_t psum = sum_be(g->payload + GEN_HDR, fb - GEN_HDR);
    for (uint32_t f = 0; f < templates; f++) build_flow(d, f, psum);
    g->rng = d->cfg.seed ^ 0xD1B54A32D192ED03ull;
    if (!g->rng) g->rng = 1;
    return 0;
}

/* The header of flow f (GEN_HDR bytes, UDP checksum 0) and its UDP partial sum: its
 * template, or in flow-count mode flow 0's template patched (see the top comment). */
static const uint8_t *gen_header(ixg_dev *d, uint32_t f, uint8_t *scratch, uint32_t *sum) {
    ixg_flow *t = &d->gen.flows[0];
    if (d->cfg.flows <= IXG_TEMPLATE_FLOWS) {
        *sum = d->gen.flows[f].sum;
        return d->gen.flows[f].hdr;
    }
    memcpy(scratch, t->hdr, GEN_HDR);
    uint32_t hi = f >> 16, lo = f & 0xFFFFu, port = f % 50000u;
    scratch[27] = (uint8_t)(1u + hi); /* 10.(1 + hi).(lo >> 8).(lo & 255) */
    put16(scratch + 28, lo);
    put16(scratch + 34, 10000u + port);
    for (int i = 0; i < 4; i++) scratch[50 + i] = (uint8_t)(f >> (24 - 8 * i));
    /* flow 0 has address words 0x0A01, 0x0000, port 10000 and flow id 0: the sums grow
     * by the differences, all >= 0 (ones' complement addition, RFC 1624 eqn. 3) */
    uint32_t ip_sum = ~get16(t->hdr + 24) & 0xFFFFu;
    put16(scratch + 24, ~fold((uint64_t)ip_sum + hi + lo) & 0xFFFFu);
    *sum = fold((uint64_t)t->sum + 2u * (hi + lo) + port);
    return scratch;
}

/* Write the next frame of flow f into buf (cfg.frame_bytes bytes). */
static void gen_write(ixg_dev *d, const uint8_t *hdr, uint32_t sum, uint8_t *buf) {
    ixg_gen *g = &d->gen;
    uint32_t fb = d->cfg.frame_bytes;
    memcpy(buf, hdr, GEN_HDR);
    memcpy(buf + GEN_HDR, g->payload + GEN_HDR, fb - GEN_HDR);
    uint64_t seq = g->seq++;
    for (int i = 0; i < 8; i++) buf[42 + i] = (uint8_t)(seq >> (56 - 8 * i));
    uint64_t s = sum + (seq >> 48) + ((seq >> 32) & 0xFFFFu) +
                 ((seq >> 16) & 0xFFFFu) + (seq & 0xFFFFu);
    uint32_t c = ~fold(s) & 0xFFFFu;
    put16(buf + 40, c ? c : 0xFFFFu); /* RFC 768: a computed 0 is sent as all ones */
}

/* The RX queue of a header: its flow hash picks the queue only with RSS on. */
static uint32_t gen_queue(ixg_dev *d, uint32_t f, const uint8_t *hdr) {
    if (d->cfg.flows <= IXG_TEMPLATE_FLOWS) return ixg_flow_queue(d, d->gen.flows[f].queue_hash);
    if ((bar_load32(d, IXG_MRQC) & IXG_MRQC_MRQE_MASK) != IXG_MRQC_RSS) return 0;
    return ixg_flow_queue(d, ixg_frame_hash(hdr, GEN_HDR));
}

static uint32_t gen_pick(ixg_dev *d) {
    return (uint32_t)(((xorshift(&d->gen.rng) >> 32) * d->cfg.flows) >> 32);
}

static void replay_clear(ixg_gen *g) {
    free(g->replay);
    free(g->replay_offsets);
    free(g->replay_cdf);
    g->replay = NULL;
    g->replay_offsets = NULL;
    g->replay_cdf = NULL;
    g->replay_count = 0;
}

int ixg_wire_set_replay(ixg_dev *d, const uint8_t *blob, const uint64_t *offsets,
                        uint32_t count, const uint64_t *cdf) {
    ixg_gen *g = &d->gen;
    if (d->cfg.wire != IXG_WIRE_GENERATOR) return -2;
    if (count == 0) {
        replay_clear(g);
        return 0;
    }
    if (!blob || !offsets || count > IXG_MAX_FLOWS || offsets[0] != 0) return -1;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t len = offsets[i + 1] - offsets[i];
        if (offsets[i + 1] < offsets[i] || len < IXG_MIN_FRAME || len > IXG_MAX_STD_FRAME) return -1;
        if (cdf && ((i && cdf[i] < cdf[i - 1]) || cdf[i] > (1ull << 32))) return -1;
    }
    if (cdf && cdf[count - 1] != (1ull << 32)) return -1;
    uint8_t *frames = malloc(offsets[count]);
    uint64_t *offs = malloc((count + 1u) * sizeof *offs);
    uint64_t *dist = cdf ? malloc(count * sizeof *dist) : NULL;
    if (!frames || !offs || (cdf && !dist)) {
        free(frames);
        free(offs);
        free(dist);
        return -3;
    }
    memcpy(frames, blob, offsets[count]);
    memcpy(offs, offsets, (count + 1u) * sizeof *offs);
    if (cdf) memcpy(dist, cdf, count * sizeof *dist);
    replay_clear(g);
    g->replay = frames;
    g->replay_offsets = offs;
    g->replay_cdf = dist;
    g->replay_count = count;
    return 0;
}

static uint32_t replay_pick(ixg_dev *d) {
    ixg_gen *g = &d->gen;
    uint64_t r = xorshift(&g->rng) >> 32;
    if (!g->replay_cdf) return (uint32_t)((r * g->replay_count) >> 32);
    uint32_t lo = 0, hi = g->replay_count - 1u; /* the first i with r < cdf[i] */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2u;
        if (r < g->replay_cdf[mid]) hi = mid;
        else lo = mid + 1u;
    }
    return lo;
}

static uint64_t replay_generate(ixg_dev *d, uint64_t n, int honour_room) {
    ixg_gen *g = &d->gen;
    if (!ixg_rx_ready(d) || !ixg_rx_accept(d, g->replay)) {
        if (honour_room) return 0;
        d->stats.gen_packets += n;
        if (ixg_rx_ready(d)) d->stats.rx_filtered += n;
        else d->stats.rx_missed += n;
        return 0;
    }
    uint64_t done = 0, missed = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t k = replay_pick(d);
        const uint8_t *frame = g->replay + g->replay_offsets[k];
        uint32_t len = (uint32_t)(g->replay_offsets[k + 1] - g->replay_offsets[k]);
        uint32_t q = (bar_load32(d, IXG_MRQC) & IXG_MRQC_MRQE_MASK) == IXG_MRQC_RSS
                         ? ixg_flow_queue(d, ixg_frame_hash(frame, len)) : 0;
        int bad = 0;
        uint8_t *buf = d->rx[q].enabled && d->rx[q].bufsize >= len ? ixg_rx_slot(d, q, len, &bad)
                                                                   : NULL;
        if (!buf) {
            if (honour_room) break;
            d->stats.gen_packets++;
            missed++;
            continue;
        }
        memcpy(buf, frame, len);
        ixg_rx_commit(d, q, len);
        ixg_rx_count(d, frame, len, 1);
        d->stats.gen_packets++;
        done++;
    }
    if (missed) ixg_rx_miss(d, missed);
    return done;
}

uint64_t ixg_wire_generate(ixg_dev *d, uint64_t n, int honour_room) {
    ixg_gen *g = &d->gen;
    if (g->replay_count) return replay_generate(d, n, honour_room);
    if (!g->flows || n == 0) return 0;
    uint32_t fb = d->cfg.frame_bytes;
    if (!ixg_rx_ready(d) || !ixg_rx_accept(d, g->flows[0].hdr)) {
        if (honour_room) return 0; /* nothing is sent into a closed receiver */
        d->stats.gen_packets += n;
        if (ixg_rx_ready(d)) d->stats.rx_filtered += n;
        else d->stats.rx_missed += n;
        g->seq += n;
        return 0;
    }
    uint64_t done = 0, missed = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t f = gen_pick(d), sum;
        uint8_t scratch[GEN_HDR];
        const uint8_t *hdr = gen_header(d, f, scratch, &sum);
        uint32_t q = gen_queue(d, f, hdr);
        int bad = 0;
        uint8_t *buf = d->rx[q].enabled && d->rx[q].bufsize >= fb ? ixg_rx_slot(d, q, fb, &bad)
                                                                  : NULL;
        if (!buf && d->rx[q].enabled && d->rx[q].bufsize < fb && !honour_room) {
            uint8_t frame[IXG_MAX_STD_FRAME]; /* small buffers: several descriptors */
            gen_write(d, hdr, sum, frame);
            d->stats.gen_packets++;
            if (ixg_rx_deliver(d, frame, fb)) done++;
            continue;
        }
        if (!buf) {
            if (honour_room) break;
            d->stats.gen_packets++;
            g->seq++;
            missed++;
            continue;
        }
        gen_write(d, hdr, sum, buf);
        ixg_rx_commit(d, q, fb);
        d->stats.gen_packets++;
        done++;
    }
    if (done) ixg_rx_count(d, g->flows[0].hdr, fb, done);
    if (missed) ixg_rx_miss(d, missed);
    return done;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int tap_rx(ixg_dev *d) {
    uint8_t frame[IXG_STAGE_BYTES];
    int moved = 0;
    for (uint32_t i = 0; i < d->cfg.burst; i++) {
        ssize_t n = read(d->tap_fd, frame, sizeof frame);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) d->stats.tap_errors++;
            break;
        }
        d->stats.tap_rx++;
        moved += ixg_rx_deliver(d, frame, (uint32_t)n);
    }
    return moved;
}

int ixg_wire_rx(ixg_dev *d, int inline_mode) {
    if (d->cfg.wire == IXG_WIRE_TAP) return tap_rx(d);
    if (d->cfg.wire != IXG_WIRE_GENERATOR) return 0;
    if (!ixg_rx_ready(d)) {
        d->gen.last_ns = 0; /* the generator sends nothing into a closed receiver */
        return 0;
    }
    uint64_t cap = (uint64_t)d->cfg.burst * d->cfg.queues;
    if (inline_mode || d->cfg.rate_pps <= 0.0) return (int)ixg_wire_generate(d, cap, 1);
    /* thread mode with a rate: frames are due by the monotonic clock. At most `cap` are
     * written per pass; any more that were due (the thread was descheduled, or the ring
     * is full) are missed (MPC) and counted without being built. */
    int64_t now = now_ns();
    if (d->gen.last_ns == 0) d->gen.last_ns = now;
    d->gen.tokens += (double)(now - d->gen.last_ns) * 1e-9 * d->cfg.rate_pps;
    d->gen.last_ns = now;
    uint64_t n = (uint64_t)d->gen.tokens;
    d->gen.tokens -= (double)n;
    if (n > cap) {
        uint64_t excess = n - cap;
        d->stats.gen_packets += excess;
        d->gen.seq += excess;
        ixg_rx_miss(d, excess);
        n = cap;
    }
    return (int)ixg_wire_generate(d, n, 0);
}

static void sink(ixg_dev *d, const uint8_t *f, uint32_t len) {
    d->stats.sink_packets++;
    d->stats.sink_bytes += len;
    if (!d->cfg.verify) return;
    if (len < 14 || get16(f + 12) != 0x0800) { /* not IPv4 */
        d->stats.sink_other++;
        return;
    }
    const uint8_t *ip = f + 14;
    uint32_t ihl = (uint32_t)(ip[0] & 0xFu) * 4u;
    if (len < 34 || (ip[0] >> 4) != 4 || ihl < 20 || 14u + ihl > len ||
        fold(sum_fast(ip, ihl)) != 0xFFFFu || get16(ip + 2) < ihl ||
        14u + get16(ip + 2) > len) {
        d->stats.sink_bad++;
        return;
    }
    uint32_t tot = get16(ip + 2);
    if (ip[9] != 17) {
        d->stats.sink_other++;
        return;
    }
    const uint8_t *udp = ip + ihl;
    uint32_t ulen = tot - ihl >= 8 ? get16(udp + 4) : 0;
    if (ulen < 8 || ulen > tot - ihl) {
        d->stats.sink_bad++;
        return;
    }
    if (get16(udp + 6)) {
        uint8_t pseudo[12];
        memcpy(pseudo, ip + 12, 8);
        pseudo[8] = 0;
        pseudo[9] = 17;
        put16(pseudo + 10, ulen);
        if (fold(sum_fast(pseudo, 12) + sum_fast(udp, ulen)) != 0xFFFFu) {
            d->stats.sink_bad++;
            return;
        }
    }
    if (get16(udp + 2) != GEN_DST_PORT || ulen < 20 || !d->gen.last_seq) {
        d->stats.sink_other++;
        return;
    }
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++) seq = seq << 8 | udp[8 + i];
    uint32_t flow = (uint32_t)udp[16] << 24 | (uint32_t)udp[17] << 16 | get16(udp + 18);
    if (flow >= d->cfg.flows) {
        d->stats.sink_other++;
        return;
    }
    uint64_t *last = &d->gen.last_seq[flow];
    if (*last && seq + 1u <= *last) d->stats.sink_seq_errors++;
    else *last = seq + 1u;
    d->stats.sink_ok++;
}

void ixg_wire_tx(ixg_dev *d, const uint8_t *frame, uint32_t len) {
    if (d->capture) {
        uint32_t slot = (uint32_t)(d->captured++ % IXG_CAPTURE_SLOTS);
        uint32_t n = len < IXG_CAPTURE_BYTES ? len : IXG_CAPTURE_BYTES;
        memcpy(d->capture + (uint64_t)slot * IXG_CAPTURE_BYTES, frame, n);
        d->capture_len[slot] = len;
    }
    switch (d->cfg.wire) {
    case IXG_WIRE_GENERATOR:
    case IXG_WIRE_SINK:
        sink(d, frame, len);
        if (d->cfg.loopback) ixg_rx_deliver(d, frame, len);
        break;
    case IXG_WIRE_LOOPBACK:
        ixg_rx_deliver(d, frame, len);
        break;
    case IXG_WIRE_TAP:
        if (write(d->tap_fd, frame, len) == (ssize_t)len) d->stats.tap_tx++;
        else d->stats.tap_errors++;
        break;
    default:
        break;
    }
}

static int tap_open(ixg_dev *d, char *err, size_t errlen) {
    d->tap_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (d->tap_fd < 0) {
        snprintf(err, errlen, "cannot open /dev/net/tun: %s", strerror(errno));
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", d->cfg.tap_name);
    if (ioctl(d->tap_fd, TUNSETIFF, &ifr) < 0) {
        snprintf(err, errlen, "TUNSETIFF %s failed: %s", d->cfg.tap_name, strerror(errno));
        return -1;
    }
    snprintf(d->tap_name, sizeof d->tap_name, "%s", ifr.ifr_name);
    return 0;
}

int ixg_wire_open(ixg_dev *d, char *err, size_t errlen) {
    if (d->cfg.wire == IXG_WIRE_TAP) return tap_open(d, err, errlen);
    if (d->cfg.wire == IXG_WIRE_GENERATOR || d->cfg.wire == IXG_WIRE_SINK) {
        if (gen_open(d)) {
            snprintf(err, errlen, "out of memory for %u flows", d->cfg.flows);
            return -1;
        }
    }
    return 0;
}

void ixg_wire_close(ixg_dev *d) {
    replay_clear(&d->gen);
    if (d->tap_fd >= 0) close(d->tap_fd);
    d->tap_fd = -1;
    free(d->gen.flows);
    free(d->gen.payload);
    free(d->gen.last_seq);
    d->gen.flows = NULL;
    d->gen.payload = NULL;
    d->gen.last_seq = NULL;
}
