/* NVMe controller model: registers, controller enable/reset, queue processing, device
 * thread. Commands themselves are in nvme_cmd.c. Spec references are to the NVM Express
 * Base Specification 1.4. Locking and memory ordering: see nvme_model.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nvme_internal.h"

#define CC_EN 1u
#define CC_MPS(cc) (((cc) >> 7) & 0xFu)
#define CC_CSS(cc) (((cc) >> 4) & 0x7u)
#define CC_SHN(cc) (((cc) >> 14) & 0x3u)
#define CSTS_RDY 1u
#define CSTS_CFS 2u
#define CSTS_SHST_DONE (2u << 2)

uint8_t *nvm_translate(const nvm_ctrl *c, uint64_t iova, uint64_t len) {
    if (iova < c->iova_base || len > c->arena_size) return NULL;
    uint64_t off = iova - c->iova_base;
    if (off > c->arena_size - len) return NULL;
    return c->arena + off;
}

static uint32_t sq_db(const nvm_ctrl *c, uint32_t qid) {
    /* §3.1.24: SQyTDBL at 1000h + (2y * (4 << CAP.DSTRD)) */
    return NVM_REG_DBS + (2u * qid) * (4u << c->dstrd);
}
static uint32_t cq_db(const nvm_ctrl *c, uint32_t qid) {
    /* §3.1.25: CQyHDBL at 1000h + ((2y + 1) * (4 << CAP.DSTRD)) */
    return NVM_REG_DBS + (2u * qid + 1u) * (4u << c->dstrd);
}

static void write_static_regs(nvm_ctrl *c) {
    /* §3.1.1 CAP: MQES 15:0, CQR bit 16 (contiguous queues required), TO 31:24 in 500 ms
     * units, DSTRD 35:32, CSS bit 37 (NVM command set), MPSMIN = MPSMAX = 0 (4 KiB). */
    uint64_t cap = (uint64_t)c->mqes | (1ull << 16) | (20ull << 24) | ((uint64_t)c->dstrd << 32) |
                   (1ull << 37);
    bar_store64(c, NVM_REG_CAP, cap);
    bar_store32(c, NVM_REG_VS, 0x00010400u); /* §3.1.2: version 1.4.0 */
}

static void set_csts(nvm_ctrl *c) {
    uint32_t csts = (c->enabled ? CSTS_RDY : 0u) | (c->fatal ? CSTS_CFS : 0u);
    uint32_t old = bar_load32(c, NVM_REG_CSTS);
    csts |= old & (3u << 2); /* SHST is kept until the next reset */
    bar_store32(c, NVM_REG_CSTS, csts);
}

/* §7.3.2 controller reset (CC.EN 1 -> 0): delete every I/O queue, reset the admin
 * queue, clear the doorbells and RDY/CFS/SHST. The media keeps its contents. */
static void reset_locked(nvm_ctrl *c) {
    memset(c->sq, 0, sizeof(nvm_queue) * (c->max_ioq + 1u));
    memset(c->cq, 0, sizeof(nvm_queue) * (c->max_ioq + 1u));
    for (uint32_t q = 0; q <= c->max_ioq; q++) {
        bar_store32(c, sq_db(c, q), 0);
        bar_store32(c, cq_db(c, q), 0);
    }
    c->enabled = 0;
    c->fatal = 0;
    c->nsq_alloc = c->ncq_alloc = c->max_ioq;
    bar_store32(c, NVM_REG_CSTS, 0);
    c->stats.resets++;
}

