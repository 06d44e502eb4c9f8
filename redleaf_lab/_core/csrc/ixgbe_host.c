/* The C baseline: an l2fwd/ixy-fwd-like forwarding loop against the 82599 model, used
 * only to measure what the Python driver costs in comparison (issue 5, item 5).
 *
 * It talks to the NIC only through BAR0 and descriptor rings in the arena, like any
 * driver: the §4.6.3 init sequence (mask interrupts, CTRL.RST, wait for EEC.ARD and
 * RDRXCTL.DMAIDONE, link via AUTOC, §4.6.7 RX and §4.6.8 TX setup, queue enables,
 * promiscuous mode, wait for LINKS.UP), then a loop on queue 0: receive up to `batch`
 * frames (DD set, EOP required), re-arm each descriptor with a fresh buffer from a
 * LIFO mempool, write RDT once per batch (to the last re-armed index, so RDT never
 * catches up with RDH); touch one byte per frame; put the batch on the TX ring with
 * RS on every descriptor and write TDT once; reclaim transmitted buffers by their DD.
 * It reads DD with an acquire load before the length, and publishes descriptors before
 * the tail with a release store (see ixgbe_model.h). Single-threaded; the caller must
 * not use the NIC concurrently.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <string.h>
#include <time.h>

#include "ixgbe_internal.h"

#define BUF_BYTES 2048u
#define BUF_HEADROOM 64u /* pkt_addr = buffer + 64, as ixy lays its buffers out */
#define BUFS_PER_SLOT 3u /* buffers per ring slot: RX ring + TX ring + a batch in flight */

typedef struct {
    ixg_dev *d;
    int inline_mode;
    uint8_t *mem;
    uint64_t iova;
    uint32_t ring;
    uint32_t *pool; /* free buffer indices (a stack) */
    uint32_t pool_top;
    uint32_t *rx_buf, *tx_buf; /* buffer index held by each descriptor */
} host;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void wr(host *h, uint32_t off, uint32_t v) {
    bar_store32(h->d, off, v);
    if (h->inline_mode) ixg_process(h->d);
}

static uint32_t rd(host *h, uint32_t off) { return bar_load32(h->d, off); }

/* Poll until (reg & mask) == want, for up to one second. */
static int wait_reg(host *h, uint32_t off, uint32_t mask, uint32_t want) {
    int64_t deadline = now_ns() + 1000000000LL;
    while ((rd(h, off) & mask) != want) {
        if (h->inline_mode) ixg_process(h->d);
        if (now_ns() > deadline) return -1;
    }
    return 0;
}

uint64_t ixg_fwd_bench_bytes(uint32_t ring) {
    uint64_t rings = ((uint64_t)ring * 16u * 2u + 4095u) & ~4095ull;
    uint64_t meta = (((uint64_t)ring * 4u * 4u * 2u) + 4095u) & ~4095ull; /* indices */
    return rings + meta + (uint64_t)ring * BUFS_PER_SLOT * BUF_BYTES;
}

static uint64_t buf_iova(const host *h, uint32_t b) {
    uint64_t rings = ((uint64_t)h->ring * 32u + 4095u) & ~4095ull;
    uint64_t meta = (((uint64_t)h->ring * 32u) + 4095u) & ~4095ull;
    return h->iova + rings + meta + (uint64_t)b * BUF_BYTES;
}

