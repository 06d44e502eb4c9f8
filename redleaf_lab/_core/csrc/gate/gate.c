/* The compiled call gate: a proxy method as a CPython extension type (issue 14).
 *
 * A gate is what a generated proxy's method is when this module is built. Calling it
 * does, in the same order, what the generated Python fast path does
 * (redleaf_lab/idl/proxy.py, `_method_source`, fast variant):
 *
 *   1. callee gate open (`d.gate is None`) and caller gate open (`stack[-1].gate is
 *      None`); otherwise the Python proxy method (the fallback) does the whole call;
 *   2. exact types of the scalar arguments (int, float, str, bytes, bool); anything else
 *      (keywords, a wrong count, another type, RRefs in this version) is the fallback's;
 *   3. `d.calls += 1`, push `d` on the thread's continuation stack (the Python list the
 *      kernel's unwinder scans), re-check `d.gate is not None and d.state != 'running'`;
 *   4. vectorcall the implementation's bound method;
 *   5. on an exception: clear the pending asynchronous unwind aimed at `d` in C, before
 *      any Python runs, then raise what `calls.failed(ts, d, caller, exc)` returns;
 *   6. after a return: `after_gated` if the callee died meanwhile, pop, `returning` if
 *      the caller's gate closed, then the result by exact type or the Python checker.
 *
 * Opacity: the type has no attributes, no tp_new (a private factory builds gates), no
 * Py_TPFLAGS_BASETYPE and no __dict__; its repr names the method only. Nothing reachable
 * from a gate leads to the callee, its domain, the kernel or a raw pointer.
 *
 * Threads: everything runs with the GIL held. The thread's ThreadState and stack are
 * cached in C thread-local storage, keyed by the interpreter thread state's unique id;
 * strong references live in that thread state's dict, so they die with the thread.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>

#define GATE_MAX_ARGS 8

enum { A_INT = 1, A_FLOAT, A_STR, A_BYTES, A_BOOL };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *domain;    /* the callee incarnation `d` */
    PyObject *impl;      /* the implementation's bound method (or `_gone` once released) */
    PyObject *fallback;  /* the Python proxy's method: every unusual case */
    PyObject *res_type;  /* exact result type; NULL: always ask res_fix */
    PyObject *res_fix;   /* res_fix(result, d, caller) -> checked result, or raises */
    PyObject *label;     /* "Echo.ping", for repr */
    PyObject *entered;   /* "entered <name> after its crash" */
    int fast;            /* 0: every call takes the fallback */
    int nargs;
    unsigned char kinds[GATE_MAX_ARGS];
} Gate;

/* Set once by _setup(). */
static PyObject *g_holder, *g_failed, *g_after_gated, *g_returning, *g_unwind_cls;
static PyObject *s_gate, *s_calls, *s_state, *s_unwind_target, *s_running, *s_ts,
    *s_stack, *s_cache_key, *g_empty;

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
static PyObject *get_attr(PyObject *obj, PyObject *name)
{
    PyObject **addr = slot_fast(obj, name, 0);
    if (addr != NULL && *addr != NULL) {
        Py_INCREF(*addr);
        return *addr;
    }
    return PyObject_GetAttr(obj, name);
}

/* 1 if obj.name is None, 0 if not, -1 on error. */
static int attr_is_none(PyObject *obj, PyObject *name)
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
static int closed_and_not_running(PyObject *d)
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

static int bump_calls(PyObject *d)
{
    PyObject **addr = slot_fast(d, s_calls, 1);
    PyObject *old = addr != NULL ? *addr : NULL;
    if (old == NULL)
        old = PyObject_GetAttr(d, s_calls);
    else
        Py_INCREF(old);
    if (old == NULL)
        return -1;
    PyObject *new = NULL;
    int overflow = 0;
    long v = PyLong_CheckExact(old) ? PyLong_AsLongAndOverflow(old, &overflow) : -1;
    if (PyLong_CheckExact(old) && !overflow && v >= 0 && v < LONG_MAX)
        new = PyLong_FromLong(v + 1);
    else {
        PyObject *one = PyLong_FromLong(1);
        new = one == NULL ? NULL : PyNumber_InPlaceAdd(old, one);
        Py_XDECREF(one);
    }
    Py_DECREF(old);
    if (new == NULL)
        return -1;
    if (addr != NULL) {
        PyObject *prev = *addr;
        *addr = new;
        Py_XDECREF(prev);
        return 0;
    }
    int r = PyObject_SetAttr(d, s_calls, new);
    Py_DECREF(new);
    return r;
}

/* --- the thread's ThreadState and continuation stack --------------------------------- */

