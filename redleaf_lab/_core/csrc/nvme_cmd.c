/* NVMe controller model: command execution. Admin commands (NVMe Base 1.4 §5), NVM I/O
 * commands (NVMe Base 1.4 §6: Flush, Write, Read, Write Zeroes), PRP walking (§4.3) and
 * the Error Information log (§5.14.1.1). Called only from nvme_model.c with c->lock
 * held. Every host address is translated with nvm_translate (bounds-checked): a bad
 * one gives a status, never an access outside the arena.
 */
#include <string.h>
#include <sys/mman.h>

#include "nvme_internal.h"

static uint32_t le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* §4.2 SQE: CDW10..CDW15 at bytes 40..63. */
#define CDW(sqe, n) le32((sqe) + 40 + 4 * ((n) - 10))
#define NSID(sqe) le32((sqe) + 4)
#define PRP1(sqe) le64((sqe) + 24)
#define PRP2(sqe) le64((sqe) + 32)

typedef struct {
    uint8_t *p;
    uint32_t len;
} seg;

/* §4.3: map a transfer of `len` bytes described by PRP1/PRP2 into host segments.
 * PRP1 may have a dword-aligned offset; other data entries must have offset 0. One
 * page after PRP1's: PRP2 is that page. More: PRP2 points to a PRP list (qword
 * aligned); a list page's last entry chains to the next list page only when more
 * entries are still needed than the page has left (so exactly 512 = all data). */
static uint16_t prp_map(const nvm_ctrl *c, uint64_t prp1, uint64_t prp2, uint64_t len,
                        seg *segs, uint32_t *nseg) {
    *nseg = 0;
    if (len == 0) return NVM_SC_SUCCESS;
    if (prp1 & 3u) return NVM_SC_PRP_OFFSET_INVALID;
    uint64_t first = NVM_PAGE - (prp1 & (NVM_PAGE - 1u));
    if (first > len) first = len;
    uint8_t *p = nvm_translate(c, prp1, first);
    if (!p) return NVM_SC_DATA_XFER_ERROR;
    uint32_t k = 0;
    segs[k++] = (seg){p, (uint32_t)first};
    uint64_t rem = len - first;
    uint64_t pages = (rem + NVM_PAGE - 1u) / NVM_PAGE;
    if (pages == 1) {
        if (prp2 & (NVM_PAGE - 1u)) return NVM_SC_PRP_OFFSET_INVALID;
        if (!(p = nvm_translate(c, prp2, rem))) return NVM_SC_DATA_XFER_ERROR;
        segs[k++] = (seg){p, (uint32_t)rem};
    } else if (pages > 1) {
        uint64_t list = prp2;
        for (;;) {
            if (list & 7u) return NVM_SC_PRP_OFFSET_INVALID;
            uint32_t slots = (uint32_t)((NVM_PAGE - (list & (NVM_PAGE - 1u))) / 8u);
            const uint8_t *ent = nvm_translate(c, list, (uint64_t)slots * 8u);
            if (!ent) return NVM_SC_DATA_XFER_ERROR;
            uint64_t here = pages <= slots ? pages : slots - 1u;
            if (here == 0) return NVM_SC_PRP_OFFSET_INVALID; /* a list page without data */
            for (uint64_t i = 0; i < here; i++) {
                uint64_t e = le64(ent + 8 * i);
                uint64_t chunk = rem < NVM_PAGE ? rem : NVM_PAGE;
                if (e & (NVM_PAGE - 1u)) return NVM_SC_PRP_OFFSET_INVALID;
                if (!(p = nvm_translate(c, e, chunk))) return NVM_SC_DATA_XFER_ERROR;
                segs[k++] = (seg){p, (uint32_t)chunk};
                rem -= chunk;
            }
            pages -= here;
            if (!pages) break;
            list = le64(ent + 8u * (slots - 1u)); /* chain to the next list page */
        }
    }
    *nseg = k;
    return NVM_SC_SUCCESS;
}

/* Copy between `buf` and the host memory described by the command's PRPs. to_host: 1
 * for controller -> host (Read, Identify, logs). */
