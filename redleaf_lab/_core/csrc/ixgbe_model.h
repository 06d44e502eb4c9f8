/* RedLeaf Lab Intel 82599 (ixgbe) model: a register-level 10 GbE NIC in C, with its wire.
 *
 * Purpose: the `sim` backend's NIC. It owns a 128 KiB BAR0 (plain C memory holding the
 * registers at the 82599 datasheet offsets, Rev. 3.3 §8.2.3) and DMAs directly into the
 * shared-heap arena: the creator passes the arena's base pointer, size and IOVA base,
 * and every IOVA the driver hands over (ring bases, packet buffers) is translated and
 * bounds-checked here. A bad address is counted and skipped, never an out-of-bounds
 * access. Behaviour modelled: the §4.6.3 init sequence (CTRL.RST self-clearing, EIMC,
 * EEC.ARD, RDRXCTL.DMAIDONE, AUTOC.AN_RESTART bringing LINKS up at 10G), RXCTRL.RXEN,
 * RXDCTL/TXDCTL.ENABLE, DMATXCTL.TE, FCTRL (UPE/MPE/BAM) filtering against RAL/RAH(0),
 * HLREG0 (TXPADEN, JUMBOEN) and MAXFRS, SRRCTL (BSIZEPACKET, DESCTYPE legacy/advanced),
 * RX/TX rings of up to 16 queues with legacy and advanced descriptors (§7.1.6, §7.2.3),
 * MRQC RSS spreading (by a simple flow hash, not the Toeplitz hash and RETA), and
 * clear-on-read statistics (§8.2.3.23) read through ixg_read_reg(). Not modelled:
 * interrupts (EICR reads 0), offloads (context descriptors are consumed and ignored),
 * header split, VLANs, DCB, flow director, head write-back; the CRC is always stripped
 * and a frame's bytes never include it (octet counters add 4 per frame for it). The wire is chosen at creation (ixgbe_wire.c): a traffic generator, a
 * checking sink (optionally looping TX back into RX), a loopback, or a Linux TAP device.
 *
 * Interface: ixg_create/ixg_destroy; ixg_bar() is the register window the host reads and
 * writes (Python wraps it in ffi.buffer). Two modes:
 *   - inline: the host calls ixg_process() after a register write; it handles register
 *     changes, drains the TX rings and lets the wire fill free RX descriptors (at most
 *     `burst` per queue per pass), then returns (deterministic; rate_pps is ignored);
 *   - thread: ixg_start_thread() runs a pthread that polls the registers and the wire.
 * ixg_quiesce() stops all DMA at once, like a function-level reset. ixg_fwd_bench()
 * (ixgbe_host.c) is the C baseline forwarding loop.
 *
 * Ring rules (§7.1.9, §7.2.3): the device owns descriptors from head up to tail - 1.
 * RX: head == tail means no descriptor is free, so an arriving frame is dropped and
 * counted in MPC. TX: head == tail means nothing to send. The model writes RDH/TDH; a
 * host write to RDH/TDH (only sensible while the queue is idle) is adopted.
 *
 * Memory ordering (DESIGN §8): the driver writes descriptors, then the tail. The model
 * reads RDT/TDT and every other host-written register with C11 acquire loads, so the
 * descriptors written before the tail are visible when it reads them. It writes packet
 * data and the other descriptor words with plain stores, then the RX status dword (DD)
 * or the TX status dword (DD) with a release store, then RDH/TDH with release stores. A
 * driver must read DD before the length and the data (x86 keeps loads ordered).
 *
 * Locking/ownership: one mutex serializes processing passes (device thread, ixg_process,
 * ixg_quiesce, ixg_generate, ixg_inject, ixg_read_reg of a statistic). Host calls
 * announce themselves first and the device thread steps aside, so a busy thread never
 * starves them (ixgbe_model.c, host_lock). Host register writes are lock-free. A reset
 * clears CTRL last (release), so a host that sees CTRL.RST clear sees every default. The caller keeps the arena mapped for the model's lifetime,
 * quiesces or disables the queues before the memory behind rings or buffers is freed,
 * and must not destroy the model while another thread calls it (ixg_destroy stops the
 * device thread). No Python objects are touched: callers may release the GIL.
 */
