/* 82599 model: the RX and TX descriptor rings (datasheet Rev. 3.3 §7.1 receive, §7.2
 * transmit), the receive filter (FCTRL, RAL/RAH) and RSS queue choice (MRQC).
 *
 * RX (§7.1.6, §7.1.9): the device owns descriptors RDH .. RDT-1. For each frame it reads
 * the descriptor's read format (packet buffer address at bytes 0-7; bit 0 is ignored),
 * writes the frame into that buffer, then the write-back format: advanced (SRRCTL
 * DESCTYPE = 1) has the length at bytes 12-13 and status_error at 8-11 (DD bit 0, EOP
 * bit 1); legacy has the length at 8-9 and the status byte at 12. A frame longer than
 * the buffer (SRRCTL.BSIZEPACKET) spans several descriptors, EOP on the last. A buffer
 * outside DMA memory is written back as DD|EOP with RXE and length 0, and skipped.
 *
 * TX (§7.2.3.2.4, §7.2.3): the device owns TDH .. TDT-1. An advanced data descriptor
 * (DEXT, DTYP = 3) or a legacy one has the buffer address at 0-7 and cmd_type_len at
 * 8-11 (length 15:0, EOP, IFCS, RS); context descriptors (DTYP = 2) are consumed. A
 * frame ends at EOP; it is sent unless it is a runt (< 60 B, or < 14 B when
 * HLREG0.TXPADEN pads it to 60), oversized (> max frame) or has a buffer outside DMA
 * memory: those are counted and dropped. With RS the status dword (12-15) gets DD.
 * Locking: every function here runs under d->lock.
 */
#include <stdlib.h>
#include <string.h>

#include "ixgbe_internal.h"

/* Opens ring `r` from its base/length registers and takes its head register (a head
 * past the end restarts at 0); the caller sets what is particular to RX or TX, then
 * `enabled`. -1 (ring left zeroed) if the base or length is bad. */
static int ring_open(ixg_dev *d, ixg_ring *r, uint32_t bal_reg, uint32_t bah_reg,
                     uint32_t len_reg, uint32_t head_reg) {
    *r = (ixg_ring){0};
    uint64_t base = (uint64_t)bar_load32(d, bah_reg) << 32 | bar_load32(d, bal_reg);
    uint32_t len = bar_load32(d, len_reg);
    /* §8.2.3: the base is 128-byte aligned, the length a multiple of 128 bytes */
    if (base & 0x7Fu || len == 0 || len % 128u || len > (1u << 20)) return -1;
    uint8_t *ring = ixg_translate(d, base, len);
    if (!ring) return -1;
    r->ring = ring;
    r->count = len / 16u;
    r->head = bar_load32(d, head_reg);
    if (r->head >= r->count) r->head = 0;
    bar_store32(d, head_reg, r->head);
    return 0;
}

int ixg_ring_enable_rx(ixg_dev *d, uint32_t q) {
    ixg_ring *r = &d->rx[q];
    if (ring_open(d, r, IXG_RDBAL(q), IXG_RDBAH(q), IXG_RDLEN(q), IXG_RDH(q))) return -1;
    uint32_t srrctl = bar_load32(d, IXG_SRRCTL(q));
    uint32_t kib = srrctl & IXG_SRRCTL_BSIZEPKT_MASK; /* §8.2.3, 1 KiB units */
    r->bufsize = (kib ? kib : 2u) * 1024u;
    r->legacy = (srrctl & IXG_SRRCTL_DESCTYPE_MASK) == 0;
    r->enabled = 1;
    return 0;
}

int ixg_ring_enable_tx(ixg_dev *d, uint32_t q) {
    ixg_ring *r = &d->tx[q];
    if (ring_open(d, r, IXG_TDBAL(q), IXG_TDBAH(q), IXG_TDLEN(q), IXG_TDH(q))) return -1;
    r->enabled = 1;
    return 0;
}

