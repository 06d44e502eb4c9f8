"""kvnet's memcached UDP text protocol (domains/kvnet/protocol.py) on its store: the
replies memcached gives, for the paper's key/value sizes; every malformed request is
answered ERROR or dropped, counted, and the store keeps serving; random datagrams never
crash it; the byte-exact round trip check catches a store that damages values."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redleaf_lab.domains.kvnet.protocol import COUNTERS, handle
from redleaf_lab.domains.kvnet.store import Store

from .broken_kv import TruncatingStore


def frame_header(request_id: int = 7, seq: int = 0, total: int = 1) -> bytes:
    return struct.pack("!HHHH", request_id, seq, total, 0)


def ask(store, message: bytes, counters=None, request_id: int = 7):
    counters = counters if counters is not None else dict.fromkeys(COUNTERS, 0)
    reply = handle(frame_header(request_id) + message, store, counters)
    if reply is None:
        return None
    assert reply[:8] == frame_header(request_id)
    return reply[8:]


def new_store(**kw) -> Store:
    return Store(kw.get("capacity", 64), kw.get("key_max", 250), kw.get("value_max", 1024))


@pytest.mark.parametrize(("key_size", "value_size"), [(8, 8), (16, 64), (64, 64)])
def test_set_get_delete_for_the_papers_sizes(key_size, value_size):
    store = new_store()
    key, value = b"k" * key_size, bytes(range(33, 33 + value_size))
    assert ask(store, b"get %s\r\n" % key) == b"END\r\n"
    assert ask(store, b"set %s 42 0 %d\r\n%s\r\n" % (key, value_size, value)) == b"STORED\r\n"
    assert ask(store, b"get %s\r\n" % key) == b"VALUE %s 42 %d\r\n%s\r\nEND\r\n" % (
        key, value_size, value)
    assert ask(store, b"delete %s\r\n" % key) == b"DELETED\r\n"
    assert ask(store, b"delete %s\r\n" % key) == b"NOT_FOUND\r\n"
    assert ask(store, b"get %s\r\n" % key) == b"END\r\n"


def test_binary_keys_and_the_reserved_field_as_memcached_does():
    store = new_store()
    memcaslap_like = b"\x00\x01\x00\x00\x00\x01\x01\x00"  # reserved = 0x0100
    key = b"\x10\x7f\x90abc\xc3\xa9"  # memcaslap's keys hold such bytes
    reply = handle(memcaslap_like + b"set %s 0 0 2\r\nhi\r\n" % key, store,
                   dict.fromkeys(COUNTERS, 0))
    assert reply == b"\x00\x01\x00\x00\x00\x01\x00\x00STORED\r\n"
    assert ask(store, b"get %s\r\n" % key) == b"VALUE %s 0 2\r\nhi\r\nEND\r\n" % key


def test_multi_get_noreply_and_binary_values():
    store = new_store()
    assert ask(store, b"set a 1 0 3 noreply\r\n\x00\r\n\r\n") is None  # any bytes as data
    assert ask(store, b"set b 2 0 0\r\n\r\n") == b"STORED\r\n"
    assert ask(store, b"get a b c\r\n") == b"VALUE a 1 3\r\n\x00\r\n\r\nVALUE b 2 0\r\n\r\nEND\r\n"
    assert ask(store, b"delete a noreply\r\n") is None
    assert ask(store, b"get a\r\n") == b"END\r\n"


def test_several_commands_in_one_datagram_as_set_many_sends_them():
    store = new_store()
    batch = b"".join(b"set k%d 0 0 2\r\nv%d\r\n" % (i, i) for i in range(5))
    assert ask(store, batch) == b"STORED\r\n" * 5
    assert ask(store, b"get k1\r\ndelete k2\r\nget k2 k3\r\n") == (
        b"VALUE k1 0 2\r\nv1\r\nEND\r\nDELETED\r\nVALUE k3 0 2\r\nv3\r\nEND\r\n")
    # the first malformed command ends the datagram: k9 is not stored
    assert ask(store, b"set k8 0 0 1\r\nx\r\nbogus\r\nset k9 0 0 1\r\ny\r\n") == (
        b"STORED\r\nERROR\r\n")
    assert ask(store, b"get k9\r\n") == b"END\r\n"


def test_a_full_store_answers_not_stored():
    store = new_store(capacity=4)
    for i in range(4):
        assert ask(store, b"set k%d 0 0 1\r\nx\r\n" % i) == b"STORED\r\n"
    assert ask(store, b"set k9 0 0 1\r\nx\r\n") == b"NOT_STORED\r\n"
    assert ask(store, b"set k1 0 0 1\r\ny\r\n") == b"STORED\r\n"  # updates still fit


MALFORMED = [
    b"",  # no command line
    b"flush_all\r\n",  # unknown command
    b"GET a\r\n",
    b"get\r\n",
    b"get " + b"k" * 251 + b"\r\n",  # oversized key
    b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\n",
    b"set a 0 0 1025\r\n" + b"x" * 1025 + b"\r\n",  # oversized value
    b"set a 0 0 5\r\nabc\r\n",  # bad length field: shorter data
    b"set a 0 0 2\r\nabc\r\n",  # longer data
    b"set a 0 0 -1\r\nabc\r\n",
    b"set a 0 0 x\r\nabc\r\n",
    b"set a 0 0 3\r\nabc",  # truncated: no final CRLF
    b"set a 99999999999 0 3\r\nabc\r\n",  # flags beyond 32 bits
    b"set a 0 0\r\nabc\r\n",  # a missing argument
    b"set a 0 0 3 maybe\r\nabc\r\n",
    b"g\xc3\xa9t a\r\n",  # non-ASCII command
    b"set a \xd9\xa3 0 1\r\nx\r\n",  # non-ASCII digit (ARABIC-INDIC THREE) as flags
    b"set a 0 0 \xef\xbc\x91\r\nx\r\n",  # FULLWIDTH DIGIT ONE as the length
    b"get a\x00b\r\n",  # NUL in a key
    b"get a\tb\r\n",  # whitespace in a key
    b"delete\r\n",
    b"delete a b\r\n",
    b"get a\r\nextra",
]


@pytest.mark.parametrize("message", MALFORMED)
def test_malformed_requests_get_error_and_are_counted(message):
    store = new_store()
    ask(store, b"set a 0 0 3\r\nold\r\n")
    counters = dict.fromkeys(COUNTERS, 0)
    reply = ask(store, message, counters)
    assert reply == b"ERROR\r\n" or (message.startswith(b"get a\r\n")
                                      and reply == b"VALUE a 0 3\r\nold\r\nEND\r\nERROR\r\n")
    assert counters["errors"] == 1
    assert ask(store, b"get a\r\n") == b"VALUE a 0 3\r\nold\r\nEND\r\n"  # still serving


@pytest.mark.parametrize("datagram", [b"", b"\x00\x07\x00", frame_header(seq=1) + b"get a\r\n",
                                      frame_header(total=2) + b"get a\r\n",
                                      frame_header(total=0) + b"get a\r\n"])
def test_truncated_or_multi_datagram_requests_are_dropped_and_counted(datagram):
    counters = dict.fromkeys(COUNTERS, 0)
    assert handle(datagram, new_store(), counters) is None
    assert counters["dropped"] == 1


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=80),
                 st.builds(lambda c, rest: c + rest,
                           st.sampled_from([b"get ", b"set ", b"delete "]), st.binary(max_size=60))))
def test_random_datagrams_never_crash_the_server(body):
    store = new_store()
    counters = dict.fromkeys(COUNTERS, 0)
    reply = handle(frame_header() + body, store, counters)
    if reply is not None:
        assert reply.endswith(b"\r\n") and reply[8:].split(b" ")[0].split(b"\r\n")[0] in (
            b"ERROR", b"END", b"VALUE", b"STORED", b"NOT_STORED", b"DELETED", b"NOT_FOUND")


def round_trip_mismatches(store, count: int) -> int:
    mismatches = 0
    for i in range(count):
        key, value = b"key-%d" % i, bytes((i * 7 + j) % 256 for j in range(i % 200))
        assert ask(store, b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value)) == b"STORED\r\n"
    for i in range(count):
        key, value = b"key-%d" % i, bytes((i * 7 + j) % 256 for j in range(i % 200))
        if ask(store, b"get %s\r\n" % key) != b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (
                key, len(value), value):
            mismatches += 1
    return mismatches


def test_the_round_trip_check_catches_a_store_that_damages_values():
    assert round_trip_mismatches(new_store(capacity=512), 300) == 0
    assert round_trip_mismatches(TruncatingStore(512, 250, 1024), 300) > 0


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=64), st.sampled_from([b"", b"\0\0", b"\xff\xff",
                                                           b"\xff\xff\xff\xff", b"\x00\x01\xff\xfe"])))
def test_the_big_number_checksum_equals_the_word_loop(data):
    from redleaf_lab.domains.kvnet.frames import checksum  # domains/lib/inet.py, linked

    padded = data + b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert checksum(data) == ~total & 0xFFFF
