"""sh [-c LINE]: the Rv6 shell: pipes |, redirections < > >>, sequences ; and background &.

Reads command lines from standard input (prompt "rv6$ " on fd 2), or runs the one LINE
given with -c and exits with its status. Words may be quoted with '...' or "...".
Built-ins: cd DIR, exit [N]. A program NAME without a "/" is /NAME. A bad command
line gets "sh: syntax error: ..."; a program that crashes or is killed is reported
and the shell goes on.
"""

from redleaf_lab.interfaces.rv6 import O_APPEND, O_CREATE, O_RDONLY, O_TRUNC, O_WRONLY

OPERATORS = ("|", ";", "&", "<", ">>", ">")


class SyntaxProblem(Exception):
    pass


def tokenize(line):
    tokens = []
    i = 0
    while i < len(line):
        c = line[i]
        if c in " \t\r\n":
            i += 1
        elif c in "'\"":
            end = line.find(c, i + 1)
            if end < 0:
                raise SyntaxProblem("unterminated quote")
            tokens.append(("word", line[i + 1:end]))
            i = end + 1
        else:
            op = next((o for o in OPERATORS if line.startswith(o, i)), None)
            if op:
                tokens.append(("op", op))
                i += len(op)
            else:
                j = i
                while j < len(line) and line[j] not in " \t\r\n'\"|;&<>":
                    j += 1
                tokens.append(("word", line[i:j]))
                i = j
    return tokens


def parse(line):
    """[(pipeline, background)], a pipeline being [{"argv", "in", "out", "append"}]."""
    jobs = []
    pipeline = []
    cmd = {"argv": [], "in": None, "out": None, "append": False}
    tokens = tokenize(line)
    i = 0

    def finish_cmd():
        if not cmd["argv"]:
            if cmd["in"] or cmd["out"] or pipeline:
                raise SyntaxProblem("missing command")
            return False
        pipeline.append(dict(cmd))
        return True

    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "word":
            cmd["argv"] = cmd["argv"] + [value]
        elif value in ("<", ">", ">>"):
            if i + 1 >= len(tokens) or tokens[i + 1][0] != "word":
                raise SyntaxProblem(f"missing file name after {value}")
            if value == "<":
                cmd["in"] = tokens[i + 1][1]
            else:
                cmd["out"] = tokens[i + 1][1]
                cmd["append"] = value == ">>"
            i += 1
        elif value == "|":
            if not cmd["argv"]:
                raise SyntaxProblem("missing command before |")
            finish_cmd()
            cmd = {"argv": [], "in": None, "out": None, "append": False}
        else:  # ; or &
            if not finish_cmd() and value == "&":
                raise SyntaxProblem("missing command before &")
            if pipeline:
                jobs.append((pipeline, value == "&"))
            pipeline = []
            cmd = {"argv": [], "in": None, "out": None, "append": False}
        i += 1
    if tokens and tokens[-1] == ("op", "|"):
        raise SyntaxProblem("missing command after |")
    finish_cmd()
    if pipeline:
        jobs.append((pipeline, False))
    return jobs


def describe(status):
    if status == -1:
        return "crashed"
    if status == -9:
        return "killed"
    return f"exit {status}"


def run_pipeline(u, pipeline, background):
    n = len(pipeline)
    opened = []
    pids = []
    prev_read = -1
    status = 0
    for k, cmd in enumerate(pipeline):
        fin, fout = 0, 1
        if prev_read >= 0:
            fin = prev_read
        next_read = -1
        if k < n - 1:
            err, r, w = u.pipe()
            if err < 0:
                u.puts(2, f"sh: pipe: {u.strerror(err)}\n")
                status = 1
                break
            opened.extend([r, w])
            fout = w
            next_read = r
        if cmd["in"]:
            fin = u.open(cmd["in"], O_RDONLY)
            if fin < 0:
                u.puts(2, f"sh: {cmd['in']}: {u.strerror(fin)}\n")
                status = 1
                break
            opened.append(fin)
        if cmd["out"]:
            mode = O_WRONLY | O_CREATE | (O_APPEND if cmd["append"] else O_TRUNC)
            fout = u.open(cmd["out"], mode)
            if fout < 0:
                u.puts(2, f"sh: {cmd['out']}: {u.strerror(fout)}\n")
                status = 1
                break
            opened.append(fout)
        name = cmd["argv"][0]
        path = name if "/" in name else "/" + name
        pid = u.spawn(path, tuple(cmd["argv"]), (fin, fout, 2))
        if pid < 0:
            why = "not found" if u.strerror(pid) == "ENOENT" else u.strerror(pid)
            u.puts(2, f"sh: {name}: {why}\n")
            status = 127
        else:
            pids.append((pid, name))
        prev_read = next_read
    for fd in opened:
        u.close(fd)
    if background:
        for pid, _name in pids:
            u.puts(2, f"[{pid}]\n")
        return status
    waiting = {pid: name for pid, name in pids}
    while waiting:
        got, st = u.wait(-1)
        if got < 0:
            break
        name = waiting.pop(got, None)
        if name is None:
            continue  # a background job ended
        if st < 0:
            u.puts(2, f"sh: {name}: {describe(st)}\n")
        status = st
    return status


def run_line(u, line):
    try:
        jobs = parse(line)
    except SyntaxProblem as err:
        u.puts(2, f"sh: syntax error: {err}\n")
        return 2
    status = 0
    for pipeline, background in jobs:
        argv = pipeline[0]["argv"]
        if argv[0] == "cd" and len(pipeline) == 1:
            err = u.chdir(argv[1] if len(argv) > 1 else "/")
            if err < 0:
                u.puts(2, f"cd: {u.strerror(err)}\n")
            status = 0 if err == 0 else 1
        elif argv[0] == "exit" and len(pipeline) == 1:
            raise SystemExitRequest(int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 0)
        else:
            status = run_pipeline(u, pipeline, background)
    return status


class SystemExitRequest(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


def main(u, argv):
    if len(argv) >= 3 and argv[1] == "-c":
        try:
            return run_line(u, argv[2])
        except SystemExitRequest as req:
            return req.status
    pending = ""
    while True:
        u.puts(2, "rv6$ ")
        while "\n" not in pending:
            data = u.read_bytes(0)
            if type(data) is int:
                return 2
            if not data:
                if pending.strip():
                    break
                return 0
            pending += data.decode("utf-8", "replace")
        line, _, pending = pending.partition("\n")
        try:
            run_line(u, line)
        except SystemExitRequest as req:
            return req.status
