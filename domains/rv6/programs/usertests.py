"""usertests [NAME...]: a battery of system-call tests run inside Rv6 (xv6's usertests).

Each test prints "test NAME: OK" or "test NAME: FAILED (why)"; the last line is
"ALL TESTS PASSED" or "SOME TESTS FAILED". Tests clean up after themselves. `fulldisk`
fills the disk until ENOSPC, so it runs last.
"""

from redleaf_lab.api import Block, RRef
from redleaf_lab.interfaces.rv6 import (
    BSIZE,
    DIRSIZ,
    EBADF,
    EEXIST,
    EFBIG,
    EINVAL,
    EISDIR,
    ELOOP,
    EMFILE,
    ENAMETOOLONG,
    ENOENT,
    ENOEXEC,
    ENOSPC,
    ENOTDIR,
    ENOTEMPTY,
    EPIPE,
    MAXFILE,
    NDIRECT,
    NINDIRECT,
    NOFILE,
    O_CREATE,
    O_RDONLY,
    O_RDWR,
    O_TRUNC,
    O_WRONLY,
    SEEK_SET,
    T_FILE,
)


class Failed(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Failed(why)


def put(u, path, data):
    fd = u.open(path, O_CREATE | O_WRONLY | O_TRUNC)
    check(fd >= 0, f"create {path}: {fd}")
    check(u.write_bytes(fd, data) == len(data), f"write {path}")
    u.close(fd)


def get(u, path):
    fd = u.open(path, O_RDONLY)
    if fd < 0:
        return fd
    data = u.read_all(fd)
    u.close(fd)
    return data


def t_files(u):
    put(u, "ut_f", b"hello rv6" * 1000)
    check(get(u, "ut_f") == b"hello rv6" * 1000, "read back")
    fd = u.open("ut_f", O_RDWR)
    check(u.seek(fd, 5, SEEK_SET) == 5, "seek")
    check(u.write_bytes(fd, b"XY") == 2, "overwrite")
    u.close(fd)
    check(get(u, "ut_f")[:10] == b"helloXYv6h", "overwrite read back")
    fd = u.open("ut_f", O_CREATE | O_RDWR)
    check(fd >= 0, "create of an existing file opens it")
    u.close(fd)
    check(u.unlink("ut_f") == 0, "unlink")
    check(get(u, "ut_f") == -ENOENT, "gone after unlink")


def t_dirs(u):
    check(u.mkdir("ut_d") == 0, "mkdir")
    check(u.mkdir("ut_d") == -EEXIST, "mkdir twice")
    check(u.mkdir("ut_d/a") == 0 and u.mkdir("ut_d/a/b") == 0, "nested mkdir")
    check(u.chdir("ut_d/a") == 0, "chdir")
    put(u, "b/f", b"x")
    check(get(u, "../a/b/f") == b"x", "relative path with ..")
    check(u.chdir("../..") == 0, "chdir ..")
    check(u.unlink("ut_d/a") == -ENOTEMPTY, "rmdir of a non-empty directory")
    put(u, "ut_file", b"")
    check(u.open("ut_file/x", O_RDONLY) == -ENOTDIR, "a file as a directory")
    check(u.open("ut_d", O_WRONLY) == -EISDIR, "a directory opened for writing")
    fd = u.open("ut_d/a", O_RDONLY)
    err, entries = u.readdir(fd)
    u.close(fd)
    check(err == 0 and sorted(n for _i, n in entries) == [".", "..", "b"], f"readdir {entries}")
    for p in ("ut_d/a/b/f", "ut_d/a/b", "ut_d/a", "ut_d", "ut_file"):
        check(u.unlink(p) == 0, f"unlink {p}")


def t_links(u):
    put(u, "ut_l1", b"linked")
    check(u.link("ut_l1", "ut_l2") == 0, "link")
    fd = u.open("ut_l2", O_RDONLY)
    err, _dev, _ino, itype, nlink, size = u.fstat(fd)
    u.close(fd)
    check(err == 0 and itype == T_FILE and nlink == 2 and size == 6, "fstat of a linked file")
    check(u.link("ut_l1", "ut_l2") == -EEXIST, "link over an existing name")
    check(u.unlink("ut_l1") == 0 and get(u, "ut_l2") == b"linked", "data after one unlink")
    check(u.unlink("ut_l2") == 0, "last unlink")
    check(u.link("/", "ut_root") < 0, "hard link to a directory refused")


def t_symlinks(u):
    put(u, "ut_target", b"target data")
    check(u.symlink("ut_target", "ut_s1") == 0, "symlink")
    check(get(u, "ut_s1") == b"target data", "read through a symlink")
    check(u.readlink("ut_s1") == (0, "ut_target"), "readlink")
    check(u.symlink("ut_s_b", "ut_s_a") == 0 and u.symlink("ut_s_a", "ut_s_b") == 0, "loop")
    check(u.open("ut_s_a", O_RDONLY) == -ELOOP, "a symlink loop is ELOOP")
    check(u.symlink("ut_nowhere", "ut_dangling") == 0, "dangling symlink")
    check(u.open("ut_dangling", O_RDONLY) == -ENOENT, "a dangling symlink is ENOENT")
    prev = "ut_target"
    for i in range(10):
        check(u.symlink(prev, f"ut_c{i}") == 0, "chain")
        prev = f"ut_c{i}"
    check(get(u, "ut_c9") == b"target data", "a chain of 10 links is followed")
    check(u.symlink("ut_c9", "ut_c10") == 0, "chain 11")
    check(u.open("ut_c10", O_RDONLY) == -ELOOP, "11 links is ELOOP")
    for p in ["ut_target", "ut_s1", "ut_s_a", "ut_s_b", "ut_dangling"] + [
            f"ut_c{i}" for i in range(11)]:
        check(u.unlink(p) == 0, f"unlink {p}")


def t_pipes(u):
    err, r, w = u.pipe()
    check(err == 0, "pipe")
    pid = u.spawn("/echo", ("echo", "through", "a", "pipe"), (0, w, 2))
    check(pid > 0, "spawn echo")
    u.close(w)
    data = u.read_all(r)
    u.close(r)
    check(data == b"through a pipe\n", f"pipe data {data!r}")
    check(u.wait(pid) == (pid, 0), "wait for echo")
    err, r, w = u.pipe()
    u.close(r)
    check(u.write_bytes(w, b"x") == -EPIPE, "write with no reader is EPIPE")
    u.close(w)


def t_bigfile(u):
    fd = u.open("ut_big", O_CREATE | O_RDWR)
    marks = [0, NDIRECT - 1, NDIRECT, NDIRECT + NINDIRECT - 1, NDIRECT + NINDIRECT,
             NDIRECT + NINDIRECT + NINDIRECT + 3]
    for bn in marks:
        u.seek(fd, bn * BSIZE, SEEK_SET)
        check(u.write_bytes(fd, bytes([bn % 251]) * BSIZE) == BSIZE, f"write block {bn}")
    for bn in marks:
        u.seek(fd, bn * BSIZE, SEEK_SET)
        check(u.read_bytes(fd, BSIZE) == bytes([bn % 251]) * BSIZE, f"read block {bn}")
    u.seek(fd, (NDIRECT + 5) * BSIZE, SEEK_SET)
    check(u.read_bytes(fd, BSIZE) == bytes(BSIZE), "a hole reads as zeros")
    u.seek(fd, MAXFILE * BSIZE, SEEK_SET)
    check(u.write_bytes(fd, b"x") == -EFBIG, "writing past the largest file is EFBIG")
    u.close(fd)
    check(u.unlink("ut_big") == 0, "unlink")


def t_openfiles(u):
    fds = []
    while True:
        fd = u.open("/README", O_RDONLY)
        if fd < 0:
            break
        fds.append(fd)
    check(fd == -EMFILE, f"too many open files gives {fd}")
    check(len(fds) + 3 == NOFILE, f"{len(fds)} files opened")
    for fd in fds:
        u.close(fd)


def t_names(u):
    name = "n" * DIRSIZ
    put(u, name, b"long")
    check(get(u, name) == b"long", "a name of DIRSIZ bytes")
    check(u.unlink(name) == 0, "unlink long name")
    check(u.open("n" * (DIRSIZ + 1), O_CREATE | O_RDWR) == -ENAMETOOLONG, "name too long")
    check(u.open("/a" * 600, O_RDONLY) == -ENAMETOOLONG, "path too long")
    check(u.open("", O_RDONLY) == -ENOENT, "empty path")


def t_badargs(u):
    buf = RRef.new(Block)
    n, buf = u.read(99, buf, 10)
    check(n == -EBADF, "read of a bad descriptor")
    fd = u.open("/README", O_RDONLY)
    n, buf = u.write(fd, buf, 10)
    check(n == -EBADF, "write to a read-only descriptor")
    n, buf = u.read(fd, buf, BSIZE + 1)
    check(n == -EINVAL, "a count beyond the buffer")
    n, buf = u.read(fd, buf, -1)
    check(n == -EINVAL, "a negative count")
    check(u.seek(fd, -5, SEEK_SET) == -EINVAL, "a negative offset")
    n, _same = u.read(fd, [0] * 10, 10)
    check(n < 0, "a list for a buffer")
    check(u.open(123, O_RDONLY) == -EINVAL, "a number for a path")
    check(u.open("/README", 0x7777) == -EINVAL, "bad mode bits")
    u.close(fd)
    check(u.close(fd) == -EBADF, "close twice")
    check(u.mknod("ut_dev", 99, 0) == -EINVAL, "unknown device")
    check(u.kill(99999) < 0 and u.wait(99999)[0] < 0, "kill/wait of no such process")


def t_spawn(u):
    put(u, "ut_crash", b"def main(u, argv):\n    raise ValueError('boom')\n")
    pid = u.spawn("ut_crash", ("ut_crash",), (0, 1, -1))
    check(pid > 0, "spawn a crashing program")
    check(u.wait(pid) == (pid, -1), "its status says it crashed")
    put(u, "ut_evil", b"import os\ndef main(u, argv):\n    return 0\n")
    check(u.spawn("ut_evil", ("ut_evil",), (0, 1, -1)) == -ENOEXEC,
          "a program that fails the safety check is refused")
    check(u.spawn("/nonexistent", ("x",), (0, 1, 2)) == -ENOENT, "spawn of a missing file")
    check(u.spawn("/tests", ("x",), (0, 1, 2)) < 0, "spawn of a directory")
    put(u, "ut_exit", b"def main(u, argv):\n    return int(argv[1])\n")
    pid = u.spawn("ut_exit", ("ut_exit", "7"), ())
    check(u.wait(pid) == (pid, 7), "exit status")
    for p in ("ut_crash", "ut_evil", "ut_exit"):
        u.unlink(p)


def t_concurrent(u):
    pid = u.spawn("/stressfs", ("stressfs", "2"), (0, 1, 2))
    check(pid > 0, "spawn stressfs")
    check(u.wait(pid) == (pid, 0), "two concurrent writers verified their files")


def t_fulldisk(u):
    fd = u.open("ut_full", O_CREATE | O_WRONLY)
    block = bytes(range(256)) * 16
    written = 0
    buf = RRef.new(Block)
    buf.write(block)
    while True:
        n, buf = u.write(fd, buf, BSIZE)
        if n < BSIZE:
            break
        written += n
    check(n == -ENOSPC, f"a full disk gives {n}")
    u.close(fd)
    check(u.unlink("ut_full") == 0, "unlink the big file")
    put(u, "ut_after", block * 4)
    check(get(u, "ut_after") == block * 4, "space is back after the unlink")
    u.unlink("ut_after")
    u.puts(1, f"  (wrote {written // 1024} KiB before ENOSPC)\n")


def t_threads(u):
    done = []

    def writer(k):
        put(u, f"ut_th{k}", bytes([65 + k]) * 5000)
        done.append(k)

    threads = [u.spawn_thread(writer, k) for k in range(3)]
    for th in threads:
        u.join(th)
    check(sorted(done) == [0, 1, 2], f"threads finished: {done}")
    for k in range(3):
        check(get(u, f"ut_th{k}") == bytes([65 + k]) * 5000, f"thread {k}'s file")
        u.unlink(f"ut_th{k}")


TESTS = [("files", t_files), ("dirs", t_dirs), ("links", t_links), ("symlinks", t_symlinks),
         ("pipes", t_pipes), ("bigfile", t_bigfile), ("openfiles", t_openfiles),
         ("names", t_names), ("badargs", t_badargs), ("spawn", t_spawn),
         ("concurrent", t_concurrent), ("threads", t_threads), ("fulldisk", t_fulldisk)]


def main(u, argv):
    wanted = set(argv[1:])
    failed = 0
    for name, test in TESTS:
        if wanted and name not in wanted:
            continue
        try:
            test(u)
            u.puts(1, f"test {name}: OK\n")
        except Failed as err:
            failed += 1
            u.puts(1, f"test {name}: FAILED ({err})\n")
    u.puts(1, "ALL TESTS PASSED\n" if not failed else "SOME TESTS FAILED\n")
    return 1 if failed else 0