uint32_t ixg_rx_free(ixg_dev *d, uint32_t q) {
    ixg_ring *r = &d->rx[q];
    if (!r->enabled) return 0;
    uint32_t tail = bar_load32(d, IXG_RDT(q)); /* acquire: descriptors before it visible */
    if (tail >= r->count) return 0;            /* a bad tail is ignored until fixed */
    return tail >= r->head ? tail - r->head : tail + r->count - r->head;
}

static void rx_writeback(ixg_ring *r, uint8_t *desc, uint32_t len, uint32_t status) {
    if (r->legacy) { /* legacy: length 8-9, checksum 10-11, status 12, errors 13 */
        uint32_t w2 = len & 0xFFFFu;
        memcpy(desc + 8, &w2, 4);
        atomic_store_explicit((_Atomic uint32_t *)(void *)(desc + 12), status & 0xFFu,
                              memory_order_release);
        return;
    }
    uint64_t w0 = 0; /* pkt_info/hdr_info, RSS hash: not modelled */
    uint32_t w3 = len & 0xFFFFu;
    memcpy(desc, &w0, 8);
    memcpy(desc + 12, &w3, 4);
    atomic_store_explicit((_Atomic uint32_t *)(void *)(desc + 8), status, memory_order_release);
}

uint8_t *ixg_rx_slot(ixg_dev *d, uint32_t q, uint32_t len, int *bad) {
    ixg_ring *r = &d->rx[q];
    *bad = 0;
    while (ixg_rx_free(d, q)) {
        uint8_t *desc = r->ring + (uint64_t)r->head * 16u;
        uint64_t addr;
        memcpy(&addr, desc, 8);
        uint8_t *buf = ixg_translate(d, addr & ~1ull, len);
        if (buf) return buf;
        /* a buffer outside DMA memory: hand the descriptor back with an error */
        rx_writeback(r, desc, 0,
                     IXG_RXD_STAT_DD | IXG_RXD_STAT_EOP | (r->legacy ? 0u : IXG_RXD_ERR_RXE));
        r->head = r->head + 1u == r->count ? 0 : r->head + 1u;
        bar_store32(d, IXG_RDH(q), r->head);
        d->stats.rx_bad_addr++;
        *bad = 1;
    }
    return NULL;
}

void ixg_rx_commit(ixg_dev *d, uint32_t q, uint32_t len) {
    ixg_ring *r = &d->rx[q];
    rx_writeback(r, r->ring + (uint64_t)r->head * 16u, len, IXG_RXD_STAT_DD | IXG_RXD_STAT_EOP);
    r->head = r->head + 1u == r->count ? 0 : r->head + 1u;
    bar_store32(d, IXG_RDH(q), r->head); /* release, after the descriptor */
}

static void rx_commit_part(ixg_dev *d, uint32_t q, uint32_t len, int eop) {
    ixg_ring *r = &d->rx[q];
    rx_writeback(r, r->ring + (uint64_t)r->head * 16u, len,
                 IXG_RXD_STAT_DD | (eop ? IXG_RXD_STAT_EOP : 0u));
    r->head = r->head + 1u == r->count ? 0 : r->head + 1u;
    bar_store32(d, IXG_RDH(q), r->head);
}

/* A simple stand-in for the RSS Toeplitz hash: mixes the IPv4 addresses and ports. */
static uint32_t flow_hash(const uint8_t *frame, uint32_t len) {
    if (len < 38 || frame[12] != 0x08 || frame[13] != 0x00) return 0;
    uint32_t h = 2166136261u;
    for (uint32_t i = 26; i < 38; i++) h = (h ^ frame[i]) * 16777619u;
    h ^= h >> 16; /* FNV-1a's low bits depend only on the inputs' low bits: mix down */
    h *= 0x85EBCA6Bu;
    return h ^ (h >> 13);
}

uint32_t ixg_flow_queue(ixg_dev *d, uint32_t hash) {
    uint32_t mrqc = bar_load32(d, IXG_MRQC) & IXG_MRQC_MRQE_MASK;
    return mrqc == IXG_MRQC_RSS ? hash % d->cfg.queues : 0;
}

uint32_t ixg_frame_hash(const uint8_t *frame, uint32_t len) { return flow_hash(frame, len); }