/* §7.6.1 steps 3-5 from the controller's side: CC.EN 0 -> 1 with AQA/ASQ/ACQ set. */
static void enable_locked(nvm_ctrl *c, uint32_t cc) {
    uint32_t aqa = bar_load32(c, NVM_REG_AQA);
    uint64_t asq = bar_load64(c, NVM_REG_ASQ), acq = bar_load64(c, NVM_REG_ACQ);
    uint32_t asqs = (aqa & 0xFFFu) + 1u, acqs = ((aqa >> 16) & 0xFFFu) + 1u; /* §3.1.8 */
    uint8_t *sq = nvm_translate(c, asq, (uint64_t)asqs * 64u);
    uint8_t *cq = nvm_translate(c, acq, (uint64_t)acqs * 16u);
    /* §3.1.9/3.1.10: ASQ/ACQ are page aligned; §3.1.5: MPS within CAP.MPSMIN..MPSMAX,
     * CSS must be a supported command set. Anything else is a fatal condition here. */
    if (asqs < 2 || acqs < 2 || !sq || !cq || (asq | acq) & (NVM_PAGE - 1u) ||
        CC_MPS(cc) != 0 || CC_CSS(cc) != 0) {
        c->fatal = 1;
        set_csts(c);
        return;
    }
    c->sq[0] = (nvm_queue){.base = sq, .size = asqs, .valid = 1, .cqid = 0};
    c->cq[0] = (nvm_queue){.base = cq, .size = acqs, .valid = 1, .phase = 1, .users = 1};
    c->enabled = 1;
    set_csts(c);
}

static void handle_cc_locked(nvm_ctrl *c) {
    uint32_t cc = bar_load32(c, NVM_REG_CC);
    uint32_t was = c->cc_seen;
    c->cc_seen = cc;
    if (!(cc & CC_EN)) {
        if (c->enabled || c->fatal || (was & CC_EN) || bar_load32(c, NVM_REG_CSTS)) {
            reset_locked(c);
        }
        return;
    }
    if (c->fatal) return;
    if (!c->enabled) enable_locked(c, cc);
    /* §7.6.2 shutdown: CC.SHN normal/abrupt -> CSTS.SHST = complete (nothing to flush) */
    if (c->enabled && CC_SHN(cc) && ((bar_load32(c, NVM_REG_CSTS) >> 2) & 3u) != 2u) {
        bar_store32(c, NVM_REG_CSTS, bar_load32(c, NVM_REG_CSTS) | CSTS_SHST_DONE);
    }
}

static void go_fatal_locked(nvm_ctrl *c) {
    c->fatal = 1;
    c->enabled = 0; /* stops processing; RDY stays as reported until reset (§3.1.6) */
    uint32_t csts = bar_load32(c, NVM_REG_CSTS) | CSTS_CFS;
    bar_store32(c, NVM_REG_CSTS, csts);
}

/* §4.6: post one completion. The last dword (CID, status, phase) is the release store. */
static void post_cqe(nvm_ctrl *c, nvm_queue *cq, uint32_t dw0, uint16_t sqhd, uint16_t sqid,
                     uint16_t cid, uint16_t status) {
    uint8_t *e = cq->base + (uint64_t)cq->tail * 16u;
    uint32_t dw1 = 0, dw2 = (uint32_t)sqhd | ((uint32_t)sqid << 16);
    memcpy(e, &dw0, 4);
    memcpy(e + 4, &dw1, 4);
    memcpy(e + 8, &dw2, 4);
    /* §4.6.1: status field = P (bit 0) | SC (8:1) | SCT (11:9) | M (14) | DNR (15) */
    uint32_t sf = (uint32_t)cq->phase | ((uint32_t)(status & 0xFFu) << 1) |
                  ((uint32_t)((status >> 8) & 7u) << 9) | (status ? (1u << 15) : 0u);
    atomic_store_explicit((_Atomic uint32_t *)(void *)(e + 12), (uint32_t)cid | (sf << 16),
                          memory_order_release);
    if (++cq->tail == cq->size) { /* §4.6: the phase tag inverts on each wrap */
        cq->tail = 0;
        cq->phase ^= 1u;
    }
    c->stats.commands++;
    if (status) c->stats.errors++;
}

/* Fetch and execute commands of SQ `qid` while its CQ has room (§4.1: a queue is full
 * when tail + 1 == head). Returns completions posted. */
