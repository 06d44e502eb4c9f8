def init(ctx):
    return 1 +
