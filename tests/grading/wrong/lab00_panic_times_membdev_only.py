import time


# Right waiting, but it always panics membdev, whatever driver it is asked for.
def panic_times(lab, driver, times):
    kernel = lab.kernel
    seen = 0
    for _ in range(times):
        restarts = kernel.restarts("membdev")
        lab.panic("membdev", "once")
        deadline = time.monotonic() + 5
        while kernel.restarts("membdev") == restarts and time.monotonic() < deadline:
            time.sleep(0.01)
        seen += kernel.restarts("membdev") - restarts
    return seen
