# Restarts whatever it is given, also a running domain (whose state would be thrown away).
def revive(kernel, name):
    return kernel.restart(name)
