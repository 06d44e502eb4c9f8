def init(ctx):
    raise ValueError("init fails on purpose")
