/* 82599 model: registers, reset, link, queue enables, statistics, processing passes and
 * the device thread. Rings are in ixgbe_ring.c, the wire in ixgbe_wire.c. Section
 * numbers are those of the Intel 82599 10 GbE Controller Datasheet, Rev. 3.3. Locking
 * and memory ordering: see ixgbe_model.h.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ixgbe_internal.h"

uint8_t *ixg_translate(const ixg_dev *d, uint64_t iova, uint64_t len) {
    if (iova < d->iova_base || len > d->arena_size) return NULL;
    uint64_t off = iova - d->iova_base;
    if (off > d->arena_size - len) return NULL;
    return d->arena + off;
}

uint32_t ixg_max_frame(const ixg_dev *d) {
    /* §8.2.3 MAXFRS.MFS (31:16) counts the FCS and applies with HLREG0.JUMBOEN;
     * without it the MAC accepts standard frames of 1518 B (1514 B without FCS). */
    if (!(bar_load32(d, IXG_HLREG0) & IXG_HLREG0_JUMBOEN)) return IXG_MAX_STD_FRAME;
    uint32_t mfs = bar_load32(d, IXG_MAXFRS) >> 16;
    if (mfs < IXG_MIN_FRAME + IXG_FCS) mfs = IXG_MIN_FRAME + IXG_FCS;
    mfs -= IXG_FCS;
    return mfs > IXG_STAGE_BYTES ? IXG_STAGE_BYTES : mfs;
}

double ixg_line_rate(uint32_t frame_bytes) {
    /* 10 Gb/s over frame + FCS (4) + preamble/SFD (8) + inter-frame gap (12) bytes */
    return 10e9 / 8.0 / (double)(frame_bytes + IXG_FCS + 20u);
}

/* §4.6.3.2 global reset (CTRL.RST): every register returns to its default, the queues
 * stop, the link goes down, the statistics clear; the EEPROM auto-read (EEC.ARD) and the
 * DMA init (RDRXCTL.DMAIDONE) are complete at once here, and RAL/RAH(0) hold the MAC. */
