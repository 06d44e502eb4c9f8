/* RedLeaf Lab NVMe controller model: a register-level NVMe 1.4 controller in C.
 *
 * Purpose: the `sim` backend's NVMe device. It owns a BAR (a plain C memory region of
 * registers and doorbells, NVMe Base Spec 1.4 §3.1) and one namespace whose media is
 * host memory or an mmap'd file. It DMAs directly into the shared-heap arena: the
 * creator gives it the arena's base pointer, size and IOVA base, and every IOVA the
 * host hands over (ASQ/ACQ, queue bases, PRP entries) is translated and bounds-checked
 * here. A bad address is an NVMe error status (or CSTS.CFS for the admin queue), never
 * an out-of-bounds access.
 *
 * Interface: nvm_create/nvm_destroy; nvm_bar() is the register window the host reads
 * and writes (Python wraps it in ffi.buffer). Two modes:
 *   - inline: the host calls nvm_process() after writing CC or a doorbell; it handles
 *     every pending register change and command, then returns (deterministic tests);
 *   - thread: nvm_start_thread() runs a pthread that polls CC and the doorbells.
 * nvm_fatal() sets CSTS.CFS (the controller stops processing until a reset through
 * CC.EN); nvm_fatal_after(n) does so after n more commands. nvm_quiesce() stops all DMA
 * at once, like a function-level reset: queues are dropped and CC, AQA, ASQ, ACQ, CSTS
 * and the doorbells return to 0 (used before the kernel reclaims a crashed driver's
 * memory; the next driver initializes the controller from scratch).
 *
 * Memory ordering (DESIGN §8): the host writes SQ entries, then the SQ tail doorbell.
 * The model reads every BAR register written by the host (CC, AQA, ASQ, ACQ, doorbells)
 * with C11 acquire loads, so the SQ entries written before the doorbell are visible when
 * it copies them. It writes a CQ entry's first 12 bytes with plain stores and then the
 * last dword (CID, status, phase tag) with a release store, and updates CSTS with
 * release stores; so a host that sees the new phase tag (or RDY) also sees the rest.
 * The host must read the phase tag before the other fields (x86 keeps loads ordered).
 *
 * Locking/ownership: one mutex serializes processing passes (device thread, nvm_process,
 * nvm_quiesce, nvm_fatal); each pass holds it while it touches queues or DMA memory.
 * Host writes to the BAR are lock-free. The caller must keep the arena mapped for the
 * model's lifetime, must quiesce or disable the controller before the memory behind its
 * queues or PRPs is freed, and must stop the thread before nvm_destroy (which does it).
 * No Python objects are touched, so callers may release the GIL around every call.
 */
#ifndef REDLEAF_NVME_MODEL_H
#define REDLEAF_NVME_MODEL_H

#include <stdint.h>

/* Register offsets (NVMe 1.4 §3.1, Figure 78). */
#define NVM_REG_CAP 0x00
#define NVM_REG_VS 0x08
#define NVM_REG_INTMS 0x0C
#define NVM_REG_INTMC 0x10
#define NVM_REG_CC 0x14
#define NVM_REG_CSTS 0x1C
#define NVM_REG_NSSR 0x20
#define NVM_REG_AQA 0x24
#define NVM_REG_ASQ 0x28
#define NVM_REG_ACQ 0x30
#define NVM_REG_DBS 0x1000

/* Status codes: (SCT << 8) | SC (NVMe 1.4 §4.6.1.2). */
#define NVM_SC_SUCCESS 0x000
#define NVM_SC_INVALID_OPCODE 0x001
#define NVM_SC_INVALID_FIELD 0x002
#define NVM_SC_DATA_XFER_ERROR 0x004
#define NVM_SC_INVALID_NS 0x00B
#define NVM_SC_PRP_OFFSET_INVALID 0x013
#define NVM_SC_LBA_RANGE 0x080
#define NVM_SC_CQ_INVALID 0x100
#define NVM_SC_INVALID_QID 0x101
#define NVM_SC_INVALID_QSIZE 0x102
#define NVM_SC_INVALID_LOG_PAGE 0x109
#define NVM_SC_INVALID_QUEUE_DELETION 0x10C

