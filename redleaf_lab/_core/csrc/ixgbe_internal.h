/* Internal state of the 82599 model, shared by ixgbe_model.c (registers, reset, passes,
 * device thread), ixgbe_ring.c (RX/TX descriptor rings), ixgbe_wire.c (generator, sink,
 * loopback, TAP) and ixgbe_host.c (the C baseline).
 *
 * Interface: not exported to Python. Everything here is touched only under d->lock
 * (see ixgbe_model.h), except the BAR words the host writes, read with acquire loads
 * (bar_load32), the words the model publishes (RDH/TDH, LINKS, descriptor status),
 * written with release stores, and the statistics counters, which are atomics so a
 * clear-on-read exchange never loses an increment.
 */
#ifndef REDLEAF_IXGBE_INTERNAL_H
#define REDLEAF_IXGBE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ixgbe_model.h"

#define IXG_MIN_FRAME 60u       /* without FCS (64 B on the wire) */
#define IXG_MAX_STD_FRAME 1514u /* without FCS; MAXFRS.MFS default 1518 includes it */
#define IXG_STAGE_BYTES 16384u  /* largest frame gathered from several TX descriptors */
#define IXG_FCS 4u

/* Clear-on-read counters, indexed by enum; see stat_index() in ixgbe_model.c. */
enum {
    ST_MPC0, ST_CRCERRS, ST_GPRC, ST_BPRC, ST_MPRC, ST_GPTC, ST_GORC, ST_GOTC, ST_RUC,
    ST_ROC, ST_TPR, ST_TPT, ST_COUNT
};

typedef struct {
    uint8_t *ring;    /* host pointer of descriptor 0 (valid while enabled) */
    uint32_t count;   /* descriptors in the ring (RDLEN / 16) */
    uint32_t head;    /* the model's head: the last value it stored into RDH/TDH */
    uint32_t bufsize; /* RX: SRRCTL.BSIZEPACKET in bytes */
    int legacy;       /* RX: SRRCTL.DESCTYPE = legacy write-back format */
    int enabled;
    /* TX: a frame being gathered from several descriptors (no EOP yet) */
    uint32_t stage_len;
    int stage_bad; /* 1 bad address, 2 too long: the frame is dropped at EOP */
} ixg_ring;

typedef struct {
    uint8_t hdr[56];    /* Ethernet + IPv4 + UDP headers + seq + flow id (54 B used) */
    uint32_t sum;       /* UDP checksum partial sum (pseudo header + segment, seq = 0) */
    uint32_t queue_hash;
} ixg_flow;

typedef struct {
    ixg_flow *flows;
    uint8_t *payload; /* frame bytes 54.. common to every frame (seeded random) */
    uint64_t rng;     /* xorshift64 state for the flow choice */
    uint64_t seq;     /* next sequence number */
    double tokens;    /* thread mode rate limiting */
    int64_t last_ns;
    uint64_t *last_seq; /* sink: per-flow last sequence + 1 (0: none yet) */
    /* replay mode (ixg_set_replay): frames given by the host, picked uniformly or by a
     * cumulative distribution (cdf[i]: P(index <= i) * 2^32, the last one 2^32) */
    uint8_t *replay;          /* the frames, back to back */
    uint64_t *replay_offsets; /* replay_count + 1 offsets into replay */
    uint64_t *replay_cdf;     /* NULL: uniform */
    uint32_t replay_count;
} ixg_gen;

struct ixg_dev {
    uint8_t *bar;
    uint8_t *arena;
    uint64_t arena_size, iova_base;
    ixg_config cfg;

    pthread_mutex_t lock;
    pthread_t thread;
    atomic_int thread_run;
    atomic_int waiters; /* host calls waiting for the lock (see host_lock) */
    int thread_started;

    /* device state, under lock */
    uint32_t ims;       /* interrupt mask (EIMS/EIMC) */
    int link_up;
    ixg_ring rx[IXG_MAX_QUEUES], tx[IXG_MAX_QUEUES];
    uint8_t *stage[IXG_MAX_QUEUES]; /* TX gather buffers, allocated on demand */
    ixg_gen gen;
    int tap_fd;
    char tap_name[16];
    uint8_t *capture; /* IXG_CAPTURE_SLOTS * IXG_CAPTURE_BYTES, or NULL */
    uint32_t capture_len[IXG_CAPTURE_SLOTS];
    uint64_t captured;

    _Atomic uint64_t counters[ST_COUNT]; /* clear-on-read statistics */
    uint32_t latch[ST_COUNT];            /* high dword latched by a low-dword read */
    ixg_stats stats;                     /* cumulative model statistics */
};