static void reset_locked(ixg_dev *d) {
    /* CTRL (offset 0) is cleared last: a host that sees RST clear sees the reset done */
    memset(d->bar + 4, 0, IXG_BAR_SIZE - 4);
    for (uint32_t q = 0; q < IXG_MAX_QUEUES; q++) {
        d->rx[q] = (ixg_ring){0};
        d->tx[q] = (ixg_ring){0};
        bar_store32(d, IXG_SRRCTL(q), 2u); /* BSIZEPACKET = 2 KiB, legacy descriptors */
    }
    bar_store32(d, IXG_EEC, IXG_EEC_PRES | IXG_EEC_ARD);
    bar_store32(d, IXG_RDRXCTL, IXG_RDRXCTL_DMAIDONE);
    bar_store32(d, IXG_HLREG0, IXG_HLREG0_TXCRCEN | IXG_HLREG0_RXCRCSTRP | IXG_HLREG0_TXPADEN);
    bar_store32(d, IXG_MAXFRS, (IXG_MAX_STD_FRAME + IXG_FCS) << 16);
    const uint8_t *m = d->cfg.mac;
    bar_store32(d, IXG_RAL0, (uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 |
                                 (uint32_t)m[3] << 24);
    bar_store32(d, IXG_RAH0, (uint32_t)m[4] | (uint32_t)m[5] << 8 | IXG_RAH_AV);
    d->ims = 0;
    d->link_up = 0;
    for (int i = 0; i < ST_COUNT; i++) {
        atomic_store(&d->counters[i], 0);
        d->latch[i] = 0;
    }
    d->stats.resets++;
    bar_store32(d, IXG_CTRL, 0); /* release: after every other register */
}

/* §4.6.4: AUTOC.AN_RESTART (self-clearing) starts link setup; the model's link partner
 * answers at once: LINKS.UP with the speed of AUTOC.LMS (10G serial: 10 Gb/s). */
static void link_locked(ixg_dev *d, uint32_t autoc) {
    bar_store32(d, IXG_AUTOC, autoc & ~IXG_AUTOC_AN_RESTART);
    uint32_t lms = autoc & IXG_AUTOC_LMS_MASK;
    uint32_t speed = lms == IXG_AUTOC_LMS_10G_SERIAL || lms == (4u << 13) || lms == (6u << 13)
                         ? IXG_LINKS_SPEED_10G
                         : IXG_LINKS_SPEED_1G;
    d->link_up = 1;
    bar_store32(d, IXG_LINKS, IXG_LINKS_UP | speed);
}

static void registers_locked(ixg_dev *d) {
    uint32_t ctrl = bar_load32(d, IXG_CTRL);
    if (ctrl & IXG_CTRL_RST) { /* §8.2.3: RST and LNK_RST self-clear */
        reset_locked(d);
    } else if (ctrl & IXG_CTRL_LNK_RST) {
        d->link_up = 0;
        bar_store32(d, IXG_LINKS, 0);
        bar_store32(d, IXG_CTRL, ctrl & ~IXG_CTRL_LNK_RST);
    }
    /* §8.2.3: EIMS writes of 1 set mask bits, EIMC writes of 1 clear them */
    uint32_t eimc = bar_load32(d, IXG_EIMC), eims = bar_load32(d, IXG_EIMS);
    if (eims != d->ims) d->ims |= eims;
    if (eimc) {
        d->ims &= ~eimc;
        bar_store32(d, IXG_EIMC, 0);
    }
    if (eims != d->ims) bar_store32(d, IXG_EIMS, d->ims);
    bar_store32(d, IXG_EICR, 0); /* no interrupt causes are modelled */
    uint32_t autoc = bar_load32(d, IXG_AUTOC);
    if (autoc & IXG_AUTOC_AN_RESTART) link_locked(d, autoc);

    /* §4.6.7 / §4.6.8: a queue starts when software sets RXDCTL/TXDCTL.ENABLE; the
     * bit reads back set once the queue runs. A ring outside DMA memory never starts. */
    for (uint32_t q = 0; q < d->cfg.queues; q++) {
        int want = (bar_load32(d, IXG_RXDCTL(q)) & IXG_RXDCTL_ENABLE) != 0;
        if (want && !d->rx[q].enabled && ixg_ring_enable_rx(d, q)) {
            bar_store32(d, IXG_RXDCTL(q), bar_load32(d, IXG_RXDCTL(q)) & ~IXG_RXDCTL_ENABLE);
            d->stats.bad_ring++;
        } else if (!want) {
            d->rx[q].enabled = 0;
        }
        want = (bar_load32(d, IXG_TXDCTL(q)) & IXG_TXDCTL_ENABLE) != 0;
        if (want && !d->tx[q].enabled && ixg_ring_enable_tx(d, q)) {
            bar_store32(d, IXG_TXDCTL(q), bar_load32(d, IXG_TXDCTL(q)) & ~IXG_TXDCTL_ENABLE);
            d->stats.bad_ring++;
        } else if (!want) {
            d->tx[q].enabled = 0;
        }
        /* the host may set a head itself (ixy writes RDH/TDH = 0 after enabling) */
        uint32_t h;
        if (d->rx[q].enabled && (h = bar_load32(d, IXG_RDH(q))) != d->rx[q].head) {
            if (h < d->rx[q].count) d->rx[q].head = h;
            else bar_store32(d, IXG_RDH(q), d->rx[q].head);
        }
        if (d->tx[q].enabled && (h = bar_load32(d, IXG_TDH(q))) != d->tx[q].head) {
            if (h < d->tx[q].count) d->tx[q].head = h;
            else bar_store32(d, IXG_TDH(q), d->tx[q].head);
        }
    }
    /* queues beyond the modelled ones never start: ENABLE does not read back */
    for (uint32_t q = d->cfg.queues; q < IXG_MAX_QUEUES; q++) {
        uint32_t v = bar_load32(d, IXG_RXDCTL(q));
        if (v & IXG_RXDCTL_ENABLE) bar_store32(d, IXG_RXDCTL(q), v & ~IXG_RXDCTL_ENABLE);
        v = bar_load32(d, IXG_TXDCTL(q));
        if (v & IXG_TXDCTL_ENABLE) bar_store32(d, IXG_TXDCTL(q), v & ~IXG_TXDCTL_ENABLE);
    }
}

/* The device thread re-takes the lock right after releasing it, so a plain mutex could
 * starve host calls (statistics, quiesce on the crash path). A host caller announces
 * itself in `waiters`; the thread steps aside until the caller holds the lock. */
static void host_lock(ixg_dev *d) {
    atomic_fetch_add(&d->waiters, 1);
    pthread_mutex_lock(&d->lock);
    atomic_fetch_sub(&d->waiters, 1);
}

static int pass_locked(ixg_dev *d, int inline_mode) {
    d->stats.passes++;
    registers_locked(d);
    int moved = 0;
    if (d->link_up && (bar_load32(d, IXG_DMATXCTL) & IXG_DMATXCTL_TE)) {
        for (uint32_t q = 0; q < d->cfg.queues; q++) {
            if (d->tx[q].enabled) moved += ixg_tx_drain(d, q, d->tx[q].count);
        }
    }
    moved += ixg_wire_rx(d, inline_mode);
    return moved;
}

int ixg_process(ixg_dev *d) {
    host_lock(d);
    int moved = pass_locked(d, !d->thread_started);
    pthread_mutex_unlock(&d->lock);
    return moved;
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Like hardware, the thread polls. Without work it yields the CPU every 64 passes (so a
 * driver thread sharing its core gets to run), and after 100 ms it sleeps 200 us per
 * pass, so an idle NIC costs little. */
static void *device_thread(void *arg) {
    ixg_dev *d = arg;
    uint32_t idle = 0;
    int64_t idle_since = 0;
    while (atomic_load_explicit(&d->thread_run, memory_order_acquire)) {
        pthread_mutex_lock(&d->lock);
        int moved = pass_locked(d, 0);
        pthread_mutex_unlock(&d->lock);
        while (atomic_load_explicit(&d->waiters, memory_order_acquire)) sched_yield();
        if (moved) {
            idle = 0;
            continue;
        }
        if (idle++ == 0) idle_since = mono_ns();
        if (idle % 64u) continue;
        int64_t quiet = mono_ns() - idle_since;
        if (quiet > 100000000LL) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        } else {
            sched_yield();
        }
    }
    return NULL;
}

int ixg_start_thread(ixg_dev *d) {
    if (d->thread_started) return -1;
    atomic_store(&d->thread_run, 1);
    d->gen.last_ns = 0; /* the rate limiter starts from now */
    if (pthread_create(&d->thread, NULL, device_thread, d) != 0) return -1;
    d->thread_started = 1;
    return 0;
}

void ixg_stop_thread(ixg_dev *d) {
    if (!d->thread_started) return;
    atomic_store(&d->thread_run, 0);
    pthread_join(d->thread, NULL);
    d->thread_started = 0;
}

int ixg_thread_running(ixg_dev *d) { return d->thread_started; }

void ixg_quiesce(ixg_dev *d) {
    /* Like a function-level reset: every queue stops and every register the driver set
     * returns to its default, so nothing refers to the dead driver's memory after this. */
    host_lock(d);
    reset_locked(d);
    pthread_mutex_unlock(&d->lock);
}

/* §8.2.3.23: statistic register -> counter, and whether it is the low (1) or high (2)
 * dword of a 64-bit pair (0: a 32-bit counter). -1: not a modelled statistic. */
static int stat_index(uint32_t off, int *part) {
    *part = 0;
    switch (off) {
    case IXG_MPC(0): return ST_MPC0;
    case IXG_CRCERRS: return ST_CRCERRS;
    case IXG_GPRC: return ST_GPRC;
    case IXG_BPRC: return ST_BPRC;
    case IXG_MPRC: return ST_MPRC;
    case IXG_GPTC: return ST_GPTC;
    case IXG_RUC: return ST_RUC;
    case IXG_ROC: return ST_ROC;
    case IXG_TPR: return ST_TPR;
    case IXG_TPT: return ST_TPT;
    case IXG_GORCL: *part = 1; return ST_GORC;
    case IXG_GORCH: *part = 2; return ST_GORC;
    case IXG_GOTCL: *part = 1; return ST_GOTC;
    case IXG_GOTCH: *part = 2; return ST_GOTC;
    default: return -1;
    }
}

uint32_t ixg_read_reg(ixg_dev *d, uint32_t off) {
    if (off >= IXG_BAR_SIZE || off % 4) return 0xFFFFFFFFu; /* like a master abort */
    int part, i = off >= IXG_STATS_FIRST && off < IXG_STATS_END ? stat_index(off, &part) : -1;
    if (i < 0) return bar_load32(d, off);
    host_lock(d);
    uint32_t v;
    if (part == 2) { /* high dword: the value latched by the low read, then cleared */
        v = d->latch[i];
        d->latch[i] = 0;
    } else {
        uint64_t all = atomic_exchange(&d->counters[i], 0);
        if (part == 1) {
            d->latch[i] = (uint32_t)(all >> 32);
            v = (uint32_t)all;
        } else {
            v = all > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)all;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return v;
}

void ixg_get_stats(ixg_dev *d, ixg_stats *out) {
    host_lock(d);
    *out = d->stats;
    pthread_mutex_unlock(&d->lock);
}

uint64_t ixg_generate(ixg_dev *d, uint64_t n) {
    host_lock(d);
    registers_locked(d);
    uint64_t done = ixg_wire_generate(d, n, 0);
    pthread_mutex_unlock(&d->lock);
    return done;
}

int ixg_set_replay(ixg_dev *d, const uint8_t *blob, const uint64_t *offsets, uint32_t count,
                   const uint64_t *cdf) {
    host_lock(d);
    int rc = ixg_wire_set_replay(d, blob, offsets, count, cdf);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int ixg_inject(ixg_dev *d, const uint8_t *frame, uint32_t len) {
    host_lock(d);
    registers_locked(d);
    int ok = ixg_rx_deliver(d, frame, len);
    pthread_mutex_unlock(&d->lock);
    return ok;
}

int ixg_captured(ixg_dev *d, uint32_t k, uint8_t *out, uint32_t cap) {
    host_lock(d);
    int len = -1;
    if (d->capture && k < IXG_CAPTURE_SLOTS && k < d->captured) {
        uint32_t slot = (uint32_t)((d->captured - 1u - k) % IXG_CAPTURE_SLOTS);
        len = (int)d->capture_len[slot];
        memcpy(out, d->capture + (uint64_t)slot * IXG_CAPTURE_BYTES,
               (uint32_t)len < cap ? (uint32_t)len : cap);
    }
    pthread_mutex_unlock(&d->lock);
    return len;
}

void *ixg_bar(ixg_dev *d) { return d->bar; }
uint64_t ixg_bar_size(ixg_dev *d) {
    (void)d;
    return IXG_BAR_SIZE;
}
const char *ixg_tap_name(ixg_dev *d) { return d->tap_name; }

static const char *check_config(const ixg_config *c) {
    if (c->wire > IXG_WIRE_TAP) return "unknown wire";
    if (c->queues < 1 || c->queues > IXG_MAX_QUEUES) return "queues must be 1..16";
    if (c->frame_bytes < IXG_MIN_FRAME || c->frame_bytes > IXG_MAX_STD_FRAME) {
        return "frame size must be 60..1514 bytes without FCS";
    }
    if (c->flows < 1 || c->flows > IXG_MAX_FLOWS) return "flows must be 1..4194304";
    if (!(c->rate_pps >= 0.0) || c->rate_pps > ixg_line_rate(c->frame_bytes) * 1.000001) {
        return "rate_pps must be 0 (unlimited) or up to the 10 GbE line rate";
    }
    if (c->burst < 1 || c->burst > 4096) return "burst must be 1..4096";
    return NULL;
}

ixg_dev *ixg_create(void *arena, uint64_t arena_size, uint64_t iova_base,
                    const ixg_config *cfg, char *err, size_t errlen) {
    const char *why = !arena || !arena_size ? "no DMA arena" : check_config(cfg);
    if (why) {
        snprintf(err, errlen, "%s", why);
        return NULL;
    }
    ixg_dev *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->arena = arena;
    d->arena_size = arena_size;
    d->iova_base = iova_base;
    d->cfg = *cfg;
    d->cfg.tap_name[sizeof d->cfg.tap_name - 1] = 0;
    d->tap_fd = -1;
    pthread_mutex_init(&d->lock, NULL);
    d->bar = aligned_alloc(4096, IXG_BAR_SIZE);
    if (cfg->capture) d->capture = malloc((size_t)IXG_CAPTURE_SLOTS * IXG_CAPTURE_BYTES);
    if (!d->bar || (cfg->capture && !d->capture)) {
        snprintf(err, errlen, "out of memory");
        ixg_destroy(d);
        return NULL;
    }
    if (ixg_wire_open(d, err, errlen)) {
        ixg_destroy(d);
        return NULL;
    }
    reset_locked(d);
    d->stats.resets = 0;
    return d;
}

void ixg_destroy(ixg_dev *d) {
    if (!d) return;
    ixg_stop_thread(d);
    ixg_wire_close(d);
    pthread_mutex_destroy(&d->lock);
    for (uint32_t q = 0; q < IXG_MAX_QUEUES; q++) free(d->stage[q]);
    free(d->capture);
    free(d->bar);
    free(d);
}