typedef struct nvm_ctrl nvm_ctrl;

typedef struct {
    uint64_t commands;   /* completions posted (admin + I/O) */
    uint64_t errors;     /* completions with a non-zero status */
    uint64_t reads;      /* Read commands that succeeded */
    uint64_t writes;     /* Write commands that succeeded */
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint64_t resets;     /* CC.EN 1 -> 0 transitions, plus quiesces */
    uint64_t passes;     /* processing passes (thread loop iterations or nvm_process) */
} nvm_stats;

/* Create a controller with one namespace of `blocks` logical blocks of 2^lba_shift
 * bytes (lba_shift 9..12; Identify Namespace lists 512 B and 4 KiB formats and selects
 * this one in FLBAS), CAP.MQES = mqes (queue depth up to mqes + 1), doorbell stride
 * 4 << dstrd bytes, up to max_ioq I/O queue pairs (1..1024). The media is zeroed host
 * memory, or the file `media_path` (created/extended to size, mmap'd shared) if not
 * NULL or empty. Returns NULL on a bad argument or if memory/the file is unavailable. */
nvm_ctrl *nvm_create(void *arena, uint64_t arena_size, uint64_t iova_base, uint64_t blocks,
                     uint32_t lba_shift, uint32_t mqes, uint32_t dstrd, uint32_t max_ioq,
                     const char *media_path);
void nvm_destroy(nvm_ctrl *c);

void *nvm_bar(nvm_ctrl *c);
uint64_t nvm_bar_size(nvm_ctrl *c);
uint8_t *nvm_media(nvm_ctrl *c);
uint64_t nvm_media_bytes(nvm_ctrl *c);

/* Inline mode: handle every pending register change and command; returns the number of
 * completions posted. Also safe (a no-op race-free pass) while the thread runs. */
int nvm_process(nvm_ctrl *c);
/* Thread mode. start returns 0, or -1 if already running / pthread failed. */
int nvm_start_thread(nvm_ctrl *c);
void nvm_stop_thread(nvm_ctrl *c);
int nvm_thread_running(nvm_ctrl *c);

void nvm_fatal(nvm_ctrl *c);
void nvm_fatal_after(nvm_ctrl *c, uint64_t commands); /* 0 disarms */
void nvm_quiesce(nvm_ctrl *c);
void nvm_get_stats(nvm_ctrl *c, nvm_stats *out);

/* The C baseline (nvme_host.c): an SPDK-perf-like closed loop against this controller,
 * through the same registers and queues a driver uses. It resets and initializes the
 * controller itself (§7.6.1), so give it a controller no other host uses. `mem_iova` is
 * a page-aligned arena region of at least nvm_host_bench_bytes(depth, nlb) bytes
 * holding the admin queues, I/O queue pair 1 (depth + 1 entries, depth <= MQES) and
 * depth data buffers of nlb blocks. It keeps `depth` commands in flight until `ios`
 * commands completed. write: 1 for writes; random: 1 for random LBAs
 * (xorshift, seed), else sequential. Uses inline processing unless the device thread
 * runs. Returns elapsed ns, or a negative value: -status of a failed command, -1 for a
 * setup error, -2 for a timeout. The controller is disabled again before returning. */
uint64_t nvm_host_bench_bytes(uint32_t depth, uint32_t nlb, uint32_t lba_shift);
int64_t nvm_host_bench(nvm_ctrl *c, uint64_t mem_iova, uint64_t mem_bytes, uint32_t depth,
                       uint32_t nlb, uint64_t ios, int write, int random, uint64_t seed);

/* memcpy bandwidth probe: copies `bytes` from src to dst `rounds` times, returns ns. */
int64_t nvm_memcpy_bench(void *dst, const void *src, uint64_t bytes, uint32_t rounds);

#endif
