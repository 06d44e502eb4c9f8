# A working rule that also hoards a copy of every request in a global list (an RRef leak
# on the caller's side: the objects outlive the check).
from redleaf_lab.api import RRef, RRefDeque
from redleaf_lab.idl.recovery import still_owned

HOARD = []


def batch_keep(args):
    submit, collect, _write = args
    HOARD.append(RRef.new(submit.element))
    return (submit.element, submit.capacity, submit.get(), collect.capacity)


def batch_rebuild(args, kept):
    submit, collect, write = args
    element, capacity, records, collect_capacity = kept
    if not still_owned(submit):
        submit = RRefDeque.new(element, capacity)
        for record in records:
            submit.push_back(RRef.new(element, record))
    if not still_owned(collect):
        collect = RRefDeque.new(element, collect_capacity)
    return (submit, collect, write)
