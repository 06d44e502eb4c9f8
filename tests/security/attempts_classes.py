"""Class 4: class bodies that lie (`__module__`, array protocols, metaclasses, hooks)."""

from __future__ import annotations

from redleaf_lab.errors import ExchangeError, SafetyError
from tests.security.harness import Attempt, Load, Runtime
from tests.security.snippets import src

REFUSED = Runtime(SafetyError)
POLICY = "redleaf_lab.kernel.safety.policy"

# A writable numpy view of an immutable bytes object (its data sits 32 bytes after id()):
# proof of a raw-memory write that harms nobody else.
RAW = """
import numpy as np

TARGET = b"immutable bytes!"


def interface():
    return {"data": (id(TARGET) + 32, False), "shape": (8,), "typestr": "|u1", "version": 3}


def prove(view):
    view[0] = 88
    return TARGET[0]
"""

ATTEMPTS = [
    Attempt("cls_module_poses_as_policy_get_type_hints", src("""
        import typing


        class Lie:
            __module__ = "redleaf_lab.kernel.safety.policy"
            table: "REFUSED_DUNDER_ATTRS.clear()"


        def attack(h):
            typing.get_type_hints(Lie)
            return 1
        """), "call", REFUSED),
    Attempt("cls_module_poses_as_errors_error_value", src("""
        from redleaf_lab.api import Block, DomainError, RRef

        HOLD = []


        class Sneaky(DomainError):
            __module__ = "redleaf_lab.errors"

            def __init__(self, text):
                super().__init__(text)
                if RRef.new(Block).owner() != HOLD[0].ctx.id:
                    HOLD[0].victim.delete(0)


        def attack(h):
            HOLD.append(h)
            raise Sneaky("an error value")
        """), "call", REFUSED),
    Attempt("cls_array_interface_class_body", src(RAW, """
        class View:
            __array_interface__ = interface()


        def attack(h):
            return prove(np.asarray(View()))
        """), "call", REFUSED),
    Attempt("cls_array_interface_property", src(RAW, """
        class View:
            @property
            def __array_interface__(self):
                return interface()


        def attack(h):
            return prove(np.asarray(View()))
        """), "call", REFUSED),
    Attempt("cls_array_interface_three_arg_type", src(RAW, """
        def attack(h):
            View = type("View", (), {"__array_interface__": interface()})
            return prove(np.asarray(View()))
        """), "call", REFUSED),
    Attempt("cls_array_interface_metaclass_of_a_class", src(RAW, """
        class Plain:
            pass


        def attack(h):
            make = type(Plain)
            View = make("View", (), {"__array_interface__": interface()})
            return prove(np.asarray(View()))
        """), "call", REFUSED),
    Attempt("cls_array_interface_abcmeta_call", src(RAW, """
        import abc


        def attack(h):
            View = abc.ABCMeta("View", (), {"__array_interface__": interface()})
            return prove(np.asarray(View()))
        """), "call", REFUSED),
    Attempt("cls_array_interface_make_dataclass_namespace", src(RAW, """
        import dataclasses


        def attack(h):
            View = dataclasses.make_dataclass(
                "View", [], namespace={"__array_interface__": interface()})
            return prove(np.asarray(View()))
        """), "call", REFUSED),
    Attempt("cls_array_interface_enum_functional", src(RAW, """
        import enum


        def attack(h):
            View = enum.Enum("View", {"__array_interface__": interface(), "A": 1})
            return prove(np.asarray(View))
        """), "call", REFUSED),
    Attempt("cls_array_interface_set_after_creation", src(RAW, """
        class View:
            pass


        def attack(h):
            setattr(View, "__array_" + "interface__", interface())
            return prove(np.asarray(View()))
        """), "call", Runtime(SafetyError, "__array_interface__", rule="attribute")),
    Attempt("cls_array_interface_static_assignment", src(RAW, """
        class View:
            pass


        View.__array_interface__ = interface()
        """), "load", Load("dunder")),
    Attempt("cls_array_interface_with_leaked_heap_address", src("""
        import numpy as np
        from numpy.lib.array_utils import byte_bounds


        def attack(h):
            address = byte_bounds(h.kept[0].array())[0]
            start = address - (h.kept[0].iova() - 0x100000000)
            shape = {"data": (start, False), "shape": (address - start,), "typestr": "|u1",
                     "version": 3}
            mem = np.asarray(type("Arena", (), {"__array_interface__": shape})())
            hits = np.flatnonzero(mem == 0x5A)
            mem[hits[0]] = 0
            return 1
        """), "call", REFUSED),
    Attempt("cls_namedtuple_module_lie_get_type_hints", src("""
        import collections
        import typing


        def attack(h):
            Base = collections.namedtuple("Base", "a", module="redleaf_lab.kernel.safety.policy")

            class Lie(Base):
                __module__ = "redleaf_lab.kernel.safety.policy"
                table: "REFUSED_DUNDER_ATTRS.clear()"

            typing.get_type_hints(Lie)
            return 1
        """), "call", REFUSED),
    Attempt("cls_make_dataclass_module_lie_get_type_hints", src("""
        import dataclasses
        import typing


        def attack(h):
            Lie = dataclasses.make_dataclass(
                "Lie", [("table", "REFUSED_DUNDER_ATTRS.clear()")],
                namespace={"__module__": "redleaf_lab.kernel.safety.policy"})
            typing.get_type_hints(Lie)
            return 1
        """), "call", REFUSED),
    Attempt("cls_three_arg_type_module_lie", src("""
        import typing


        def attack(h):
            Lie = type("Lie", (), {"__module__": "redleaf_lab.kernel.safety.policy",
                                   "__annotations__": {"t": "REFUSED_DUNDER_ATTRS.clear()"}})
            typing.get_type_hints(Lie)
            return 1
        """), "call", REFUSED),
    Attempt("cls_metaclass_name_property_runs_in_caller", src("""
        from redleaf_lab.api import Block, RRef

        HOLD = []


        class Meta(type):
            @property
            def __name__(cls):
                if RRef.new(Block).owner() != HOLD[0].ctx.id:
                    HOLD[0].victim.delete(0)
                return "Odd"


        class Odd(metaclass=Meta):
            pass


        def attack(h):
            HOLD.append(h)
            return Odd()
        """), "call", Runtime(ExchangeError, "got Odd <Odd object>")),
    Attempt("cls_init_subclass_of_interface_evaluates_annotation", src("""
        from redleaf_lab.interfaces.bench import Interface


        def attack(h):
            class Evil(Interface):
                def m(self) -> "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0].__init__.__globals__['mkdir']('@WATCH@/annotation')":
                    ...
            return 1
        """), "call", REFUSED),
    Attempt("cls_set_name_hook_gets_real_getattr", src("""
        import string


        class Grab:
            def __set_name__(self, owner, name):
                self.real = string.Formatter().get_field("0.__self__.getattr", (print,), {})[0]


        class Holder:
            tool = Grab()


        def attack(h):
            Holder.tool.real(h.ctx, "_domain").kernel.panic("kvstore")
            return 1
        """), "call", REFUSED),
    Attempt("cls_class_attribute_dunder_class_lie", src("""
        import numpy as np

        from redleaf_lab.api import Block, RRef

        HOLD = []


        def evil_int(self):
            if RRef.new(Block).owner() != HOLD[0].ctx.id:
                HOLD[0].victim.delete(0)
            return 1


        def attack(h):
            HOLD.append(h)
            Liar = type("Liar", (), {"__class__": property(lambda self: np.int64),
                                     "__int__": evil_int})
            return Liar()
        """), "call", Runtime(SafetyError, "__class__", rule="class")),
    Attempt("cls_class_getitem_hook_runs_for_rref_alias", src("""
        from redleaf_lab.api import RRef


        def attack(h):
            RRef.__class_getitem__ = classmethod(lambda cls, item: h.victim.delete(0))
            return 1
        """), "call", Load("dunder")),
]