static uint16_t xfer(nvm_ctrl *c, const uint8_t *sqe, uint8_t *buf, uint64_t len, int to_host) {
    static __thread seg segs[NVM_MAX_XFER_PAGES + 1u];
    uint32_t n;
    if (len > (uint64_t)NVM_MAX_XFER_PAGES * NVM_PAGE) return NVM_SC_INVALID_FIELD;
    uint16_t st = prp_map(c, PRP1(sqe), PRP2(sqe), len, segs, &n);
    if (st) return st;
    for (uint32_t i = 0; i < n; i++) {
        if (to_host) memcpy(segs[i].p, buf, segs[i].len);
        else memcpy(buf, segs[i].p, segs[i].len);
        buf += segs[i].len;
    }
    return NVM_SC_SUCCESS;
}

void nvm_log_error(nvm_ctrl *c, uint16_t sqid, const uint8_t *sqe, uint16_t status) {
    nvm_error *e = &c->errlog[c->error_count % NVM_ERRLOG_ENTRIES];
    c->error_count++;
    uint16_t cid;
    memcpy(&cid, sqe + 2, 2);
    *e = (nvm_error){.error_count = c->error_count, .sqid = sqid, .cid = cid,
                     .status = (uint16_t)(((status & 0xFFu) << 1) | (((status >> 8) & 7u) << 9)),
                     .param_loc = 0xFFFF, .lba = CDW(sqe, 10) | ((uint64_t)CDW(sqe, 11) << 32),
                     .nsid = NSID(sqe)};
}

/* §5.15 Identify. CNS 00h namespace, 01h controller, 02h active namespace ID list. */
static uint16_t identify(nvm_ctrl *c, const uint8_t *sqe) {
    uint8_t d[NVM_PAGE];
    memset(d, 0, sizeof d);
    uint32_t cns = CDW(sqe, 10) & 0xFFu, nsid = NSID(sqe);
    if (cns == 0) { /* §5.15.2.1 Identify Namespace data structure */
        if (nsid != 1) return NVM_SC_INVALID_NS;
        put64(d + 0, c->blocks);  /* NSZE */
        put64(d + 8, c->blocks);  /* NCAP */
        put64(d + 16, c->blocks); /* NUSE */
        /* LBAF (§5.15.2.1, Figure 249): MS = 0, LBADS. Like a real drive, the namespace
         * lists 512-byte and 4 KiB formats (a 1 or 2 KiB model adds its own as a third);
         * FLBAS bits 3:0 select the one in use, the model's lba_shift. */
        uint32_t formats[3] = {9, 12, 0}, nformats = 2, in_use = 0;
        if (c->lba_shift != 9 && c->lba_shift != 12) formats[nformats++] = c->lba_shift;
        for (uint32_t i = 0; i < nformats; i++) {
            put32(d + 128 + 4 * i, formats[i] << 16);
            if (formats[i] == c->lba_shift) in_use = i;
        }
        d[25] = (uint8_t)(nformats - 1u); /* NLBAF (0-based) */
        d[26] = (uint8_t)in_use;          /* FLBAS: the format in use */
    } else if (cns == 1) { /* §5.15.2.2 Identify Controller data structure */
        put16(d + 0, 0x1de5);     /* VID (lab value) */
        put16(d + 2, 0x1de5);     /* SSVID */
        memcpy(d + 4, "RLLAB-0001          ", 20);                       /* SN */
        memcpy(d + 24, "RedLeaf Lab NVMe model                  ", 40); /* MN */
        memcpy(d + 64, "1.0     ", 8);                                   /* FR */
        d[77] = NVM_MDTS;                                                /* MDTS */
        put16(d + 78, 1);          /* CNTLID */
        put32(d + 80, 0x00010400); /* VER */
        put16(d + 256, 0);         /* OACS: no optional admin commands */
        d[258] = 3;                /* ACL (0-based) */
        d[259] = 3;                /* AERL */
        d[262] = NVM_ERRLOG_ENTRIES - 1u; /* ELPE (0-based) */
        d[512] = 0x66;             /* SQES: 64 B required and maximum */
        d[513] = 0x44;             /* CQES: 16 B */
        put32(d + 516, 1);         /* NN */
        put16(d + 520, 1u << 3);   /* ONCS: Write Zeroes */
        d[525] = 1;                /* VWC present: Flush is meaningful */
    } else if (cns == 2) { /* §5.15.2.3 active NSIDs greater than NSID, ascending */
        if (nsid >= 0xFFFFFFFEu) return NVM_SC_INVALID_NS;
        if (nsid < 1) put32(d, 1);
    } else {
        return NVM_SC_INVALID_FIELD;
    }
    return xfer(c, sqe, d, sizeof d, 1);
}