#ifndef REDLEAF_IXGBE_MODEL_H
#define REDLEAF_IXGBE_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* Register offsets (§8.2.3; per-queue formulas for queues 0..15). */
#define IXG_CTRL 0x00000
#define IXG_STATUS 0x00008
#define IXG_CTRL_EXT 0x00018
#define IXG_EICR 0x00800
#define IXG_EIMS 0x00880
#define IXG_EIMC 0x00888
#define IXG_RDBAL(i) (0x01000 + 0x40 * (i))
#define IXG_RDBAH(i) (0x01004 + 0x40 * (i))
#define IXG_RDLEN(i) (0x01008 + 0x40 * (i))
#define IXG_RDH(i) (0x01010 + 0x40 * (i))
#define IXG_RDT(i) (0x01018 + 0x40 * (i))
#define IXG_RXDCTL(i) (0x01028 + 0x40 * (i))
#define IXG_SRRCTL(i) (0x02100 + 4 * (i))
#define IXG_RDRXCTL 0x02F00
#define IXG_RXCTRL 0x03000
#define IXG_MPC(i) (0x03FA0 + 4 * (i))
#define IXG_CRCERRS 0x04000
#define IXG_GPRC 0x04074
#define IXG_BPRC 0x04078
#define IXG_MPRC 0x0407C
#define IXG_GPTC 0x04080
#define IXG_GORCL 0x04088
#define IXG_GORCH 0x0408C
#define IXG_GOTCL 0x04090
#define IXG_GOTCH 0x04094
#define IXG_RUC 0x040A4
#define IXG_ROC 0x040AC
#define IXG_TPR 0x040D0
#define IXG_TPT 0x040D4
#define IXG_HLREG0 0x04240
#define IXG_MAXFRS 0x04268
#define IXG_AUTOC 0x042A0
#define IXG_LINKS 0x042A4
#define IXG_DMATXCTL 0x04A80
#define IXG_FCTRL 0x05080
#define IXG_RAL0 0x05400
#define IXG_RAH0 0x05404
#define IXG_TDBAL(i) (0x06000 + 0x40 * (i))
#define IXG_TDBAH(i) (0x06004 + 0x40 * (i))
#define IXG_TDLEN(i) (0x06008 + 0x40 * (i))
#define IXG_TDH(i) (0x06010 + 0x40 * (i))
#define IXG_TDT(i) (0x06018 + 0x40 * (i))
#define IXG_TXDCTL(i) (0x06028 + 0x40 * (i))
#define IXG_MRQC 0x0EC80
#define IXG_EEC 0x10010
#define IXG_BAR_SIZE 0x20000
#define IXG_STATS_FIRST 0x03FA0 /* clear-on-read registers live in [FIRST, END) */
#define IXG_STATS_END 0x04100

/* Bits. */
#define IXG_CTRL_LNK_RST 0x00000008u
#define IXG_CTRL_RST 0x04000000u
#define IXG_EEC_PRES 0x00000100u
#define IXG_EEC_ARD 0x00000200u
#define IXG_RDRXCTL_CRCSTRIP 0x00000002u
#define IXG_RDRXCTL_DMAIDONE 0x00000008u
#define IXG_RXCTRL_RXEN 0x00000001u
#define IXG_AUTOC_LMS_SHIFT 13
#define IXG_AUTOC_LMS_MASK (7u << 13)
#define IXG_AUTOC_LMS_10G_SERIAL (3u << 13)
#define IXG_AUTOC_AN_RESTART 0x00001000u
#define IXG_LINKS_UP 0x40000000u
#define IXG_LINKS_SPEED_MASK 0x30000000u
#define IXG_LINKS_SPEED_10G 0x30000000u
#define IXG_LINKS_SPEED_1G 0x20000000u
#define IXG_HLREG0_TXCRCEN 0x00000001u
#define IXG_HLREG0_RXCRCSTRP 0x00000002u
#define IXG_HLREG0_JUMBOEN 0x00000004u
#define IXG_HLREG0_TXPADEN 0x00000400u
#define IXG_FCTRL_MPE 0x00000100u
#define IXG_FCTRL_UPE 0x00000200u
#define IXG_FCTRL_BAM 0x00000400u
#define IXG_RAH_AV 0x80000000u
#define IXG_SRRCTL_BSIZEPKT_MASK 0x0000001Fu
#define IXG_SRRCTL_DESCTYPE_MASK 0x0E000000u
#define IXG_SRRCTL_DESCTYPE_ADV_ONEBUF 0x02000000u
#define IXG_SRRCTL_DROP_EN 0x10000000u
#define IXG_RXDCTL_ENABLE 0x02000000u
#define IXG_TXDCTL_ENABLE 0x02000000u
#define IXG_DMATXCTL_TE 0x00000001u
#define IXG_MRQC_MRQE_MASK 0x0000000Fu
#define IXG_MRQC_RSS 0x00000001u

