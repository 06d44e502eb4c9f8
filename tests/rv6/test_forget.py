"""Kernel.forget (added for Rv6's short-lived program domains): only an ended, settled
domain leaves the table; its calls are still counted through the bounded history."""

from __future__ import annotations


def test_forget_only_ended_domains(kernel):
    echo = kernel.load("echo")
    assert echo.ping(1) == 1
    calls = kernel.calls("echo")
    assert kernel.forget("echo") is False  # running
    kernel.stop("echo")
    assert kernel.forget("echo") is True
    assert "echo" not in {r.name for r in kernel.ps()}
    assert kernel.calls("echo") == calls
    assert kernel.forget("echo") is False  # gone already
    kernel.load("echo")  # the name can be used again
