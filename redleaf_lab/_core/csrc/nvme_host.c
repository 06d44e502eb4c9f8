/* The C baseline: an SPDK-perf-like host loop against the NVMe controller model, used
 * only to measure what the Python driver costs in comparison (issue 4, item 4).
 *
 * It talks to the controller only through the BAR and queues in the arena, like any
 * driver: reset and enable (NVMe Base 1.4 §7.6.1), Identify Namespace (§5.15), Create
 * I/O CQ/SQ (§5.3, §5.4), then a closed loop keeping `depth` commands in flight; one SQ
 * tail doorbell and one CQ head doorbell write per polling pass. It reads a CQE's phase
 * tag with an acquire load before the other fields, and publishes SQ entries before the
 * doorbell with a release store (see nvme_model.h). Single-threaded; the caller must
 * not use the controller concurrently. Also here: a memcpy bandwidth probe.
 */
#define _GNU_SOURCE
#include <string.h>
#include <time.h>

#include "nvme_internal.h"

#define ADMIN_ENTRIES 32u
#define CQE_P(e) ((atomic_load_explicit((_Atomic uint32_t *)(void *)((e) + 12), \
                                        memory_order_acquire) >> 16) & 1u)

typedef struct {
    nvm_ctrl *c;
    uint8_t *mem;
    uint64_t iova;
    uint32_t asq_tail, acq_head, aphase;
    int inline_mode;
} host;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t page_round(uint64_t n) { return (n + NVM_PAGE - 1u) & ~(uint64_t)(NVM_PAGE - 1u); }

static void kick(host *h) {
    if (h->inline_mode) nvm_process(h->c);
}

static int wait_csts(host *h, uint32_t mask, uint32_t want) {
    int64_t deadline = now_ns() + 5000000000LL;
    for (;;) {
        kick(h);
        uint32_t csts = bar_load32(h->c, NVM_REG_CSTS);
        if (csts & 2u) return -1; /* CFS */
        if ((csts & mask) == want) return 0;
        if (now_ns() > deadline) return -2;
    }
}

/* One admin command, synchronously; returns the status field (SC | SCT << 8). */
static int admin(host *h, uint8_t op, uint32_t nsid, uint64_t prp1, uint32_t cdw10,
                 uint32_t cdw11) {
    uint8_t *sqe = h->mem + (uint64_t)h->asq_tail * 64u;
    memset(sqe, 0, 64);
    sqe[0] = op;
    uint16_t cid = (uint16_t)h->asq_tail;
    memcpy(sqe + 2, &cid, 2);
    memcpy(sqe + 4, &nsid, 4);
    memcpy(sqe + 24, &prp1, 8);
    memcpy(sqe + 40, &cdw10, 4);
    memcpy(sqe + 44, &cdw11, 4);
    h->asq_tail = (h->asq_tail + 1u) % ADMIN_ENTRIES;
    bar_store32(h->c, NVM_REG_DBS, h->asq_tail);
    uint8_t *cqe = h->mem + NVM_PAGE + (uint64_t)h->acq_head * 16u;
    int64_t deadline = now_ns() + 5000000000LL;
    for (;;) {
        kick(h);
        if (CQE_P(cqe) == h->aphase) break;
        if (now_ns() > deadline) return -2;
    }
    uint16_t sf;
    memcpy(&sf, cqe + 14, 2);
    if (++h->acq_head == ADMIN_ENTRIES) {
        h->acq_head = 0;
        h->aphase ^= 1u;
    }
    bar_store32(h->c, NVM_REG_DBS + (4u << h->c->dstrd), h->acq_head);
    return (sf >> 1) & 0x7FFu;
}

uint64_t nvm_host_bench_bytes(uint32_t depth, uint32_t nlb, uint32_t lba_shift) {
    uint64_t q = depth + 1u;
    return 2u * NVM_PAGE + page_round(q * 64u) + page_round(q * 16u) +
           (uint64_t)depth * (page_round((uint64_t)nlb << lba_shift) + NVM_PAGE);
}

