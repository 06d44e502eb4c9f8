"""memcached's text protocol over UDP, as kvnet answers it (memcached doc/protocol.txt).

A request datagram starts with the 8-byte UDP frame header (protocol.txt, "UDP
protocol"): request id (2 bytes), sequence number (2), total datagrams (2), reserved (2,
"must be 0": memcached ignores it, and memcaslap sends 0x0100, so we ignore it too); all
big-endian. kvnet serves single-datagram requests (sequence 0 of 1);
the reply carries the same request id, sequence 0, total 1. A datagram holds one or more
commands, each ending in \\r\\n (pymemcache's set_many sends several); the replies are
concatenated in order, and the first malformed command ends the datagram:

    get <key>+                          -> (VALUE <key> <flags> <bytes>\\r\\n<data>\\r\\n)* END
    set <key> <flags> <exptime> <bytes> [noreply]\\r\\n<data>\\r\\n -> STORED | NOT_STORED
    delete <key> [noreply]              -> DELETED | NOT_FOUND

Keys are 1..key_max bytes (protocol.txt: at most 250) without NUL or whitespace (any
other byte, as memcached itself accepts: memcaslap's keys are not ASCII); commands,
flags, exptime and lengths are ASCII; flags fit 32 bits; `exptime` must be a number and is
accepted but not acted on (nothing expires: documented, not hidden); the data block must
be exactly <bytes> long (at most value_max) and end in \\r\\n. Anything else (an unknown
command, a missing or extra argument, a bad number, an oversized key or value, a
truncated data block, non-ASCII) is answered `ERROR\\r\\n` and counted; a datagram too
short for the frame header, or part of a multi-datagram request, is dropped and counted.

Interface: `handle(datagram, store, limits, counters) -> bytes | None` (the reply
datagram, or None: drop); `COUNTERS`. Pure functions of their arguments, plus the
store's own changes.
"""

FRAME_HEADER = 8
MAX_REPLY = 1400  # a reply must fit one datagram in a standard frame
COUNTERS = ("gets", "sets", "deletes", "hits", "errors", "dropped")


def _number(text: bytes, bits: int):
    if not text or len(text) > 20 or not text.isdigit():
        return None
    value = int(text)
    return value if value < 1 << bits else None


def _key_ok(key: bytes, key_max: int) -> bool:
    return 0 < len(key) <= key_max and len(key.translate(None, _NOT_IN_KEYS)) == len(key)


# Any byte but NUL and whitespace: protocol.txt asks for printable keys, but memcached
# only splits at spaces, and memcaslap's keys hold bytes 0x10, 0x7F and 0x80-0xFF, so a
# stricter check would refuse an unchanged client. Commands and numbers stay ASCII.
_NOT_IN_KEYS = b"\x00\t\n\x0b\x0c\r "


def handle(datagram: bytes, store, counters: dict):
    """The reply datagram to `datagram` (frame header included), or None to drop it."""
    if len(datagram) < FRAME_HEADER:
        counters["dropped"] += 1
        return None
    request_id = datagram[0:2]
    if datagram[2:4] != b"\x00\x00" or datagram[4:6] != b"\x00\x01":
        counters["dropped"] += 1  # multi-datagram requests
        return None
    header = request_id + b"\x00\x00\x00\x01\x00\x00"
    body = _answer(datagram[FRAME_HEADER:], store, counters)
    if body is None:
        return None
    if len(body) > MAX_REPLY:
        counters["errors"] += 1
        body = b"SERVER_ERROR reply too large\r\n"
    return header + body


def _error(counters: dict) -> bytes:
    counters["errors"] += 1
    return b"ERROR\r\n"


def _answer(message: bytes, store, counters: dict):
    """The replies to the commands of one datagram, in order (memcached runs every command
    a datagram holds: pymemcache's set_many sends several); the first malformed command
    is answered ERROR and ends the datagram. None when nothing is to be sent (noreply)."""
    out = []
    while True:
        reply, used = _one(message, store, counters)
        if reply is not None:
            out.append(reply)
        if used is None or used >= len(message):
            break
        message = message[used:]
    return b"".join(out) if out else None


def _one(message: bytes, store, counters: dict):
    """(reply or None, bytes used, or None after an error) for the first command."""
    end = message.find(b"\r\n")
    if end < 0:
        return _error(counters), None
    words = message[:end].split(b" ")
    command, args = words[0], words[1:]
    if command == b"get":
        if not args or not all(_key_ok(k, store.key_max) for k in args):
            return _error(counters), None
        counters["gets"] += 1
        out = []
        for key in args:
            found = store.get(key)
            if found is not None:
                counters["hits"] += 1
                flags, value = found
                out.append(b"VALUE %s %d %d\r\n%s\r\n" % (key, flags, len(value), value))
        out.append(b"END\r\n")
        return b"".join(out), end + 2
    if command == b"set":
        if len(args) not in (4, 5) or (len(args) == 5 and args[4] != b"noreply"):
            return _error(counters), None
        key, flags, exptime, size = args[0], _number(args[1], 32), _number(args[2], 32), \
            _number(args[3], 32)
        if not _key_ok(key, store.key_max) or flags is None or exptime is None \
                or size is None or size > store.value_max:
            return _error(counters), None
        data = message[end + 2:end + 4 + size]
        if len(data) != size + 2 or data[size:] != b"\r\n":
            return _error(counters), None
        counters["sets"] += 1
        reply = b"STORED\r\n" if store.set(key, flags, data[:size]) else b"NOT_STORED\r\n"
        return (None if len(args) == 5 else reply), end + 4 + size
    if command == b"delete":
        if len(args) not in (1, 2) or (len(args) == 2 and args[1] != b"noreply") \
                or not _key_ok(args[0], store.key_max):
            return _error(counters), None
        counters["deletes"] += 1
        reply = b"DELETED\r\n" if store.delete(args[0]) else b"NOT_FOUND\r\n"
        return (None if len(args) == 2 else reply), end + 2
    return _error(counters), None
