/* Attribute access for the call gate: __slots__ members read and written directly, and
 * the calling thread's ThreadState and continuation stack.
 *
 * The objects a gate touches (incarnations, ThreadStates, RRef handles, Borrows) keep
 * their fields in __slots__. Reading such a member is a type-cache probe plus a load;
 * the small cache below turns the probe into a compare. Any object whose type is not a
 * plain slotted class (a custom __getattribute__ or __setattr__, or no such slot) is
 * read and written through the generic attribute protocol instead: same result, slower.
 */
#include "gate.h"
#include <structmember.h>

/* --- slot access: a __slots__ member read or written directly ------------------------ */

static PyObject **slot_addr(PyObject *obj, PyObject *name, int writable)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp->tp_getattro != PyObject_GenericGetAttr)
        return NULL;
    if (writable && tp->tp_setattro != PyObject_GenericSetAttr)
        return NULL;
    PyObject *descr = _PyType_Lookup(tp, name);
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type))
        return NULL;
    PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
    if (m->type != T_OBJECT_EX || (writable && (m->flags & READONLY)))
        return NULL;
    if (!PyObject_TypeCheck(obj, PyDescr_TYPE(descr)))
        return NULL;
    return (PyObject **)((char *)obj + m->offset);
}

/* A small cache of slot offsets per (type, version tag, name): the lookup above costs a
 * type-cache probe per attribute; this costs a compare. */
#define SLOT_CACHE 64
static struct { PyTypeObject *tp; unsigned int tag; PyObject *name; Py_ssize_t off; }
    slot_cache[SLOT_CACHE];

static inline PyObject **slot_fast(PyObject *obj, PyObject *name, int writable)
{
    PyTypeObject *tp = Py_TYPE(obj);
    unsigned int h = (unsigned int)((((uintptr_t)tp >> 4) * 31u + ((uintptr_t)name >> 4))
                                    & (SLOT_CACHE - 1));
    if (slot_cache[h].tp == tp && slot_cache[h].name == name && tp->tp_version_tag != 0
        && slot_cache[h].tag == tp->tp_version_tag
        && (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG))
        return (PyObject **)((char *)obj + slot_cache[h].off);
    PyObject **addr = slot_addr(obj, name, 1);
    if (addr == NULL)
        return writable ? NULL : slot_addr(obj, name, 0);
    if (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) {
        slot_cache[h].tp = tp; /* borrowed: compared, never dereferenced */
        slot_cache[h].tag = tp->tp_version_tag;
        slot_cache[h].name = name;
        slot_cache[h].off = (char *)addr - (char *)obj;
    }
    return addr;
}

/* New reference to obj.name; NULL with an exception set on failure. */
PyObject *get_attr(PyObject *obj, PyObject *name)
{
    PyObject **addr = slot_fast(obj, name, 0);
    if (addr != NULL && *addr != NULL) {
        Py_INCREF(*addr);
        return *addr;
    }
    return PyObject_GetAttr(obj, name);
}

/* 1 if obj.name is None, 0 if not, -1 on error. */
int attr_is_none(PyObject *obj, PyObject *name)
{
    PyObject **addr = slot_fast(obj, name, 0);
    if (addr != NULL && *addr != NULL)
        return *addr == Py_None;
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    int r = v == Py_None;
    Py_DECREF(v);
    return r;
}

/* `d.gate is not None and d.state != 'running'`: 1, 0, or -1 on error. */
int closed_and_not_running(PyObject *d)
{
    int open = attr_is_none(d, s_gate);
    if (open != 0)
        return open < 0 ? -1 : 0;
    PyObject *state = get_attr(d, s_state);
    if (state == NULL)
        return -1;
    int r = PyObject_RichCompareBool(state, s_running, Py_NE);
    Py_DECREF(state);
    return r;
}

/* --- the thread's ThreadState and continuation stack --------------------------------- */

/* The last thread that called a gate (the GIL serialises callers): its interpreter thread
 * state and that state's unique id, and borrowed references to its ThreadState and
 * stack. The strong references live in the thread state's dict, so they end with the
 * thread; another thread finds its own pair there with one dict lookup. */
static PyThreadState *c_t;
static uint64_t c_id;
PyObject *c_ts, *c_stack;

static int thread_refresh(PyThreadState *t)
{
    PyObject *dict = PyThreadState_GetDict();
    if (dict == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "gate: no thread state dict");
        return -1;
    }
    PyObject *pair = PyDict_GetItemWithError(dict, s_cache_key); /* borrowed */
    if (pair == NULL) {
        if (PyErr_Occurred())
            return -1;
        PyObject *ts = PyObject_GetAttr(g_holder, s_ts);
        if (ts == NULL)
            return -1;
        PyObject *stack = PyObject_GetAttr(ts, s_stack);
        if (stack == NULL || !PyList_CheckExact(stack)) {
            if (stack != NULL)
                PyErr_SetString(PyExc_TypeError, "gate: the continuation stack is not a list");
            Py_DECREF(ts);
            Py_XDECREF(stack);
            return -1;
        }
        pair = PyTuple_Pack(2, ts, stack);
        Py_DECREF(ts);
        Py_DECREF(stack);
        if (pair == NULL)
            return -1;
        int rc = PyDict_SetItem(dict, s_cache_key, pair);
        Py_DECREF(pair); /* the dict keeps it */
        if (rc < 0)
            return -1;
    }
    c_ts = PyTuple_GET_ITEM(pair, 0);
    c_stack = PyTuple_GET_ITEM(pair, 1);
    c_t = t;
    c_id = PyThreadState_GetID(t);
    return 0;
}

int thread_cached(void)
{
    PyThreadState *t = PyThreadState_Get();
    if (t == c_t && PyThreadState_GetID(t) == c_id)
        return 0;
    return thread_refresh(t);
}

Py_ssize_t slot_offset(PyTypeObject *tp, PyObject *name)
{
    if (tp->tp_getattro != PyObject_GenericGetAttr || tp->tp_setattro != PyObject_GenericSetAttr)
        return -1;
    PyObject *descr = _PyType_Lookup(tp, name);
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type))
        return -1;
    PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
    if (m->type != T_OBJECT_EX || (m->flags & READONLY)
        || !PyType_IsSubtype(tp, PyDescr_TYPE(descr)))
        return -1;
    return m->offset;
}

/* Borrowed reference to obj.name when it is a set slot member; NULL (no error) if not. */
PyObject *peek_attr(PyObject *obj, PyObject *name)
{
    PyObject **addr = slot_fast(obj, name, 0);
    return addr != NULL ? *addr : NULL;
}

/* obj.name = value, through the slot when it is one. */
int set_attr(PyObject *obj, PyObject *name, PyObject *value)
{
    PyObject **addr = slot_fast(obj, name, 1);
    if (addr == NULL)
        return PyObject_SetAttr(obj, name, value);
    PyObject *prev = *addr;
    Py_INCREF(value);
    *addr = value;
    Py_XDECREF(prev);
    return 0;
}
