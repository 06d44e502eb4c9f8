# Kills the process from the shadow's keep step (as a fault in the C core would).
import os
import signal


def batch_keep(args):
    os.kill(os.getpid(), signal.SIGSEGV)


def batch_rebuild(args, kept):
    return args