static int drain_sq_locked(nvm_ctrl *c, uint32_t qid) {
    nvm_queue *sq = &c->sq[qid];
    nvm_queue *cq = &c->cq[sq->cqid];
    uint32_t tail = bar_load32(c, sq_db(c, qid)); /* acquire: SQ entries are now visible */
    if (tail >= sq->size) return 0; /* invalid doorbell write: ignored (§4.1) */
    sq->tail = tail;
    int done = 0;
    while (sq->head != sq->tail) {
        uint32_t cqh = bar_load32(c, cq_db(c, sq->cqid));
        if (cqh < cq->size) cq->head = cqh;
        if ((cq->tail + 1u) % cq->size == cq->head) break; /* CQ full: wait for the host */
        uint8_t sqe[64];
        memcpy(sqe, sq->base + (uint64_t)sq->head * 64u, 64);
        sq->head = (sq->head + 1u) % sq->size;
        uint32_t dw0 = 0;
        uint16_t status =
            qid == 0 ? nvm_exec_admin(c, sqe, &dw0) : nvm_exec_io(c, sqe, &dw0);
        if (status) nvm_log_error(c, (uint16_t)qid, sqe, status);
        uint16_t cid;
        memcpy(&cid, sqe + 2, 2);
        /* A command may have deleted this very queue pair's CQ (admin only): re-check. */
        if (!cq->valid) break;
        post_cqe(c, cq, dw0, (uint16_t)sq->head, (uint16_t)qid, cid, status);
        done++;
        if (c->fatal_after && --c->fatal_after == 0) {
            go_fatal_locked(c);
            break;
        }
        if (!sq->valid) break;
    }
    return done;
}

static int pass_locked(nvm_ctrl *c) {
    c->stats.passes++;
    if (bar_load32(c, NVM_REG_CC) != c->cc_seen) handle_cc_locked(c);
    if (!c->enabled || c->fatal) return 0;
    int done = drain_sq_locked(c, 0);
    for (uint32_t q = 1; q <= c->max_ioq && c->enabled; q++) {
        if (c->sq[q].valid) done += drain_sq_locked(c, q);
    }
    return done;
}

int nvm_process(nvm_ctrl *c) {
    pthread_mutex_lock(&c->lock);
    int done = 0, more;
    do { /* repeat while progress: admin commands may create queues with pending work */
        more = pass_locked(c);
        done += more;
    } while (more > 0);
    pthread_mutex_unlock(&c->lock);
    return done;
}

static void *device_thread(void *arg) {
    nvm_ctrl *c = arg;
    uint32_t idle = 0;
    while (atomic_load_explicit(&c->thread_run, memory_order_acquire)) {
        pthread_mutex_lock(&c->lock);
        int done = pass_locked(c);
        pthread_mutex_unlock(&c->lock);
        if (done) {
            idle = 0;
        } else if (++idle > 2000) { /* idle: back off so the host thread gets the CPU */
            struct timespec ts = {0, idle > 200000 ? 200000 : 2000};
            nanosleep(&ts, NULL);
        } else if (idle % 64 == 0) {
            sched_yield();
        }
    }
    return NULL;
}

int nvm_start_thread(nvm_ctrl *c) {
    if (c->thread_started) return -1;
    atomic_store(&c->thread_run, 1);
    if (pthread_create(&c->thread, NULL, device_thread, c) != 0) return -1;
    c->thread_started = 1;
    return 0;
}

void nvm_stop_thread(nvm_ctrl *c) {
    if (!c->thread_started) return;
    atomic_store(&c->thread_run, 0);
    pthread_join(c->thread, NULL);
    c->thread_started = 0;
}

int nvm_thread_running(nvm_ctrl *c) { return c->thread_started; }

void nvm_fatal(nvm_ctrl *c) {
    pthread_mutex_lock(&c->lock);
    go_fatal_locked(c);
    pthread_mutex_unlock(&c->lock);
}

void nvm_fatal_after(nvm_ctrl *c, uint64_t commands) {
    pthread_mutex_lock(&c->lock);
    c->fatal_after = commands;
    pthread_mutex_unlock(&c->lock);
}