static int init_nic(host *h, uint64_t rx_iova, uint64_t tx_iova, uint8_t *rx_ring) {
    uint32_t len = h->ring * 16u;
    /* §4.6.3.1: disable interrupts; §4.6.3.2: global reset, then wait for it */
    wr(h, IXG_EIMC, 0x7FFFFFFFu);
    wr(h, IXG_CTRL, IXG_CTRL_RST | IXG_CTRL_LNK_RST);
    if (wait_reg(h, IXG_CTRL, IXG_CTRL_RST | IXG_CTRL_LNK_RST, 0)) return -1;
    wr(h, IXG_EIMC, 0x7FFFFFFFu);
    /* §4.6.3: EEPROM auto-read done, DMA init done */
    if (wait_reg(h, IXG_EEC, IXG_EEC_ARD, IXG_EEC_ARD)) return -1;
    if (wait_reg(h, IXG_RDRXCTL, IXG_RDRXCTL_DMAIDONE, IXG_RDRXCTL_DMAIDONE)) return -1;
    /* §4.6.4: link: LMS = 10G serial, restart autonegotiation */
    uint32_t autoc = (rd(h, IXG_AUTOC) & ~IXG_AUTOC_LMS_MASK) | IXG_AUTOC_LMS_10G_SERIAL;
    wr(h, IXG_AUTOC, (autoc & ~(3u << 7)) | IXG_AUTOC_AN_RESTART);
    /* §4.6.7: RX with advanced one-buffer descriptors of 2 KiB, CRC stripped */
    wr(h, IXG_RXCTRL, 0);
    wr(h, IXG_HLREG0, rd(h, IXG_HLREG0) | IXG_HLREG0_RXCRCSTRP);
    wr(h, IXG_RDRXCTL, rd(h, IXG_RDRXCTL) | IXG_RDRXCTL_CRCSTRIP);
    wr(h, IXG_FCTRL, rd(h, IXG_FCTRL) | IXG_FCTRL_BAM);
    wr(h, IXG_SRRCTL(0), IXG_SRRCTL_DESCTYPE_ADV_ONEBUF | IXG_SRRCTL_DROP_EN | 2u);
    wr(h, IXG_RDBAL(0), (uint32_t)rx_iova);
    wr(h, IXG_RDBAH(0), (uint32_t)(rx_iova >> 32));
    wr(h, IXG_RDLEN(0), len);
    wr(h, IXG_RDH(0), 0);
    wr(h, IXG_RDT(0), 0);
    wr(h, IXG_RXCTRL, IXG_RXCTRL_RXEN);
    /* §4.6.8: TX with CRC insertion and padding; DMA TX enable */
    wr(h, IXG_HLREG0, rd(h, IXG_HLREG0) | IXG_HLREG0_TXCRCEN | IXG_HLREG0_TXPADEN);
    wr(h, IXG_TDBAL(0), (uint32_t)tx_iova);
    wr(h, IXG_TDBAH(0), (uint32_t)(tx_iova >> 32));
    wr(h, IXG_TDLEN(0), len);
    wr(h, IXG_TXDCTL(0), 36u | 8u << 8 | 4u << 16);
    wr(h, IXG_DMATXCTL, IXG_DMATXCTL_TE);
    /* §4.6.7: fill every RX descriptor, enable, then RDT = last descriptor */
    for (uint32_t i = 0; i < h->ring; i++) {
        uint32_t b = h->pool[--h->pool_top];
        uint64_t a = buf_iova(h, b) + BUF_HEADROOM, zero = 0;
        memcpy(rx_ring + i * 16u, &a, 8);
        memcpy(rx_ring + i * 16u + 8, &zero, 8);
        h->rx_buf[i] = b;
    }
    wr(h, IXG_RXDCTL(0), rd(h, IXG_RXDCTL(0)) | IXG_RXDCTL_ENABLE);
    if (wait_reg(h, IXG_RXDCTL(0), IXG_RXDCTL_ENABLE, IXG_RXDCTL_ENABLE)) return -1;
    wr(h, IXG_RDH(0), 0);
    /* §4.6.8: TDH = TDT = 0, enable */
    wr(h, IXG_TDH(0), 0);
    wr(h, IXG_TDT(0), 0);
    wr(h, IXG_TXDCTL(0), rd(h, IXG_TXDCTL(0)) | IXG_TXDCTL_ENABLE);
    if (wait_reg(h, IXG_TXDCTL(0), IXG_TXDCTL_ENABLE, IXG_TXDCTL_ENABLE)) return -1;
    wr(h, IXG_FCTRL, rd(h, IXG_FCTRL) | IXG_FCTRL_MPE | IXG_FCTRL_UPE);
    if (wait_reg(h, IXG_LINKS, IXG_LINKS_UP, IXG_LINKS_UP)) return -1;
    wr(h, IXG_RDT(0), h->ring - 1u); /* start receiving */
    return 0;
}

