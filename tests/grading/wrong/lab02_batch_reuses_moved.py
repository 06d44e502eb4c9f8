# Keeps nothing and retries with the deques the crash took.
def batch_keep(args):
    return None


def batch_rebuild(args, kept):
    return args