/* §5.3 Create I/O Completion Queue and §5.4 Create I/O Submission Queue. */
static uint16_t create_queue(nvm_ctrl *c, const uint8_t *sqe, int is_sq) {
    uint32_t cdw10 = CDW(sqe, 10), cdw11 = CDW(sqe, 11);
    uint32_t qid = cdw10 & 0xFFFFu, qsize = (cdw10 >> 16) + 1u;
    uint32_t limit = is_sq ? c->nsq_alloc : c->ncq_alloc;
    uint32_t cc = bar_load32(c, NVM_REG_CC);
    nvm_queue *q = is_sq ? &c->sq[qid <= c->max_ioq ? qid : 0] : &c->cq[qid <= c->max_ioq ? qid : 0];
    if (qid == 0 || qid > limit || q->valid) return NVM_SC_INVALID_QID;
    if (qsize < 2 || qsize > c->mqes + 1u) return NVM_SC_INVALID_QSIZE;
    if (!(cdw11 & 1u)) return NVM_SC_INVALID_FIELD; /* CAP.CQR: contiguous queues only */
    /* §3.1.5: CC.IOSQES = 6 / CC.IOCQES = 4 must be set before I/O queues are created */
    if (is_sq ? ((cc >> 16) & 0xFu) != 6u : ((cc >> 20) & 0xFu) != 4u) {
        return NVM_SC_INVALID_FIELD;
    }
    uint64_t base = PRP1(sqe);
    if (base & (NVM_PAGE - 1u)) return NVM_SC_PRP_OFFSET_INVALID;
    uint8_t *p = nvm_translate(c, base, (uint64_t)qsize * (is_sq ? 64u : 16u));
    if (!p) return NVM_SC_DATA_XFER_ERROR;
    if (is_sq) {
        uint32_t cqid = cdw11 >> 16;
        if (cqid == 0 || cqid > c->max_ioq || !c->cq[cqid].valid) return NVM_SC_CQ_INVALID;
        *q = (nvm_queue){.base = p, .size = qsize, .cqid = (uint16_t)cqid, .valid = 1};
        c->cq[cqid].users++;
    } else {
        *q = (nvm_queue){.base = p, .size = qsize, .phase = 1, .valid = 1};
    }
    return NVM_SC_SUCCESS;
}

/* §5.5 Delete I/O Completion Queue and §5.6 Delete I/O Submission Queue. */
static uint16_t delete_queue(nvm_ctrl *c, const uint8_t *sqe, int is_sq) {
    uint32_t qid = CDW(sqe, 10) & 0xFFFFu;
    if (qid == 0 || qid > c->max_ioq) return NVM_SC_INVALID_QID;
    nvm_queue *q = is_sq ? &c->sq[qid] : &c->cq[qid];
    if (!q->valid) return NVM_SC_INVALID_QID;
    if (!is_sq && q->users) return NVM_SC_INVALID_QUEUE_DELETION;
    if (is_sq) c->cq[q->cqid].users--;
    memset(q, 0, sizeof *q);
    return NVM_SC_SUCCESS;
}

/* §5.21.1.7 Number of Queues (Feature 07h) for Set (§5.21) and Get (§5.9) Features. */
static uint16_t features(nvm_ctrl *c, const uint8_t *sqe, uint32_t *dw0, int set) {
    uint32_t fid = CDW(sqe, 10) & 0xFFu;
    if (fid != 0x07) return NVM_SC_INVALID_FIELD;
    if (set) {
        uint32_t cdw11 = CDW(sqe, 11), nsqr = cdw11 & 0xFFFFu, ncqr = cdw11 >> 16;
        if (nsqr == 0xFFFFu || ncqr == 0xFFFFu) return NVM_SC_INVALID_FIELD;
        c->nsq_alloc = nsqr + 1u < c->max_ioq ? nsqr + 1u : c->max_ioq;
        c->ncq_alloc = ncqr + 1u < c->max_ioq ? ncqr + 1u : c->max_ioq;
    }
    *dw0 = (c->nsq_alloc - 1u) | ((c->ncq_alloc - 1u) << 16);
    return NVM_SC_SUCCESS;
}