/* §7.1: destination filter. Broadcast needs FCTRL.BAM (or MPE), multicast FCTRL.MPE,
 * unicast FCTRL.UPE or a match with RAL/RAH(0) while RAH.AV is set. */
int ixg_rx_accept(ixg_dev *d, const uint8_t *frame) {
    uint32_t fctrl = bar_load32(d, IXG_FCTRL);
    static const uint8_t bcast[6] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    if (!memcmp(frame, bcast, 6)) return (fctrl & (IXG_FCTRL_BAM | IXG_FCTRL_MPE)) != 0;
    if (frame[0] & 1u) return (fctrl & IXG_FCTRL_MPE) != 0;
    if (fctrl & IXG_FCTRL_UPE) return 1;
    uint32_t ral = bar_load32(d, IXG_RAL0), rah = bar_load32(d, IXG_RAH0);
    uint8_t mac[6] = {(uint8_t)ral, (uint8_t)(ral >> 8), (uint8_t)(ral >> 16),
                      (uint8_t)(ral >> 24), (uint8_t)rah, (uint8_t)(rah >> 8)};
    return (rah & IXG_RAH_AV) && !memcmp(frame, mac, 6);
}

int ixg_rx_ready(const ixg_dev *d) {
    return d->link_up && (bar_load32(d, IXG_RXCTRL) & IXG_RXCTRL_RXEN);
}

void ixg_rx_count(ixg_dev *d, const uint8_t *frame, uint32_t len, uint64_t frames) {
    count(d, ST_GPRC, frames);
    count(d, ST_TPR, frames);
    count(d, ST_GORC, (uint64_t)(len + IXG_FCS) * frames); /* octets include the FCS */
    if (frame[0] & 1u) {
        static const uint8_t bcast[6] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
        count(d, memcmp(frame, bcast, 6) ? ST_MPRC : ST_BPRC, frames);
    }
    d->stats.rx_packets += frames;
    d->stats.rx_bytes += (uint64_t)len * frames;
}

void ixg_rx_miss(ixg_dev *d, uint64_t frames) {
    count(d, ST_MPC0, frames); /* §8.2.3.23: no room in the ring: missed */
    count(d, ST_TPR, frames);
    d->stats.rx_missed += frames;
}

int ixg_rx_deliver(ixg_dev *d, const uint8_t *frame, uint32_t len) {
    uint8_t padded[IXG_MIN_FRAME];
    if (!ixg_rx_ready(d)) {
        d->stats.rx_missed++;
        return 0;
    }
    if (len < 14) { /* not even an Ethernet header: a runt (RUC) */
        count(d, ST_RUC, 1);
        return 0;
    }
    if (len > ixg_max_frame(d)) { /* §8.2.3.23: oversized frames are counted in ROC */
        count(d, ST_ROC, 1);
        d->stats.rx_oversize++;
        return 0;
    }
    if (len < IXG_MIN_FRAME) { /* a short frame arrives padded on a real wire */
        memset(padded, 0, sizeof padded);
        memcpy(padded, frame, len);
        frame = padded;
        len = IXG_MIN_FRAME;
    }
    if (!ixg_rx_accept(d, frame)) {
        d->stats.rx_filtered++;
        return 0;
    }
    uint32_t q = ixg_flow_queue(d, flow_hash(frame, len));
    ixg_ring *r = &d->rx[q];
    uint32_t need = r->enabled ? (len + r->bufsize - 1u) / r->bufsize : 1u;
    if (!r->enabled || ixg_rx_free(d, q) < need) {
        ixg_rx_miss(d, 1);
        return 0;
    }
    for (uint32_t off = 0; off < len;) {
        uint32_t part = len - off < r->bufsize ? len - off : r->bufsize;
        int bad;
        uint8_t *buf = ixg_rx_slot(d, q, part, &bad);
        if (!buf) { /* the rest of the ring had bad buffers */
            ixg_rx_miss(d, 1);
            return 0;
        }
        memcpy(buf, frame + off, part);
        off += part;
        rx_commit_part(d, q, part, off == len);
    }
    ixg_rx_count(d, frame, len, 1);
    return 1;
}