void nvm_quiesce(nvm_ctrl *c) {
    pthread_mutex_lock(&c->lock);
    /* Like a function-level reset: every register the host set goes back to its reset
     * value, including CC (so a stale CC.EN=1 of the dead driver cannot re-enable the
     * controller on freed queue memory), and no queue is referenced after this. */
    reset_locked(c);
    bar_store32(c, NVM_REG_AQA, 0);
    bar_store64(c, NVM_REG_ASQ, 0);
    bar_store64(c, NVM_REG_ACQ, 0);
    bar_store32(c, NVM_REG_CC, 0);
    c->cc_seen = 0;
    c->fatal_after = 0;
    pthread_mutex_unlock(&c->lock);
}

void nvm_get_stats(nvm_ctrl *c, nvm_stats *out) {
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    pthread_mutex_unlock(&c->lock);
}

void *nvm_bar(nvm_ctrl *c) { return c->bar; }
uint64_t nvm_bar_size(nvm_ctrl *c) { return c->bar_size; }
uint8_t *nvm_media(nvm_ctrl *c) { return c->media; }
uint64_t nvm_media_bytes(nvm_ctrl *c) { return c->media_bytes; }

static int open_media(nvm_ctrl *c, const char *path) {
    if (!path || !*path) {
        c->media = mmap(NULL, c->media_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (c->media == MAP_FAILED) return -1;
        /* touch every page: untouched anonymous memory reads as the shared zero page,
         * which would make reads look faster than memory bandwidth allows */
        memset(c->media, 0, c->media_bytes);
        return 0;
    }
    c->media_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (c->media_fd < 0) return -1;
    struct stat st;
    if (fstat(c->media_fd, &st) || ((uint64_t)st.st_size < c->media_bytes &&
                                    ftruncate(c->media_fd, (off_t)c->media_bytes))) {
        return -1;
    }
    c->media = mmap(NULL, c->media_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, c->media_fd, 0);
    return c->media == MAP_FAILED ? -1 : 0;
}

nvm_ctrl *nvm_create(void *arena, uint64_t arena_size, uint64_t iova_base, uint64_t blocks,
                     uint32_t lba_shift, uint32_t mqes, uint32_t dstrd, uint32_t max_ioq,
                     const char *media_path) {
    if (!arena || !arena_size || blocks == 0 || lba_shift < 9 || lba_shift > 12 ||
        mqes < 1 || mqes > 0xFFFF || dstrd > 4 || max_ioq < 1 || max_ioq > 1024 ||
        blocks > (UINT64_MAX >> lba_shift)) {
        return NULL;
    }
    nvm_ctrl *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->arena = arena;
    c->arena_size = arena_size;
    c->iova_base = iova_base;
    c->blocks = blocks;
    c->lba_shift = lba_shift;
    c->mqes = mqes;
    c->dstrd = dstrd;
    c->max_ioq = max_ioq;
    c->media_fd = -1;
    c->media = MAP_FAILED;
    c->media_bytes = blocks << lba_shift;
    c->bar_size = NVM_REG_DBS + (uint64_t)(2u * (max_ioq + 1u)) * (4u << dstrd);
    c->bar_size = (c->bar_size + NVM_PAGE - 1) & ~(uint64_t)(NVM_PAGE - 1);
    c->bar = aligned_alloc(NVM_PAGE, c->bar_size);
    c->sq = calloc(max_ioq + 1u, sizeof(nvm_queue));
    c->cq = calloc(max_ioq + 1u, sizeof(nvm_queue));
    pthread_mutex_init(&c->lock, NULL);
    if (!c->bar || !c->sq || !c->cq || open_media(c, media_path)) {
        if (c->media == MAP_FAILED) c->media = NULL;
        nvm_destroy(c);
        return NULL;
    }
    memset(c->bar, 0, c->bar_size);
    write_static_regs(c);
    reset_locked(c);
    c->stats.resets = 0;
    return c;
}

void nvm_destroy(nvm_ctrl *c) {
    if (!c) return;
    nvm_stop_thread(c);
    if (c->media && c->media != MAP_FAILED) munmap(c->media, c->media_bytes);
    if (c->media_fd >= 0) close(c->media_fd);
    pthread_mutex_destroy(&c->lock);
    free(c->bar);
    free(c->sq);
    free(c->cq);
    free(c);
}