/* Descriptor fields (§7.1.6 advanced RX write-back, §7.2.3.2.4 advanced TX data). */
#define IXG_RXD_STAT_DD 0x01u
#define IXG_RXD_STAT_EOP 0x02u
#define IXG_RXD_ERR_RXE 0x20000000u /* advanced write-back: RX data error (bad buffer) */
#define IXG_TXD_DTYP_MASK 0x00F00000u
#define IXG_TXD_DTYP_CTXT 0x00200000u
#define IXG_TXD_DTYP_DATA 0x00300000u
#define IXG_TXD_CMD_EOP 0x01000000u
#define IXG_TXD_CMD_IFCS 0x02000000u
#define IXG_TXD_CMD_RS 0x08000000u
#define IXG_TXD_CMD_DEXT 0x20000000u
#define IXG_TXD_PAYLEN_SHIFT 14
#define IXG_TXD_STAT_DD 0x01u

/* Wires and limits. */
#define IXG_WIRE_NONE 0      /* nothing arrives; transmitted frames are counted and dropped */
#define IXG_WIRE_GENERATOR 1 /* RX from the traffic generator, TX into the sink */
#define IXG_WIRE_SINK 2      /* no RX traffic; TX into the sink (optionally looped back) */
#define IXG_WIRE_LOOPBACK 3  /* TX delivered back into RX, unchecked */
#define IXG_WIRE_TAP 4       /* TX written to a TAP device; frames read from it go to RX */
#define IXG_MAX_QUEUES 16
#define IXG_MAX_FLOWS 4194304 /* above IXG_TEMPLATE_FLOWS: computed per frame (ixgbe_wire.c) */
#define IXG_TEMPLATE_FLOWS 65536
#define IXG_CAPTURE_SLOTS 64 /* sink capture ring: last frames transmitted */
#define IXG_CAPTURE_BYTES 2048

typedef struct ixg_dev ixg_dev;

typedef struct {
    uint32_t wire;        /* IXG_WIRE_* */
    uint32_t queues;      /* RX/TX queue pairs modelled, 1..16 */
    uint32_t frame_bytes; /* generator frame length without FCS, 60..1514 */
    uint32_t flows;       /* generator IPv4/UDP flows, 1..IXG_MAX_FLOWS */
    double rate_pps;      /* generator rate in thread mode; 0 = as fast as RX has room */
    uint64_t seed;        /* generator flow choice and payload bytes */
    uint32_t burst;       /* max frames the wire delivers per queue per pass, 1..4096 */
    int verify;           /* the sink checks IPv4/UDP checksums and per-flow sequence */
    int loopback;         /* the sink also delivers transmitted frames into RX */
    int capture;          /* the sink keeps the last IXG_CAPTURE_SLOTS frames */
    uint8_t mac[6];       /* the NIC's address (RAL/RAH(0) after reset) */
    char tap_name[16];    /* TAP interface name (IFNAMSIZ), or "" for a kernel-chosen one */
} ixg_config;

typedef struct {
    uint64_t rx_packets, rx_bytes; /* frames written into RX descriptors (bytes w/o FCS) */
    uint64_t rx_missed;            /* arrived with no free RX descriptor or RX disabled */
    uint64_t rx_filtered;          /* rejected by the FCTRL/RAL destination filter */
    uint64_t rx_oversize;          /* arrived longer than the max frame (ROC) */
    uint64_t rx_bad_addr;          /* RX descriptor buffer outside DMA memory */
    uint64_t tx_packets, tx_bytes; /* frames taken from TX rings and put on the wire */
    uint64_t tx_runt;              /* TX frame < 60 B (or < 14 B with TXPADEN) */
    uint64_t tx_oversize;          /* TX frame > max frame */
    uint64_t tx_bad_addr;          /* TX descriptor buffer outside DMA memory */
    uint64_t tx_bad_desc;          /* unknown advanced descriptor type */
    uint64_t bad_ring;             /* queue enable refused: ring outside DMA memory/bad len */
    uint64_t gen_packets;          /* frames the generator produced (delivered + missed) */
    uint64_t sink_packets, sink_bytes; /* frames the sink received */
    uint64_t sink_ok;              /* verified generator frames */
    uint64_t sink_bad;             /* bad IPv4 header/UDP checksum or truncated */
    uint64_t sink_seq_errors;      /* per-flow sequence went backwards (duplicate/reorder) */
    uint64_t sink_other;           /* well-formed frames that are not generator UDP */
    uint64_t tap_rx, tap_tx, tap_errors; /* frames read from / written to the TAP; failures */
    uint64_t resets;               /* CTRL.RST and quiesce */
    uint64_t passes;               /* processing passes */
} ixg_stats;