static inline uint32_t bar_load32(const ixg_dev *d, uint32_t off) {
    return atomic_load_explicit((_Atomic uint32_t *)(void *)(d->bar + off), memory_order_acquire);
}
static inline void bar_store32(ixg_dev *d, uint32_t off, uint32_t v) {
    atomic_store_explicit((_Atomic uint32_t *)(void *)(d->bar + off), v, memory_order_release);
}
static inline void count(ixg_dev *d, int which, uint64_t n) {
    atomic_fetch_add_explicit(&d->counters[which], n, memory_order_relaxed);
}

/* Host pointer for [iova, iova + len) inside the arena, or NULL. ixgbe_model.c. */
uint8_t *ixg_translate(const ixg_dev *d, uint64_t iova, uint64_t len);
/* Largest frame (without FCS) the MAC accepts now: HLREG0.JUMBOEN and MAXFRS.MFS. */
uint32_t ixg_max_frame(const ixg_dev *d);

/* ixgbe_ring.c */
int ixg_ring_enable_rx(ixg_dev *d, uint32_t q);
int ixg_ring_enable_tx(ixg_dev *d, uint32_t q);
uint32_t ixg_rx_free(ixg_dev *d, uint32_t q);
/* RXCTRL.RXEN with the link up. */
int ixg_rx_ready(const ixg_dev *d);
/* FCTRL/RAL/RAH destination filter: 1 to accept. */
int ixg_rx_accept(ixg_dev *d, const uint8_t *frame);
/* The flow hash of a frame, and the RX queue of a hash (MRQC RSS off: queue 0). */
uint32_t ixg_frame_hash(const uint8_t *frame, uint32_t len);
uint32_t ixg_flow_queue(ixg_dev *d, uint32_t hash);
/* Next free RX buffer of queue q able to hold len bytes, or NULL when no descriptor is
 * free (descriptors with buffers outside DMA memory are skipped, counted, *bad set).
 * ixg_rx_commit writes the descriptor back (DD|EOP, len) and advances RDH. */
uint8_t *ixg_rx_slot(ixg_dev *d, uint32_t q, uint32_t len, int *bad);
void ixg_rx_commit(ixg_dev *d, uint32_t q, uint32_t len);
/* Counters for `frames` good frames like `frame` / for missed frames (MPC). */
void ixg_rx_count(ixg_dev *d, const uint8_t *frame, uint32_t len, uint64_t frames);
void ixg_rx_miss(ixg_dev *d, uint64_t frames);
/* Copy a frame into RX (filtering, routing, multi-descriptor frames, counters);
 * returns 1 if delivered. */
int ixg_rx_deliver(ixg_dev *d, const uint8_t *frame, uint32_t len);
/* Send what TX queue q holds (at most budget descriptors); returns frames finished. */
int ixg_tx_drain(ixg_dev *d, uint32_t q, uint32_t budget);

/* ixgbe_wire.c */
int ixg_wire_open(ixg_dev *d, char *err, size_t errlen);
void ixg_wire_close(ixg_dev *d);
/* A frame leaves the NIC (len without FCS). */
void ixg_wire_tx(ixg_dev *d, const uint8_t *frame, uint32_t len);
/* Let the wire deliver frames into RX: the generator fills free descriptors (inline
 * mode, or unlimited rate) or follows rate_pps; the TAP is read. Returns frames moved.
 * ixg_wire_generate makes n generator frames; honour_room stops at a full ring instead
 * of counting misses. */
int ixg_wire_rx(ixg_dev *d, int inline_mode);
uint64_t ixg_wire_generate(ixg_dev *d, uint64_t n, int honour_room);
int ixg_wire_set_replay(ixg_dev *d, const uint8_t *blob, const uint64_t *offsets,
                        uint32_t count, const uint64_t *cdf);

/* ixgbe_host.c: the C forwarding loop with its per-batch work as a function (ixy-fwd
 * touches a byte per frame; maglev_host.c steers; kv_host.c answers memcached):
 * frames[i] points at frame i (lens[i] bytes, in a 1984-byte buffer), which the work may
 * change in place, with its new length in lens[i] (at most 1514; 0 drops the frame). */
typedef void (*ixg_batch_work)(void *ctx, uint8_t **frames, uint32_t *lens, uint32_t n);
int ixg_fwd_bench_work(ixg_dev *d, uint64_t mem_iova, uint64_t mem_bytes, uint32_t ring,
                       uint32_t batch, uint64_t max_packets, int64_t max_ns,
                       ixg_batch_work work, void *ctx, ixg_fwd_result *out);

#endif
