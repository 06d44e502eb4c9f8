/* Internal state of the NVMe controller model, shared by nvme_model.c (registers, queues,
 * device thread) and nvme_cmd.c (admin and NVM commands, PRP walking).
 *
 * Interface: not exported to Python. Everything here is touched only under c->lock
 * (see nvme_model.h), except the BAR words the host writes, which are read with
 * acquire loads (bar_load32/64) and the words the model publishes (CSTS, CQ entries),
 * written with release stores.
 */
#ifndef REDLEAF_NVME_INTERNAL_H
#define REDLEAF_NVME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "nvme_model.h"

#define NVM_PAGE 4096u
#define NVM_MDTS 10u /* max transfer 2^10 pages = 4 MiB (Identify byte 77) */
#define NVM_MAX_XFER_PAGES (1u << NVM_MDTS)
#define NVM_ERRLOG_ENTRIES 64u

typedef struct {
    uint8_t *base; /* host pointer of the queue memory (translated once at creation) */
    uint32_t size; /* entries */
    uint32_t head; /* SQ: next entry to fetch; CQ: host's head (from its doorbell) */
    uint32_t tail; /* SQ: host's tail (from its doorbell); CQ: next entry to post */
    uint16_t cqid; /* SQ: its completion queue */
    uint8_t phase; /* CQ: phase tag of the next posted entry */
    uint8_t valid;
    uint32_t users; /* CQ: SQs attached */
} nvm_queue;

typedef struct {
    uint64_t error_count;
    uint16_t sqid, cid, status, param_loc;
    uint64_t lba;
    uint32_t nsid;
} nvm_error;

struct nvm_ctrl {
    uint8_t *bar;
    uint64_t bar_size;
    uint8_t *arena;
    uint64_t arena_size, iova_base;
    uint8_t *media;
    uint64_t media_bytes, blocks;
    uint32_t lba_shift, mqes, dstrd, max_ioq;
    int media_fd;

    pthread_mutex_t lock;
    pthread_t thread;
    atomic_int thread_run;
    int thread_started;

    /* controller state, under lock */
    uint32_t cc_seen;     /* CC as of the last pass */
    int enabled;          /* RDY reported */
    int fatal;            /* CFS reported: no processing until CC.EN goes 0 */
    uint64_t fatal_after; /* go fatal after this many more commands (0: off) */
    uint32_t nsq_alloc, ncq_alloc; /* Set Features Number of Queues (1-based) */
    nvm_queue *sq, *cq;            /* [max_ioq + 1]; index 0 = admin */
    nvm_error errlog[NVM_ERRLOG_ENTRIES];
    uint64_t error_count;
    nvm_stats stats;
};

static inline uint32_t bar_load32(const nvm_ctrl *c, uint32_t off) {
    return atomic_load_explicit((_Atomic uint32_t *)(void *)(c->bar + off), memory_order_acquire);
}
static inline uint64_t bar_load64(const nvm_ctrl *c, uint32_t off) {
    return atomic_load_explicit((_Atomic uint64_t *)(void *)(c->bar + off), memory_order_acquire);
}
static inline void bar_store32(nvm_ctrl *c, uint32_t off, uint32_t v) {
    atomic_store_explicit((_Atomic uint32_t *)(void *)(c->bar + off), v, memory_order_release);
}
static inline void bar_store64(nvm_ctrl *c, uint32_t off, uint64_t v) {
    atomic_store_explicit((_Atomic uint64_t *)(void *)(c->bar + off), v, memory_order_release);
}

/* Host pointer for [iova, iova + len) inside the arena, or NULL. */
uint8_t *nvm_translate(const nvm_ctrl *c, uint64_t iova, uint64_t len);

/* Executes one command (64-byte SQE) from queue `qid`; returns the status
 * ((SCT << 8) | SC) and sets *dw0 (command specific). nvme_cmd.c. */
uint16_t nvm_exec_admin(nvm_ctrl *c, const uint8_t *sqe, uint32_t *dw0);
uint16_t nvm_exec_io(nvm_ctrl *c, const uint8_t *sqe, uint32_t *dw0);
void nvm_log_error(nvm_ctrl *c, uint16_t sqid, const uint8_t *sqe, uint16_t status);

#endif
