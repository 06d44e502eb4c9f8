import ctypes


def init(ctx):
    return None