/* The last thread that called a gate (the GIL serialises callers): its interpreter thread
 * state and that state's unique id, and borrowed references to its ThreadState and
 * stack. The strong references live in the thread state's dict, so they end with the
 * thread; another thread finds its own pair there with one dict lookup. */
static PyThreadState *c_t;
static uint64_t c_id;
static PyObject *c_ts, *c_stack;

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

static inline int thread_cached(void)
{
    PyThreadState *t = PyThreadState_Get();
    if (t == c_t && PyThreadState_GetID(t) == c_id)
        return 0;
    return thread_refresh(t);
}

/* --- the call ------------------------------------------------------------------------ */

static PyObject *call_fallback(Gate *g, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    return PyObject_Vectorcall(g->fallback, args, PyVectorcall_NARGS(nargsf), kw);
}

/* The callee raised (the error is set): clear a pending unwind aimed at it, then raise
 * what calls.failed returns, with the callee's exception as its context. */
static void fail(Gate *g, PyObject *ts, PyObject *caller)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *target = get_attr(ts, s_unwind_target);
    if (target == NULL)
        PyErr_Clear();
    else {
        if (target == g->domain)
            PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), NULL);
        Py_DECREF(target);
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (value == NULL) {
        PyErr_SetString(PyExc_SystemError, "gate: exception without a value");
        return;
    }
    PyObject *handled = PyErr_GetHandledException();
    PyErr_SetHandledException(value);
    PyObject *argv[4] = {ts, g->domain, caller, value};
    PyObject *raise = PyObject_Vectorcall(g_failed, argv, 4, NULL);
    if (raise != NULL) {
        if (PyExceptionInstance_Check(raise))
            PyErr_SetObject((PyObject *)Py_TYPE(raise), raise);
        else
            PyErr_SetString(PyExc_TypeError, "calls.failed returned a non-exception");
        Py_DECREF(raise);
    }
    PyErr_SetHandledException(handled);
    Py_XDECREF(handled);
    Py_DECREF(value);
}

static int arg_ok(unsigned char kind, PyObject *a)
{
    switch (kind) {
    case A_INT: return PyLong_CheckExact(a);
    case A_FLOAT: return PyFloat_CheckExact(a);
    case A_STR: return PyUnicode_CheckExact(a);
    case A_BYTES: return PyBytes_CheckExact(a);
    case A_BOOL: return PyBool_Check(a);
    default: return 0;
    }
}

static PyObject *gate_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                 PyObject *kw)
{
    Gate *g = (Gate *)self;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    PyObject *d = g->domain;
    /* A gate is a method: args[0] is the proxy it was read from (ignored: the gate is
     * bound to its callee), the rest are the method's arguments. */
    if (n < 1) {
        PyErr_Format(PyExc_TypeError, "%U() needs its proxy as first argument", g->label);
        return NULL;
    }
    args++;
    n--;
    nargsf = (size_t)n;
    if (!g->fast || kw != NULL || n != g->nargs)
        return call_fallback(g, args, nargsf, kw);
    int open = attr_is_none(d, s_gate);
    if (open <= 0)
        return open < 0 ? NULL : call_fallback(g, args, nargsf, kw);
    if (thread_cached() < 0)
        return NULL;
    PyObject *ts = c_ts, *stack = c_stack;
    Py_ssize_t depth = PyList_GET_SIZE(stack);
    if (depth == 0)
        return call_fallback(g, args, nargsf, kw);
    PyObject *caller = PyList_GET_ITEM(stack, depth - 1);
    open = attr_is_none(caller, s_gate);
    if (open <= 0)
        return open < 0 ? NULL : call_fallback(g, args, nargsf, kw);
    for (Py_ssize_t i = 0; i < n; i++)
        if (!arg_ok(g->kinds[i], args[i]))
            return call_fallback(g, args, nargsf, kw);

    Py_INCREF(ts);
    Py_INCREF(stack);
    Py_INCREF(caller);
    PyObject *impl = g->impl;
    Py_INCREF(impl);
    PyObject *result = NULL;
    if (bump_calls(d) < 0 || PyList_Append(stack, d) < 0)
        goto out;
    int dead = closed_and_not_running(d);
    if (dead > 0) {
        PyObject *e = PyObject_CallOneArg(g_unwind_cls, g->entered);
        if (e != NULL) {
            PyErr_SetObject(g_unwind_cls, e);
            Py_DECREF(e);
        }
    }
    if (dead == 0)
        result = PyObject_Vectorcall(impl, args, n, NULL);
    if (result == NULL) {
        fail(g, ts, caller);
        goto out;
    }
    dead = closed_and_not_running(d);
    if (dead != 0) {
        if (dead > 0) {
            PyObject *target = get_attr(ts, s_unwind_target);
            if (target != NULL) {
                if (target == d)
                    PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), NULL);
                Py_DECREF(target);
                PyObject *argv[4] = {ts, d, caller, g_empty};
                PyObject *r = PyObject_Vectorcall(g_after_gated, argv, 4, NULL);
                dead = r == NULL ? -1 : 0;
                Py_XDECREF(r);
            }
            else
                dead = -1;
        }
        if (dead < 0) {
            Py_CLEAR(result);
            goto out;
        }
    }
    Py_ssize_t size = PyList_GET_SIZE(stack);
    if (size == 0) {
        PyErr_SetString(PyExc_IndexError, "list assignment index out of range");
        Py_CLEAR(result);
        goto out;
    }
    {   /* del stack[-1]: the list keeps its allocation, as list.pop() may */
        PyObject *top = PyList_GET_ITEM(stack, size - 1);
        Py_SET_SIZE(stack, size - 1);
        Py_DECREF(top);
    }
    open = attr_is_none(caller, s_gate);
    if (open == 0) {
        PyObject *argv[2] = {ts, caller};
        PyObject *r = PyObject_Vectorcall(g_returning, argv, 2, NULL);
        if (r == NULL)
            open = -1;
        Py_XDECREF(r);
    }
    if (open < 0) {
        Py_CLEAR(result);
        goto out;
    }
    if (g->res_type == NULL || (PyObject *)Py_TYPE(result) != g->res_type) {
        PyObject *argv[3] = {result, d, caller};
        PyObject *checked = PyObject_Vectorcall(g->res_fix, argv, 3, NULL);
        Py_DECREF(result);
        result = checked;
    }