int64_t nvm_host_bench(nvm_ctrl *c, uint64_t mem_iova, uint64_t mem_bytes, uint32_t depth,
                       uint32_t nlb, uint64_t ios, int write, int random, uint64_t seed) {
    uint64_t need = nvm_host_bench_bytes(depth, nlb, c->lba_shift);
    uint8_t *mem = nvm_translate(c, mem_iova, need);
    uint64_t xfer = (uint64_t)nlb << c->lba_shift;
    if (!mem || mem_bytes < need || mem_iova % NVM_PAGE || depth < 1 || depth > c->mqes ||
        nlb < 1 || xfer > (uint64_t)NVM_MAX_XFER_PAGES * NVM_PAGE) {
        return -1;
    }
    memset(mem, 0, 2u * NVM_PAGE + page_round((depth + 1u) * 64u) + page_round((depth + 1u) * 16u));
    host h = {.c = c, .mem = mem, .iova = mem_iova, .aphase = 1, .inline_mode = !c->thread_started};
    uint32_t qsize = depth + 1u, dstride = 4u << c->dstrd;
    uint64_t sq_off = 2u * NVM_PAGE, cq_off = sq_off + page_round(qsize * 64u);
    uint64_t data_off = cq_off + page_round(qsize * 16u), buf_bytes = page_round(xfer) + NVM_PAGE;

    /* §7.6.1: disable, wait RDY = 0, admin queues, enable, wait RDY = 1 */
    bar_store32(c, NVM_REG_CC, 0);
    if (wait_csts(&h, 1u, 0u)) return -1;
    bar_store32(c, NVM_REG_AQA, (ADMIN_ENTRIES - 1u) << 16 | (ADMIN_ENTRIES - 1u));
    bar_store64(c, NVM_REG_ASQ, mem_iova);
    bar_store64(c, NVM_REG_ACQ, mem_iova + NVM_PAGE);
    bar_store32(c, NVM_REG_CC, 1u | (6u << 16) | (4u << 20));
    if (wait_csts(&h, 1u, 1u)) return -1;
    /* §5.15 Identify Namespace 1 into the first data buffer: NSZE at byte 0 */
    uint8_t *ident = mem + data_off;
    if (admin(&h, 0x06, 1, mem_iova + data_off, 0, 0)) return -1;
    uint64_t nsze;
    memcpy(&nsze, ident, 8);
    if (nsze < nlb) return -1;
    if (admin(&h, 0x05, 0, mem_iova + cq_off, (qsize - 1u) << 16 | 1u, 1u) ||
        admin(&h, 0x01, 0, mem_iova + sq_off, (qsize - 1u) << 16 | 1u, 1u << 16 | 1u)) {
        return -1;
    }
    /* PRP lists for transfers of more than two pages: one list page per buffer */
    uint32_t pages = (uint32_t)(page_round(xfer) / NVM_PAGE);
    for (uint32_t i = 0; i < depth && pages > 2; i++) {
        uint64_t buf = mem_iova + data_off + i * buf_bytes;
        uint64_t *list = (uint64_t *)(void *)(mem + data_off + i * buf_bytes + page_round(xfer));
        for (uint32_t p = 1; p < pages; p++) list[p - 1] = buf + (uint64_t)p * NVM_PAGE;
    }
    uint8_t *sq = mem + sq_off, *cq = mem + cq_off;
    uint32_t sq_tail = 0, cq_head = 0, phase = 1;
    uint64_t submitted = 0, completed = 0, lba = 0, x = seed | 1u, span = nsze - nlb + 1u;
    int64_t t0 = now_ns(), deadline = t0 + 120000000000LL, rc = 0;

    while (completed < ios) {
        /* submit into every free slot: slots are command ids; cid = buffer index */
        while (submitted < ios && submitted - completed < depth) {
            uint32_t cid = (uint32_t)(submitted % depth);
            uint8_t *e = sq + (uint64_t)sq_tail * 64u;
            uint64_t buf = mem_iova + data_off + cid * buf_bytes;
            uint64_t prp2 = pages == 2 ? buf + NVM_PAGE : pages > 2 ? buf + page_round(xfer) : 0;
            if (random) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                lba = (x % span) / nlb * nlb;
            }
            uint32_t nsid = 1, cdw10 = (uint32_t)lba, cdw11 = (uint32_t)(lba >> 32);
            uint32_t cdw12 = nlb - 1u, dw0 = (write ? 0x01u : 0x02u) | (cid << 16);
            memset(e + 8, 0, 56);
            memcpy(e, &dw0, 4);
            memcpy(e + 4, &nsid, 4);
            memcpy(e + 24, &buf, 8);
            memcpy(e + 32, &prp2, 8);
            memcpy(e + 40, &cdw10, 4);
            memcpy(e + 44, &cdw11, 4);
            memcpy(e + 48, &cdw12, 4);
            if (!random) lba = lba + 2u * nlb > nsze ? 0 : lba + nlb;
            sq_tail = sq_tail + 1u == qsize ? 0 : sq_tail + 1u;
            submitted++;
        }
        bar_store32(c, NVM_REG_DBS + 2u * dstride, sq_tail); /* release: entries first */
        kick(&h);
        uint32_t got = 0;
        for (;;) {
            uint8_t *e = cq + (uint64_t)cq_head * 16u;
            if (CQE_P(e) != phase) break;
            uint16_t sf;
            memcpy(&sf, e + 14, 2);
            if ((sf >> 1) & 0x7FFu) rc = -(int64_t)((sf >> 1) & 0x7FFu);
            if (++cq_head == qsize) {
                cq_head = 0;
                phase ^= 1u;
            }
            got++;
        }
        if (got) {
            completed += got;
            bar_store32(c, NVM_REG_DBS + 3u * dstride, cq_head);
        } else if (now_ns() > deadline) {
            rc = -2;
            break;
        }
        if (rc) break;
    }
    int64_t elapsed = now_ns() - t0;
    bar_store32(c, NVM_REG_CC, 0); /* §7.3.2: the reset deletes the I/O queues */
    kick(&h);
    wait_csts(&h, 1u, 0u);
    return rc ? rc : elapsed;
}

int64_t nvm_memcpy_bench(void *dst, const void *src, uint64_t bytes, uint32_t rounds) {
    int64_t t0 = now_ns();
    for (uint32_t i = 0; i < rounds; i++) {
        memcpy(dst, src, bytes);
        __asm__ __volatile__("" ::: "memory");
    }
    return now_ns() - t0;
}
