"""benchfs r|w FILE KB SECONDS: sequential 4 KiB reads or writes over the first KB of FILE.

SECONDS 0: exactly one pass over the region (to write the file before reading it).

RedLeaf's `benchfs`: it loops over the region (seeking back to 0 at its end) for
SECONDS and prints "benchfs MODE BYTES NS ERRORS". The file must exist and hold KB
for reads (write it first). Each request moves the 4 KiB buffer into the system call
and gets it back.
"""

from redleaf_lab.api import BLOCK_SIZE, Block, RRef
from redleaf_lab.interfaces.rv6 import O_CREATE, O_RDONLY, O_RDWR


def main(u, argv):
    if len(argv) != 5 or argv[1] not in ("r", "w"):
        u.puts(2, "usage: benchfs r|w FILE KB SECONDS\n")
        return 2
    write = argv[1] == "w"
    region = int(argv[3]) * 1024 // BLOCK_SIZE
    seconds = float(argv[4])
    fd = u.open(argv[2], O_RDWR | O_CREATE if write else O_RDONLY)
    if fd < 0:
        u.puts(2, f"benchfs: {argv[2]}: {u.strerror(fd)}\n")
        return 1
    buf = RRef.new(Block)
    view = buf.array()
    view[:] = 0x5A
    del view
    op = u.write if write else u.read
    start = u.uptime()
    end = start + int(seconds * 1e9)
    done = 0
    errors = 0
    block = 0
    now = start
    one_pass = seconds == 0
    while now < end or (one_pass and done < region * BLOCK_SIZE):
        for _ in range(64):
            n, buf = op(fd, buf, BLOCK_SIZE)
            if n != BLOCK_SIZE:
                errors += 1
            else:
                done += n
            block += 1
            if one_pass and block == region:
                break
            if block == region:
                block = 0
                u.seek(fd, 0, 0)
        now = u.uptime()
    u.close(fd)
    u.puts(1, f"benchfs {argv[1]} {done} {now - start} {errors}\n")
    return 0 if errors == 0 else 1