out:
    Py_DECREF(impl);
    Py_DECREF(caller);
    Py_DECREF(stack);
    Py_DECREF(ts);
    return result;
}

/* --- the type ------------------------------------------------------------------------ */

static int gate_traverse(Gate *g, visitproc visit, void *arg)
{
    Py_VISIT(g->domain);
    Py_VISIT(g->impl);
    Py_VISIT(g->fallback);
    Py_VISIT(g->res_type);
    Py_VISIT(g->res_fix);
    return 0;
}

static int gate_clear(Gate *g)
{
    Py_CLEAR(g->domain);
    Py_CLEAR(g->impl);
    Py_CLEAR(g->fallback);
    Py_CLEAR(g->res_type);
    Py_CLEAR(g->res_fix);
    Py_CLEAR(g->label);
    Py_CLEAR(g->entered);
    return 0;
}

static void gate_dealloc(Gate *g)
{
    PyObject_GC_UnTrack(g);
    gate_clear(g);
    PyObject_GC_Del(g);
}

static PyObject *gate_repr(Gate *g)
{
    return PyUnicode_FromFormat("<gate %U>", g->label);
}

/* Reading a gate from a proxy binds it, as a function is bound: `cap.ping` is a bound
 * method whose __self__ is the proxy itself; the type is a method descriptor, so
 * `cap.ping(1)` is specialised by the interpreter like a method call, with no binding. */
static PyObject *gate_descr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static PyTypeObject GateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "redleaf_lab.gate",
    .tp_basicsize = sizeof(Gate),
    .tp_dealloc = (destructor)gate_dealloc,
    .tp_vectorcall_offset = offsetof(Gate, vectorcall),
    .tp_repr = (reprfunc)gate_repr,
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = gate_descr_get,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = NULL,
    .tp_traverse = (traverseproc)gate_traverse,
    .tp_clear = (inquiry)gate_clear,
};

/* --- private module functions -------------------------------------------------------- */

static const struct { const char *name; unsigned char kind; } KIND_NAMES[] = {
    {"int", A_INT}, {"float", A_FLOAT}, {"str", A_STR}, {"bytes", A_BYTES},
    {"bool", A_BOOL},
};

/* _make(domain, impl, fallback, kinds, res_type, res_fix, label, entered) -> gate.
 * kinds: a tuple of type names ("int", ...) or None for a gate that always falls back;
 * res_type: the exact result type or None (always res_fix). */
