# Right turns and claims, but with no backend it returns an empty table instead of M
# slots of -1 (Maglev's rebuild then has nothing to index).
def populate(prefs, m):
    if not prefs:
        return []
    entry = [-1] * m
    nxt = [0] * len(prefs)
    filled = 0
    while True:
        for i, (offset, skip) in enumerate(prefs):
            c = (offset + nxt[i] * skip) % m
            while entry[c] >= 0:
                nxt[i] += 1
                c = (offset + nxt[i] * skip) % m
            entry[c] = i
            nxt[i] += 1
            filled += 1
            if filled == m:
                return entry