typedef struct {
    uint64_t rx_packets; /* frames the loop received */
    uint64_t tx_packets; /* frames it queued for transmission (forwarded) */
    uint64_t tx_dropped; /* received but dropped because the TX ring was full */
    int64_t ns;          /* elapsed time of the forwarding loop */
} ixg_fwd_result;

/* Create a model. err (errlen bytes) gets a message when NULL is returned. */
ixg_dev *ixg_create(void *arena, uint64_t arena_size, uint64_t iova_base,
                    const ixg_config *cfg, char *err, size_t errlen);
void ixg_destroy(ixg_dev *d);
void *ixg_bar(ixg_dev *d);
uint64_t ixg_bar_size(ixg_dev *d);
const char *ixg_tap_name(ixg_dev *d);

/* Inline mode: one processing pass; returns frames moved (RX + TX). */
int ixg_process(ixg_dev *d);
int ixg_start_thread(ixg_dev *d); /* 0, or -1 if running already / pthread failed */
void ixg_stop_thread(ixg_dev *d);
int ixg_thread_running(ixg_dev *d);
void ixg_quiesce(ixg_dev *d);

/* A register read as the device answers it: statistics clear on read (a low dword read
 * latches the high dword and clears the counter); other registers are the BAR word. */
uint32_t ixg_read_reg(ixg_dev *d, uint32_t off);
void ixg_get_stats(ixg_dev *d, ixg_stats *out);
/* Deliver n generator frames to RX now, ignoring `burst` (missed ones count in MPC);
 * returns frames delivered. Any wire. */
uint64_t ixg_generate(ixg_dev *d, uint64_t n);
/* Replay mode of the generator wire: from now on it sends copies of the `count` frames
 * in `blob` (frame i is blob[offsets[i] .. offsets[i + 1]), 60..1514 bytes without FCS),
 * each pick uniform (cdf NULL) or by the cumulative distribution cdf (count entries,
 * non-decreasing, cdf[i] = P(pick <= i) * 2^32, the last exactly 2^32): e.g. memcached
 * requests over a Zipf key distribution. count 0 returns to the flow generator.
 * Returns 0, or -1 for bad arguments, -2 without a generator wire, -3 out of memory. */
int ixg_set_replay(ixg_dev *d, const uint8_t *blob, const uint64_t *offsets, uint32_t count,
                   const uint64_t *cdf);
/* Deliver one frame (len bytes, without FCS) to RX as if it arrived on the wire;
 * returns 1 if written into a descriptor, 0 if dropped (and counted). */
int ixg_inject(ixg_dev *d, const uint8_t *frame, uint32_t len);
/* The k-th most recent captured sink frame (k = 0 newest): copies up to cap bytes into
 * out, returns its length, or -1 if there is none. */
int ixg_captured(ixg_dev *d, uint32_t k, uint8_t *out, uint32_t cap);
/* 10 GbE line rate in frames/s for frames of frame_bytes (without FCS). */
double ixg_line_rate(uint32_t frame_bytes);

/* The C baseline (ixgbe_host.c): an l2fwd-like loop on queue 0 through the registers:
 * reset and init (§4.6.3), RX a batch, touch one byte per frame, TX the batch, until
 * max_packets were forwarded or max_ns elapsed. `mem_iova` is a 4 KiB-aligned arena
 * region of at least ixg_fwd_bench_bytes(ring) bytes. Uses inline processing unless
 * the device thread runs. Returns 0, or -1 for bad arguments, -2 if the NIC did not
 * come up. The queues are disabled and the NIC reset again before returning. */
uint64_t ixg_fwd_bench_bytes(uint32_t ring);
int ixg_fwd_bench(ixg_dev *d, uint64_t mem_iova, uint64_t mem_bytes, uint32_t ring,
                  uint32_t batch, uint64_t max_packets, int64_t max_ns, ixg_fwd_result *out);

#endif