typedef struct {
    int pad;            /* HLREG0.TXPADEN */
    uint32_t max_frame; /* longest frame without FCS */
    uint64_t frames, octets;
} tx_batch;

static void tx_finish(ixg_dev *d, tx_batch *b, const uint8_t *frame, uint32_t len, int bad) {
    uint8_t padded[IXG_MIN_FRAME];
    if (bad & 1) {
        d->stats.tx_bad_addr++;
    } else if ((bad & 2) || len > b->max_frame) {
        d->stats.tx_oversize++;
    } else if (len < (b->pad ? 14u : IXG_MIN_FRAME)) {
        d->stats.tx_runt++;
    } else {
        if (len < IXG_MIN_FRAME) { /* §8.2.3 HLREG0.TXPADEN: pad short frames */
            memset(padded, 0, sizeof padded);
            memcpy(padded, frame, len);
            frame = padded;
            len = IXG_MIN_FRAME;
        }
        b->frames++;
        b->octets += len + IXG_FCS; /* GOTC counts the FCS */
        d->stats.tx_bytes += len;
        ixg_wire_tx(d, frame, len);
    }
}

int ixg_tx_drain(ixg_dev *d, uint32_t q, uint32_t budget) {
    ixg_ring *r = &d->tx[q];
    uint32_t tail = bar_load32(d, IXG_TDT(q)); /* acquire: descriptors before it visible */
    if (tail >= r->count) return 0;
    int frames = 0;
    tx_batch b = {.pad = (bar_load32(d, IXG_HLREG0) & IXG_HLREG0_TXPADEN) != 0,
                  .max_frame = ixg_max_frame(d)};
    for (uint32_t n = 0; r->head != tail && n < budget; n++) {
        uint8_t *desc = r->ring + (uint64_t)r->head * 16u;
        uint64_t addr;
        uint32_t cmd;
        memcpy(&addr, desc, 8);
        memcpy(&cmd, desc + 8, 4);
        uint32_t dtyp = cmd & IXG_TXD_DTYP_MASK;
        if (!(cmd & IXG_TXD_CMD_DEXT) || dtyp == IXG_TXD_DTYP_DATA) {
            uint32_t len = cmd & 0xFFFFu;
            const uint8_t *buf = len ? ixg_translate(d, addr, len) : NULL;
            if (len && !buf) r->stage_bad |= 1;
            if ((cmd & IXG_TXD_CMD_EOP) && r->stage_len == 0 && !r->stage_bad) {
                tx_finish(d, &b, buf, len, 0); /* the common case: one descriptor per frame */
                frames++;
            } else {
                if (!d->stage[q]) d->stage[q] = malloc(IXG_STAGE_BYTES);
                if (!d->stage[q] || r->stage_len + len > IXG_STAGE_BYTES) r->stage_bad |= 2;
                if (buf && !r->stage_bad) memcpy(d->stage[q] + r->stage_len, buf, len);
                r->stage_len += len;
                if (cmd & IXG_TXD_CMD_EOP) {
                    tx_finish(d, &b, d->stage[q], r->stage_len, r->stage_bad);
                    r->stage_len = 0;
                    r->stage_bad = 0;
                    frames++;
                }
            }
        } else if (dtyp != IXG_TXD_DTYP_CTXT) {
            d->stats.tx_bad_desc++;
        }
        if (cmd & IXG_TXD_CMD_RS) { /* write-back: DD in the status dword, release */
            atomic_store_explicit((_Atomic uint32_t *)(void *)(desc + 12), IXG_TXD_STAT_DD,
                                  memory_order_release);
        }
        r->head = r->head + 1u == r->count ? 0 : r->head + 1u;
    }
    bar_store32(d, IXG_TDH(q), r->head);
    if (b.frames) {
        count(d, ST_GPTC, b.frames);
        count(d, ST_TPT, b.frames);
        count(d, ST_GOTC, b.octets);
        d->stats.tx_packets += b.frames;
    }
    return frames;
}