/* ixy-fwd's per-batch work: touch one byte per frame. */
static void touch_batch(void *ctx, uint8_t **frames, uint32_t *lens, uint32_t n) {
    (void)ctx;
    (void)lens;
    for (uint32_t i = 0; i < n; i++) frames[i][1]++;
}

int ixg_fwd_bench(ixg_dev *d, uint64_t mem_iova, uint64_t mem_bytes, uint32_t ring,
                  uint32_t batch, uint64_t max_packets, int64_t max_ns, ixg_fwd_result *out) {
    return ixg_fwd_bench_work(d, mem_iova, mem_bytes, ring, batch, max_packets, max_ns,
                              touch_batch, NULL, out);
}

int ixg_fwd_bench_work(ixg_dev *d, uint64_t mem_iova, uint64_t mem_bytes, uint32_t ring,
                       uint32_t batch, uint64_t max_packets, int64_t max_ns,
                       ixg_batch_work work, void *ctx, ixg_fwd_result *out) {
    uint64_t need = ixg_fwd_bench_bytes(ring);
    uint8_t *mem = ixg_translate(d, mem_iova, need);
    memset(out, 0, sizeof *out);
    if (!mem || mem_bytes < need || mem_iova % 4096u || ring < 8 || ring > 4096 ||
        ring % 8u || batch < 1 || batch > ring / 2u) {
        return -1;
    }
    uint64_t rings = ((uint64_t)ring * 32u + 4095u) & ~4095ull;
    host h = {.d = d, .inline_mode = !d->thread_started, .mem = mem, .iova = mem_iova,
              .ring = ring};
    uint8_t *rx_ring = mem, *tx_ring = mem + (uint64_t)ring * 16u;
    h.pool = (uint32_t *)(void *)(mem + rings);
    uint32_t nbufs = ring * BUFS_PER_SLOT;
    h.rx_buf = h.pool + nbufs;
    h.tx_buf = h.rx_buf + ring;
    memset(mem, 0, rings);
    for (uint32_t b = 0; b < nbufs; b++) h.pool[b] = nbufs - 1u - b;
    h.pool_top = nbufs;
    if (init_nic(&h, mem_iova, mem_iova + (uint64_t)ring * 16u, rx_ring)) return -2;

    uint32_t rx_next = 0, tx_next = 0, tx_clean = 0, got[4096];
    int64_t t0 = now_ns(), t = t0;
    uint64_t iter = 0, idle = 0;
    while (out->tx_packets < max_packets && t - t0 < max_ns) {
        /* RX: take completed descriptors, re-arm each with a fresh buffer */
        uint32_t n = 0, last = 0;
        while (n < batch && h.pool_top > 0) {
            uint8_t *desc = rx_ring + (uint64_t)rx_next * 16u;
            uint32_t st = atomic_load_explicit((_Atomic uint32_t *)(void *)(desc + 8),
                                               memory_order_acquire);
            if (!(st & IXG_RXD_STAT_DD)) break;
            if (!(st & IXG_RXD_STAT_EOP)) return -1; /* multi-descriptor: not configured */
            uint16_t len;
            memcpy(&len, desc + 12, 2);
            uint32_t b = h.rx_buf[rx_next];
            got[n++] = b | (uint32_t)len << 16;
            uint32_t nb = h.pool[--h.pool_top];
            uint64_t a = buf_iova(&h, nb) + BUF_HEADROOM, zero = 0;
            memcpy(desc, &a, 8);
            memcpy(desc + 8, &zero, 8);
            h.rx_buf[rx_next] = nb;
            last = rx_next;
            rx_next = rx_next + 1u == ring ? 0 : rx_next + 1u;
        }
        if (n) {
            out->rx_packets += n;
            wr(&h, IXG_RDT(0), last);
        }
        /* the per-batch work: ixy-fwd touches one byte per frame; Maglev steers */
        uint8_t *frames[4096];
        uint32_t lens[4096];
        for (uint32_t i = 0; i < n; i++) {
            frames[i] = mem + (buf_iova(&h, got[i] & 0xFFFFu) - mem_iova + BUF_HEADROOM);
            lens[i] = got[i] >> 16;
        }
        if (n) { /* the work may change a frame's length, or set it to 0: drop it */
            work(ctx, frames, lens, n);
            uint32_t kept = 0;
            for (uint32_t i = 0; i < n; i++) {
                if (lens[i] == 0) {
                    h.pool[h.pool_top++] = got[i] & 0xFFFFu;
                    out->tx_dropped++;
                } else {
                    got[kept++] = (got[i] & 0xFFFFu) | lens[i] << 16;
                }
            }
            n = kept;
        }
        /* TX: reclaim sent buffers, then queue the batch and write TDT once */
        while (tx_clean != tx_next) {
            uint8_t *desc = tx_ring + (uint64_t)tx_clean * 16u;
            uint32_t st = atomic_load_explicit((_Atomic uint32_t *)(void *)(desc + 12),
                                               memory_order_acquire);
            if (!(st & IXG_TXD_STAT_DD)) break;
            h.pool[h.pool_top++] = h.tx_buf[tx_clean];
            tx_clean = tx_clean + 1u == ring ? 0 : tx_clean + 1u;
        }
        uint32_t sent = 0;
        for (; sent < n; sent++) {
            uint32_t nxt = tx_next + 1u == ring ? 0 : tx_next + 1u;
            if (nxt == tx_clean) break; /* TX ring full */
            uint8_t *desc = tx_ring + (uint64_t)tx_next * 16u;
            uint32_t b = got[sent] & 0xFFFFu, len = got[sent] >> 16;
            uint64_t a = buf_iova(&h, b) + BUF_HEADROOM;
            uint32_t cmd = len | IXG_TXD_DTYP_DATA | IXG_TXD_CMD_DEXT | IXG_TXD_CMD_EOP |
                           IXG_TXD_CMD_IFCS | IXG_TXD_CMD_RS;
            uint32_t olinfo = len << IXG_TXD_PAYLEN_SHIFT;
            memcpy(desc, &a, 8);
            memcpy(desc + 8, &cmd, 4);
            memcpy(desc + 12, &olinfo, 4);
            h.tx_buf[tx_next] = b;
            tx_next = nxt;
        }
        for (uint32_t i = sent; i < n; i++) h.pool[h.pool_top++] = got[i] & 0xFFFFu;
        out->tx_dropped += n - sent;
        out->tx_packets += sent;
        if (sent) wr(&h, IXG_TDT(0), tx_next);
        if (!n && h.inline_mode) ixg_process(d); /* nothing arrived: let the wire run */
        if (!n && !h.inline_mode && (++idle & 63u) == 0) sched_yield(); /* the device's turn */
        if ((++iter & 63u) == 0 || !n) t = now_ns();
    }
    out->ns = now_ns() - t0;
    /* stop DMA before the caller frees the rings and buffers */
    wr(&h, IXG_RXDCTL(0), 0);
    wr(&h, IXG_TXDCTL(0), 0);
    wr(&h, IXG_CTRL, IXG_CTRL_RST);
    if (!h.inline_mode) wait_reg(&h, IXG_CTRL, IXG_CTRL_RST, 0);
    return 0;
}
