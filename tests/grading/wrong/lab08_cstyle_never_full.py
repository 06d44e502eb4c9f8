# ruff: noqa: F821  (the names are the table module's, where the grader splices this)
# Right probing, but a full table is not noticed: the new key overwrites the slot the
# probe ends on, and set reports INSERTED.
def table_set(self, key, value):
    mask = self.mask
    slot = fnv1a64(key) & mask
    for _ in range(mask):
        if not self.used[slot] or self.keys[slot] == key:
            break
        slot = (slot + 1) & mask
    if self.used[slot] and self.keys[slot] == key:
        self.values[slot] = value
        return UPDATED
    if not self.used[slot]:
        self.count += 1
    self.used[slot] = 1
    self.keys[slot] = key
    self.values[slot] = value
    return INSERTED


def table_get(self, key):
    mask = self.mask
    slot = fnv1a64(key) & mask
    for _ in range(mask + 1):
        if not self.used[slot]:
            return None
        if self.keys[slot] == key:
            return self.values[slot]
        slot = (slot + 1) & mask
    return None