static PyObject *mod_make(PyObject *mod, PyObject *args)
{
    PyObject *domain, *impl, *fallback, *kinds, *res_type, *res_fix, *label, *entered;
    if (!PyArg_ParseTuple(args, "OOOOOOUU:_make", &domain, &impl, &fallback, &kinds,
                          &res_type, &res_fix, &label, &entered))
        return NULL;
    if (g_holder == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_setup() first");
        return NULL;
    }
    if (!PyCallable_Check(impl) || !PyCallable_Check(fallback) || !PyCallable_Check(res_fix)) {
        PyErr_SetString(PyExc_TypeError, "_make: impl, fallback and res_fix must be callable");
        return NULL;
    }
    Gate *g = PyObject_GC_New(Gate, &GateType);
    if (g == NULL)
        return NULL;
    g->vectorcall = gate_vectorcall;
    g->fast = 0;
    g->nargs = 0;
    memset(g->kinds, 0, sizeof g->kinds);
    if (kinds != Py_None) {
        if (!PyTuple_Check(kinds) || PyTuple_GET_SIZE(kinds) > GATE_MAX_ARGS) {
            PyErr_SetString(PyExc_TypeError, "_make: kinds must be a short tuple");
            PyObject_GC_Del(g);
            return NULL;
        }
        g->fast = 1;
        g->nargs = (int)PyTuple_GET_SIZE(kinds);
        for (int i = 0; i < g->nargs; i++) {
            const char *k = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kinds, i));
            if (k == NULL) {
                PyObject_GC_Del(g);
                return NULL;
            }
            for (size_t j = 0; j < sizeof KIND_NAMES / sizeof KIND_NAMES[0]; j++)
                if (strcmp(k, KIND_NAMES[j].name) == 0)
                    g->kinds[i] = KIND_NAMES[j].kind;
            if (g->kinds[i] == 0)
                g->fast = 0;
        }
    }
    Py_INCREF(domain);
    g->domain = domain;
    Py_INCREF(impl);
    g->impl = impl;
    Py_INCREF(fallback);
    g->fallback = fallback;
    if (res_type == Py_None) {
        g->res_type = NULL;
    }
    else {
        Py_INCREF(res_type);
        g->res_type = res_type;
    }
    Py_INCREF(res_fix);
    g->res_fix = res_fix;
    Py_INCREF(label);
    g->label = label;
    Py_INCREF(entered);
    g->entered = entered;
    PyObject_GC_Track(g);
    return (PyObject *)g;
}

/* _release(gate, gone): the incarnation is dead; drop its implementation. */
static PyObject *mod_release(PyObject *mod, PyObject *args)
{
    PyObject *gate, *gone;
    if (!PyArg_ParseTuple(args, "O!O:_release", &GateType, &gate, &gone))
        return NULL;
    Gate *g = (Gate *)gate;
    Py_INCREF(gone);
    Py_SETREF(g->impl, gone);
    Py_RETURN_NONE;
}

/* _setup(local_holder, failed, after_gated, returning, DomainUnwind), once. */
static PyObject *mod_setup(PyObject *mod, PyObject *args)
{
    PyObject *holder, *failed, *after, *returning, *unwind;
    if (!PyArg_ParseTuple(args, "OOOOO:_setup", &holder, &failed, &after, &returning,
                          &unwind))
        return NULL;
    if (!PyExceptionClass_Check(unwind)) {
        PyErr_SetString(PyExc_TypeError, "_setup: DomainUnwind must be an exception class");
        return NULL;
    }
    Py_INCREF(holder);
    Py_XSETREF(g_holder, holder);
    Py_INCREF(failed);
    Py_XSETREF(g_failed, failed);
    Py_INCREF(after);
    Py_XSETREF(g_after_gated, after);
    Py_INCREF(returning);
    Py_XSETREF(g_returning, returning);
    Py_INCREF(unwind);
    Py_XSETREF(g_unwind_cls, unwind);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"_make", mod_make, METH_VARARGS, NULL},
    {"_release", mod_release, METH_VARARGS, NULL},
    {"_setup", mod_setup, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef gate_module = {
    PyModuleDef_HEAD_INIT, "redleaf_lab._core._gate",
    "The compiled call gate (see csrc/gate/gate.c).", -1, module_methods,
};

PyMODINIT_FUNC PyInit__gate(void)
{
    if (PyType_Ready(&GateType) < 0)
        return NULL;
#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_gate, "gate");
    INTERN(s_calls, "calls");
    INTERN(s_state, "state");
    INTERN(s_unwind_target, "unwind_target");
    INTERN(s_running, "running");
    INTERN(s_ts, "ts");
    INTERN(s_stack, "stack");
    INTERN(s_cache_key, "redleaf_lab._core._gate.thread");
#undef INTERN
    g_empty = PyTuple_New(0);
    if (g_empty == NULL)
        return NULL;
    return PyModule_Create(&gate_module);
}
