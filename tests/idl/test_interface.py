"""Interface definitions are validated when the class is defined."""

from __future__ import annotations

import numpy as np
import pytest

from redleaf_lab import Block, Borrowed, Interface, InterfaceError, RRef, RRefDeque, proxy_source
from redleaf_lab.interfaces.kv import KV


def test_good_interface_has_method_specs():
    class Good(Interface):
        def read(self, block: int, data: RRef[Block]) -> RRef[Block]: ...
        def write(self, block: int, data: Borrowed[RRef[Block]]) -> None: ...
        def batch(self, q: RRefDeque[Block, 32]) -> tuple[int, RRefDeque[Block, 32]]: ...
        def name(self) -> str | None: ...

    specs = Good.methods()
    assert set(specs) == {"read", "write", "batch", "name"}
    assert specs["read"].params[1].spec.kind == "move"
    assert specs["write"].params[1].spec.kind == "borrow"
    assert specs["batch"].result.moves


@pytest.mark.parametrize(
    ("annotation", "fragment"),
    [
        ("list[int]", "mutable"),
        ("dict", "mutable"),
        ("np.ndarray", "numpy arrays are mutable"),
        ("object", "Any/object"),
        ("set[int]", "mutable"),
        ("int | str", "unions"),
        ("RRef[int]", "declared Layout"),
        ("RRefDeque[Block]", "capacity"),
        ("Borrowed[int]", "only RRefs"),
    ],
)
def test_non_exchangeable_argument_is_rejected_naming_method_and_argument(annotation, fragment):
    namespace = {"Interface": Interface, "RRef": RRef, "Block": Block, "np": np,
                 "RRefDeque": RRefDeque, "Borrowed": Borrowed}
    source = (
        "class Bad(Interface):\n"
        f"    def put(self, key: int, items: {annotation}) -> None: ...\n"
    )
    with pytest.raises(InterfaceError) as info:
        exec(source, namespace)
    assert "Bad.put" in str(info.value) and "'items'" in str(info.value)
    assert fragment in str(info.value)


def test_missing_annotations_and_odd_signatures_are_rejected():
    with pytest.raises(InterfaceError, match="no type annotation"):
        class NoAnn(Interface):
            def f(self, x) -> None: ...
    with pytest.raises(InterfaceError, match="return type is not annotated"):
        class NoRet(Interface):
            def f(self, x: int): ...
    with pytest.raises(InterfaceError, match=r"\*args"):
        class Star(Interface):
            def f(self, *xs: int) -> None: ...
    with pytest.raises(InterfaceError, match="cannot be returned"):
        class BorrowOut(Interface):
            def f(self) -> Borrowed[RRef[Block]]: ...
    with pytest.raises(InterfaceError, match="not exchangeable"):
        class MutableResult(Interface):
            def f(self) -> list[int]: ...


def test_proxy_source_shows_the_steps():
    source = proxy_source(KV)
    assert "def put(self, key, value):" in source
    assert "_rl_move(_hp, value._id, cid, _did)" in source  # the RRef moves
    assert "stack.append(d)" in source and "del stack[-1]" in source  # continuation
    assert "_failed(ts, d, caller, exc)" in source  # panic -> RpcError
    compile(source, "<proxy>", "exec")
