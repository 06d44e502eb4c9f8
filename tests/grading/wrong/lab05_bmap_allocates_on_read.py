# ruff: noqa: F821  (the names are the domain module's, where the grader splices this)
# Allocates the mid-level indirect block even on a read (alloc=False): a hole's lookup
# then changes the disk outside any transaction.
def bmap(self, ip, bn, alloc, zero=True):
    if bn < NDIRECT:
        return self._slot(ip, bn, alloc, zero)
    bn -= NDIRECT
    if bn < NINDIRECT:
        top = self._slot(ip, SINGLE, alloc)
        return self._entry(top, bn, alloc, zero) if top else 0
    bn -= NINDIRECT
    top = self._slot(ip, DOUBLE, alloc)
    if not top:
        return 0
    mid = self._entry(top, bn // NINDIRECT, True, True)
    return self._entry(mid, bn % NINDIRECT, alloc, zero)
