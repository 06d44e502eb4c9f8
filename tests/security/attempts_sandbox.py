"""Class 9: the published RestrictedPython and Jinja2-sandbox escape classes, here.

Frames of generators, coroutines and async generators; guard shadowing; string
annotations evaluated by typing; decorators; dataclass and enum internals; numpy's
buffer and array protocols; memoryview casts and address leaks."""

from __future__ import annotations

from redleaf_lab.errors import SafetyError
from tests.security.harness import Attempt, Load, Runtime
from tests.security.snippets import src

REFUSED = Runtime(SafetyError)
FRAME = "frame"

ATTEMPTS = [
    Attempt("sbx_generator_frame_computed_name", src("""
        def gen():
            yield 1


        def attack(h):
            frame = getattr(gen(), "gi_" + "frame")
            return len(str(frame))
        """), "call", Runtime(SafetyError, "gi_frame", rule="attribute")),
    Attempt("sbx_coroutine_frame_computed_name", src("""
        async def co():
            return 1


        def attack(h):
            c = co()
            frame = getattr(c, "cr_" + "frame")
            c.close()
            return len(str(frame))
        """), "call", Runtime(SafetyError, "cr_frame", rule="attribute")),
    Attempt("sbx_async_generator_frame_static", src("""
        async def agen():
            yield 1


        def attack(h):
            return len(agen().ag_frame.f_back.f_globals)
        """), "call", Load(FRAME)),
    Attempt("sbx_generator_code_static", src("""
        def gen():
            yield 1


        def attack(h):
            return len(gen().gi_code.co_consts)
        """), "call", Load(FRAME)),
    Attempt("sbx_generator_frame_via_format", src("""
        def gen():
            yield 1


        def attack(h):
            return len("{0.gi_frame.f_back.f_globals}".format(gen()))
        """), "call", Runtime(SafetyError, "gi_frame", rule="format")),
    Attempt("sbx_traceback_frame_via_format", src("""
        def attack(h):
            try:
                h.kept[1].tobytes()
            except Exception as exc:
                return len("{0.__traceback__.tb_frame.f_back.f_globals}".format(exc))
            return 0
        """), "call", Runtime(SafetyError, "__traceback__", rule="format")),
    Attempt("sbx_getattr_shadowed_by_positional_only_param", src("""
        import string


        def reach(obj, name, getattr=string.Formatter().get_field, /):
            return getattr("0." + name, (obj,), {})[0]


        def attack(h):
            reach(h.ctx, "_domain").kernel.panic("kvstore")
            return 1
        """), "call", Runtime(SafetyError, "string.Formatter", rule="module")),
    Attempt("sbx_getattr_param_named_getattr_constant", src("""
        def peek(obj, getattr):
            return getattr(obj, "_domain")


        def attack(h):
            return peek(h.ctx, getattr).id
        """), "call", Runtime(SafetyError, "'_domain'", rule="attribute")),
    Attempt("sbx_string_annotation_eval_get_type_hints", src("""
        import typing


        def marked(x: "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0].__init__.__globals__['mkdir']('@WATCH@/hints')"):
            pass


        def attack(h):
            typing.get_type_hints(marked)
            return 1
        """), "call", REFUSED),
    Attempt("sbx_get_type_hints_as_decorator", src("""
        import typing


        def attack(h):
            @typing.get_type_hints
            def marked(x: "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0].__init__.__globals__['mkdir']('@WATCH@/decorated')"):
                pass
            return 1
        """), "call", REFUSED),
    Attempt("sbx_forward_ref_evaluate", src("""
        import typing


        def attack(h):
            ref = typing.ForwardRef("().__class__.__base__.__subclasses__()")
            found = ref._evaluate({}, {}, frozenset())
            return len(found)
        """), "call", Load("private")),
    Attempt("sbx_typing_forward_ref_in_union", src("""
        import typing


        def attack(h):
            alias = typing.Optional["().__class__.__base__.__subclasses__()"]
            return len(typing.get_type_hints(type("T", (), {"__annotations__": {"a": alias}})))
        """), "call", REFUSED),
    Attempt("sbx_dataclass_field_default_factory_reaches_type", src("""
        import dataclasses


        def attack(h):
            Kind = dataclasses.make_dataclass(
                "Kind", [("a", int, dataclasses.field(default_factory=object))])
            return len(dataclasses.fields(Kind)[0].type.mro()[0].__subclasses__())
        """), "call", Load("dunder")),
    Attempt("sbx_enum_missing_hook_calls_getattr", src("""
        import enum
        import string


        class Color(enum.Enum):
            RED = 1

            @classmethod
            def _missing_(cls, value):
                return string.Formatter().get_field("0._domain", (value,), {})[0]


        def attack(h):
            Color(h.ctx)
            return 1
        """), "call", Runtime(SafetyError, "string.Formatter", rule="module")),
    Attempt("sbx_subclasses_via_computed_getattr", src("""
        def attack(h):
            classes = getattr(object, "__sub" + "classes__")()
            return len(classes)
        """), "call", Runtime(SafetyError, "__subclasses__", rule="attribute")),
    Attempt("sbx_type_mro_then_subclasses_static", src("""
        def attack(h):
            return len(type("").mro()[-1].__subclasses__())
        """), "call", Load("dunder")),
    Attempt("sbx_memoryview_cast_outside_view", src("""
        def attack(h):
            view = memoryview(h.kept[0].array()).cast("B")
            wide = view.cast("Q")
            return int(wide[wide.nbytes // 8 + 4]) + 1
        """), "call", Runtime(IndexError)),
    Attempt("sbx_array_buffer_info_address_to_array", src("""
        import array

        import numpy as np


        def attack(h):
            buf = array.array("B", b"abcdefgh")
            address, _ = buf.buffer_info()
            shape = {"data": (address, False), "shape": (4096,), "typestr": "|u1",
                     "version": 3}
            raw = np.asarray(type("Raw", (), {"__array_interface__": shape})())
            return int(raw[4000]) + 1
        """), "call", Runtime(SafetyError, "__array_interface__", rule="class")),
    Attempt("sbx_numpy_byte_bounds_leak", src("""
        from numpy.lib.array_utils import byte_bounds


        def attack(h):
            return byte_bounds(h.kept[0].array())[0]
        """), "call", REFUSED),
    Attempt("sbx_numpy_ndarray_over_a_buffer_static", src("""
        import numpy as np


        def attack(h):
            data = b"immutable bytes!"
            alias = np.ndarray((16,), np.uint8, data, 0, (1,))
            return int(alias[0]) + 1
        """), "call", Load("numpy")),
    Attempt("sbx_numpy_array_struct_protocol", src("""
        import numpy as np


        class Struct:
            @property
            def __array_struct__(self):
                return np.arange(2).__array_struct__


        def attack(h):
            return int(np.asarray(Struct())[0]) + 1
        """), "call", Load("dunder")),
    Attempt("sbx_numpy_array_method_returns_view_of_borrow", src("""
        import numpy as np

        STASH = []


        class Keep:
            def __init__(self, data):
                self.data = data

            def __array__(self, dtype=None, copy=None):
                return self.data.array()


        def on_lend(h, data):
            STASH.append(np.asarray(Keep(data)))
            return 1


        def attack(h):
            return int(STASH[0][0]) + 1
        """), "call", Runtime(SafetyError, "__array__", rule="class")),
    Attempt("sbx_exception_group_wraps_unwind_static", src("""
        def attack(h):
            try:
                h.ctx.sleep(0)
            except* BaseException:
                pass
            return 1
        """), "call", Load("except")),
]