/* §5.14 Get Log Page; only LID 01h, Error Information (§5.14.1.1), newest first. */
static uint16_t get_log_page(nvm_ctrl *c, const uint8_t *sqe) {
    uint32_t cdw10 = CDW(sqe, 10), lid = cdw10 & 0xFFu;
    uint64_t numd = ((uint64_t)(CDW(sqe, 11) & 0xFFFFu) << 16 | (cdw10 >> 16)) + 1u;
    uint64_t offset = CDW(sqe, 12) | ((uint64_t)CDW(sqe, 13) << 32);
    if (lid != 0x01) return NVM_SC_INVALID_LOG_PAGE;
    uint64_t len = numd * 4u;
    if (offset & 3u || len > NVM_PAGE) return NVM_SC_INVALID_FIELD;
    static __thread uint8_t page[NVM_ERRLOG_ENTRIES * 64u + NVM_PAGE];
    memset(page, 0, sizeof page);
    uint64_t have = c->error_count < NVM_ERRLOG_ENTRIES ? c->error_count : NVM_ERRLOG_ENTRIES;
    for (uint64_t i = 0; i < have; i++) {
        const nvm_error *e = &c->errlog[(c->error_count - 1u - i) % NVM_ERRLOG_ENTRIES];
        uint8_t *d = page + 64u * i;
        put64(d, e->error_count);
        put16(d + 8, e->sqid);
        put16(d + 10, e->cid);
        put16(d + 12, e->status);
        put16(d + 14, e->param_loc);
        put64(d + 16, e->lba);
        put32(d + 24, e->nsid);
    }
    if (offset > NVM_ERRLOG_ENTRIES * 64u) return NVM_SC_INVALID_FIELD;
    return xfer(c, sqe, page + offset, len, 1);
}

uint16_t nvm_exec_admin(nvm_ctrl *c, const uint8_t *sqe, uint32_t *dw0) {
    if (sqe[1]) return NVM_SC_INVALID_FIELD; /* §4.2: no fused ops, PSDT 00b (PRPs) */
    switch (sqe[0]) {
    case 0x00: return delete_queue(c, sqe, 1);
    case 0x01: return create_queue(c, sqe, 1);
    case 0x02: return get_log_page(c, sqe);
    case 0x04: return delete_queue(c, sqe, 0);
    case 0x05: return create_queue(c, sqe, 0);
    case 0x06: return identify(c, sqe);
    case 0x09: return features(c, sqe, dw0, 1);
    case 0x0A: return features(c, sqe, dw0, 0);
    default: return NVM_SC_INVALID_OPCODE;
    }
}

/* NVM command set (§6): Flush 00h, Write 01h, Read 02h, Write Zeroes 08h. */
uint16_t nvm_exec_io(nvm_ctrl *c, const uint8_t *sqe, uint32_t *dw0) {
    (void)dw0;
    uint8_t op = sqe[0];
    uint32_t nsid = NSID(sqe);
    if (sqe[1]) return NVM_SC_INVALID_FIELD;
    if (op != 0x00 && op != 0x01 && op != 0x02 && op != 0x08) return NVM_SC_INVALID_OPCODE;
    if (op == 0x00) { /* Flush: NSID FFFFFFFFh means every namespace */
        if (nsid != 1 && nsid != 0xFFFFFFFFu) return NVM_SC_INVALID_NS;
        if (c->media_fd >= 0) msync(c->media, c->media_bytes, MS_SYNC);
        return NVM_SC_SUCCESS;
    }
    if (nsid != 1) return NVM_SC_INVALID_NS;
    uint64_t slba = CDW(sqe, 10) | ((uint64_t)CDW(sqe, 11) << 32);
    uint64_t nlb = (CDW(sqe, 12) & 0xFFFFu) + 1u; /* 0-based */
    if (slba >= c->blocks || nlb > c->blocks - slba) return NVM_SC_LBA_RANGE;
    uint8_t *media = c->media + (slba << c->lba_shift);
    uint64_t len = nlb << c->lba_shift;
    if (op == 0x08) {
        memset(media, 0, len);
        return NVM_SC_SUCCESS;
    }
    uint16_t st = xfer(c, sqe, media, len, op == 0x02);
    if (st) return st;
    if (op == 0x02) {
        c->stats.reads++;
        c->stats.bytes_read += len;
    } else {
        c->stats.writes++;
        c->stats.bytes_written += len;
    }
    return NVM_SC_SUCCESS;
}
