"""Interfaces, exchangeable types and generated proxies (RedLeaf's redIDL)."""

from .interface import Interface, MethodSpec, ParamSpec
from .proxy import ProxyBase, make_proxy, proxy_source
from .types import Borrowed, TypeSpec, classify

__all__ = ["Borrowed", "Interface", "MethodSpec", "ParamSpec", "ProxyBase", "TypeSpec",
           "classify", "make_proxy", "proxy_source"]
