"""Class 1: capabilities lead to the kernel (proxy, shadow, ctx, RRef, Borrow, device)."""

from __future__ import annotations

from redleaf_lab.errors import SafetyError, StaleRefError
from tests.security.harness import Attempt, Runtime
from tests.security.snippets import src

NO_ATTR = Runtime(AttributeError)

ATTEMPTS = [
    Attempt("cap_proxy_domain_kernel_panics_victim", src("""
        def attack(h):
            h.victim.domain.kernel.panic("kvstore")
            return 1
        """), "call", NO_ATTR),
    Attempt("cap_proxy_type_domain_stops_checksum", src("""
        def attack(h):
            type(h.victim).domain.kernel.stop("checksum")
            return 1
        """), "call", NO_ATTR),
    Attempt("cap_proxy_impl_called_without_proxy", src("""
        def attack(h):
            impl = h.victim.domain.impl
            try:
                impl.delete(0)
            except Exception:
                pass
            return 1
        """), "call", NO_ATTR),
    Attempt("cap_proxy_release_impl_breaks_callee", src("""
        def attack(h):
            h.victim.release_impl()
            return 1
        """), "call", NO_ATTR),
    Attempt("cap_proxy_heap_frees_victim_objects", src("""
        def attack(h):
            d = h.victim.domain
            for entry in d.heap.entries():
                if entry.owner == d.id:
                    d.heap.free(entry.id)
            return 1
        """), "call", NO_ATTR),
    Attempt("cap_proxy_spec_caps_swapped_for_restart", src("""
        def attack(h):
            h.victim.domain.spec.caps["checksum"] = h.echo
            return 1
        """), "call", NO_ATTR),
    Attempt("cap_proxy_spec_code_image_replaced", src("""
        def attack(h):
            modules = h.victim.domain.spec.image.modules
            modules.clear()
            return 1
        """), "call", NO_ATTR),
    Attempt("cap_proxy_domain_state_flipped", src("""
        def attack(h):
            h.victim.domain.state = "stopped"
            return 1
        """), "call", NO_ATTR),
    Attempt("cap_proxy_kernel_arms_fault_in_victim", src("""
        def attack(h):
            h.victim.domain.kernel.faults.next_call("kvstore")
            return 1
        """), "call", NO_ATTR),
    Attempt("cap_proxy_kernel_kills_victim_heap_owner", src("""
        def attack(h):
            k = h.victim.domain.kernel
            k.heap.kill_domain(k.domain("kvstore").id)
            return 1
        """), "call", NO_ATTR),
    Attempt("cap_shadow_domain_kernel_panics_echo", src("""
        def attack(h):
            h.echo.domain.kernel.panic("echo")
            return 1
        """), "call", NO_ATTR),
    Attempt("cap_shadow_raw_proxy_released", src("""
        def attack(h):
            h.echo.domain.proxy.release_impl()
            return 1
        """), "call", NO_ATTR),
    Attempt("cap_init_capability_kernel_at_load", src("""
        def init(ctx, victim, echo, store):
            victim.domain.kernel.panic("checksum")
            return AttackDomain(ctx, victim, echo, store)
        """), "load", NO_ATTR),
    Attempt("cap_rref_layout_resized", src("""
        def attack(h):
            h.kept[0].layout.size = 1 << 16
            return 1
        """), "call", Runtime(SafetyError, "it is a trusted object", rule="attribute")),
    Attempt("cap_api_layout_dtype_swapped_at_load", src("""
        import numpy as np
        from redleaf_lab.api import Block

        Block.dtype = np.dtype((np.uint8, 8))
        """), "load", Runtime(SafetyError, "it is a trusted object", rule="attribute")),
    Attempt("cap_api_rref_method_replaced", src("""
        from redleaf_lab.api import RRef


        def attack(h):
            RRef.drop = RRef.owner
            return 1
        """), "call", Runtime(SafetyError, "only classes the domain made itself may be changed", rule="attribute")),
    Attempt("cap_device_class_method_replaced", src("""
        def attack(h):
            setattr(type(h.store), "snapshot", None)
            return 1
        """), "call", Runtime(SafetyError, "only classes the domain made itself may be changed", rule="attribute")),
    Attempt("cap_borrow_read_after_the_call", src("""
        def attack(h):
            return int(h.kept[1].tobytes()[0])
        """), "call", Runtime(StaleRefError, "borrow ended")),
    Attempt("cap_borrow_view_after_the_call", src("""
        def attack(h):
            return int(h.kept[1].array()[0])
        """), "call", Runtime(StaleRefError, "borrow ended")),
    Attempt("cap_exporter_type_forges_view_of_any_address", src("""
        import numpy as np

        TARGET = b"immutable bytes!"


        def attack(h):
            exporter = h.kept[0].array().base.base
            forged = type(exporter)(id(TARGET) + 32, 8, exporter.token, exporter.pin)
            np.asarray(forged)[0] = 88
            return TARGET[0]
        """), "call", NO_ATTR),
]
