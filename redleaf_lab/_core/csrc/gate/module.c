/* The module redleaf_lab._core._gate: private factory and set-up functions for gates.
 *
 *   _setup(local_holder, failed, after_gated, returning, DomainUnwind, escaped_views,
 *          unlend, Borrow, rl_move, rl_move_pair, rl_borrow, rl_unborrow)
 *       once, from redleaf_lab/idl/gates.py: the slow paths (idl/calls.py), the Borrow
 *       class, and the addresses of the heap registry's C functions (from cffi);
 *   _make(domain, impl, fallback, args, result, res_type, res_fix, label, entered,
 *         heap, heap_address) -> gate
 *       args: one descriptor per parameter (exchange.c, parse_item), or None for a gate
 *       that always falls back; result: a descriptor, a ("tuple", (descriptors...))
 *       with exactly two moved handles, or None;
 *   _release(gate, gone): the incarnation is dead; its implementation is dropped;
 *   _count(gate): the calls that entered the callee through it.
 *
 * Only idl/gates.py imports this module. Domain code never reaches it: domains import
 * through façades of an allow-list (kernel/safety), and a gate exposes nothing.
 */
#include "gate.h"

Py_ssize_t borrow_off_target = -1, borrow_off_lender = -1, borrow_off_live = -1,
    borrow_off_ro = -1;

static int parse_args(Gate *g, PyObject *descs)
{
    if (descs == Py_None)
        return 0;
    if (!PyTuple_Check(descs) || PyTuple_GET_SIZE(descs) > GATE_MAX_ARGS) {
        PyErr_SetString(PyExc_TypeError, "_make: args must be a short tuple or None");
        return -1;
    }
    g->fast = 1;
    g->nargs = (int)PyTuple_GET_SIZE(descs);
    for (int i = 0; i < g->nargs; i++) {
        if (parse_item(PyTuple_GET_ITEM(descs, i), &g->args[i]) < 0)
            return -1;
        unsigned char kind = g->args[i].kind;
        g->moves += kind == K_MOVE;
        g->borrows += kind == K_BORROW;
        if (kind == K_NONE)
            g->fast = 0;
    }
    if (g->moves > 2)
        g->fast = 0;  /* three or more moves: calls.move_in's all-or-nothing loop */
    return 0;
}

static int parse_result(Gate *g, PyObject *desc)
{
    if (PyTuple_Check(desc) && PyTuple_GET_SIZE(desc) == 2
        && PyUnicode_Check(PyTuple_GET_ITEM(desc, 0))
        && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(desc, 0), "tuple") == 0) {
        PyObject *items = PyTuple_GET_ITEM(desc, 1);
        if (!PyTuple_Check(items) || PyTuple_GET_SIZE(items) > GATE_MAX_ITEMS)
            return 0;
        int n = (int)PyTuple_GET_SIZE(items), handles = 0;
        for (int i = 0; i < n; i++) {
            if (parse_item(PyTuple_GET_ITEM(items, i), &g->items[i]) < 0)
                return -1;
            handles += g->items[i].kind == K_MOVE;
            if (g->items[i].kind == K_NONE || g->items[i].kind == K_BORROW)
                handles = 99;
        }
        g->n_items = handles == 2 ? n : 0;
        return 0;
    }
    if (desc == Py_None)
        return 0;
    if (parse_item(desc, &g->result) < 0)
        return -1;
    if (g->result.kind != K_MOVE)
        clear_item(&g->result), g->result.kind = K_NONE;  /* scalars: res_type */
    return 0;
}

static PyObject *mod_make(PyObject *mod, PyObject *args)
{
    PyObject *domain, *impl, *fallback, *descs, *result, *res_type, *res_fix, *label,
        *entered, *heap;
    unsigned long long heap_address;
    if (!PyArg_ParseTuple(args, "OOOOOOOUUOK:_make", &domain, &impl, &fallback, &descs,
                          &result, &res_type, &res_fix, &label, &entered, &heap,
                          &heap_address))
        return NULL;
    if (g_holder == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_setup() first");
        return NULL;
    }
    if (!PyCallable_Check(impl) || !PyCallable_Check(fallback) || !PyCallable_Check(res_fix)) {
        PyErr_SetString(PyExc_TypeError, "_make: impl, fallback and res_fix must be callable");
        return NULL;
    }
    PyObject *did = PyObject_GetAttr(domain, s_id);
    PyObject *dname = PyObject_GetAttrString(domain, "name");
    if (did == NULL || dname == NULL || !PyLong_Check(did) || !PyUnicode_Check(dname)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_make: the domain needs an int id and a name");
        Py_XDECREF(did);
        Py_XDECREF(dname);
        return NULL;
    }
    Gate *g = PyObject_GC_New(Gate, &GateType);
    if (g == NULL) {
        Py_DECREF(did);
        Py_DECREF(dname);
        return NULL;
    }
    /* every field zeroed first, so gate_dealloc can run on a half-made gate */
    memset((char *)g + sizeof(PyObject), 0, sizeof(Gate) - sizeof(PyObject));
    g->vectorcall = gate_vectorcall;
    g->domain = Py_NewRef(domain);
    g->impl = Py_NewRef(impl);
    if (PyMethod_Check(impl)) {
        g->impl_func = Py_NewRef(PyMethod_GET_FUNCTION(impl));
        g->impl_self = Py_NewRef(PyMethod_GET_SELF(impl));
    }
    g->fallback = Py_NewRef(fallback);
    g->res_type = res_type == Py_None ? NULL : Py_NewRef(res_type);
    g->res_fix = Py_NewRef(res_fix);
    g->label = Py_NewRef(label);
    g->entered = Py_NewRef(entered);
    g->dname = dname;
    g->heap_obj = Py_NewRef(heap);
    g->heap = (void *)(uintptr_t)heap_address;
    g->did = (uint32_t)PyLong_AsUnsignedLong(did);
    Py_DECREF(did);
    g->d_off_gate = slot_offset(Py_TYPE(domain), s_gate);
    g->c_off_gate = g->c_off_id = -1;
    if (PyErr_Occurred() || parse_args(g, descs) < 0 || parse_result(g, result) < 0) {
        Py_DECREF(g);
        return NULL;
    }
    if ((g->moves || g->borrows || g->result.kind == K_MOVE || g->n_items)
        && (g->heap == NULL || f_move == NULL))
        g->fast = 0;
    PyObject_GC_Track(g);
    return (PyObject *)g;
}

static PyObject *mod_release(PyObject *mod, PyObject *args)
{
    PyObject *gate, *gone;
    if (!PyArg_ParseTuple(args, "O!O:_release", &GateType, &gate, &gone))
        return NULL;
    Gate *g = (Gate *)gate;
    Py_INCREF(gone);
    Py_SETREF(g->impl, gone);
    Py_CLEAR(g->impl_func);  /* the incarnation's object goes with them */
    Py_CLEAR(g->impl_self);
    Py_RETURN_NONE;
}

/* _count(gate) -> the calls that entered the callee through it */
static PyObject *mod_count(PyObject *mod, PyObject *gate)
{
    if (!PyObject_TypeCheck(gate, &GateType)) {
        PyErr_SetString(PyExc_TypeError, "_count: not a gate");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(((Gate *)gate)->count);
}

static PyObject *mod_setup(PyObject *mod, PyObject *args)
{
    PyObject *holder, *failed, *after, *returning, *unwind, *escaped, *unlend, *borrow;
    unsigned long long move, move_pair, lend, unborrow;
    if (!PyArg_ParseTuple(args, "OOOOOOOOKKKK:_setup", &holder, &failed, &after, &returning,
                          &unwind, &escaped, &unlend, &borrow, &move, &move_pair, &lend,
                          &unborrow))
        return NULL;
    if (!PyExceptionClass_Check(unwind) || !PyType_Check(borrow)) {
        PyErr_SetString(PyExc_TypeError, "_setup: DomainUnwind and Borrow must be classes");
        return NULL;
    }
    Py_XSETREF(g_holder, Py_NewRef(holder));
    Py_XSETREF(g_failed, Py_NewRef(failed));
    Py_XSETREF(g_after_gated, Py_NewRef(after));
    Py_XSETREF(g_returning, Py_NewRef(returning));
    Py_XSETREF(g_unwind_cls, Py_NewRef(unwind));
    Py_XSETREF(g_escaped, Py_NewRef(escaped));
    Py_XSETREF(g_unlend, Py_NewRef(unlend));
    Py_XSETREF(g_borrow_cls, Py_NewRef(borrow));
    PyTypeObject *btp = (PyTypeObject *)borrow;
    borrow_off_target = slot_offset(btp, s_target);
    borrow_off_lender = slot_offset(btp, s_lender);
    borrow_off_live = slot_offset(btp, s_live);
    borrow_off_ro = slot_offset(btp, s_ro);
    f_move = (rl_move_fn)(uintptr_t)move;
    f_move_pair = (rl_move_pair_fn)(uintptr_t)move_pair;
    f_borrow = (rl_borrow_fn)(uintptr_t)lend;
    f_unborrow = (rl_unborrow_fn)(uintptr_t)unborrow;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"_make", mod_make, METH_VARARGS, NULL},
    {"_release", mod_release, METH_VARARGS, NULL},
    {"_count", mod_count, METH_O, NULL},
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
    INTERN(s_state, "state");
    INTERN(s_unwind_target, "unwind_target");
    INTERN(s_running, "running");
    INTERN(s_ts, "ts");
    INTERN(s_stack, "stack");
    INTERN(s_cache_key, "redleaf_lab._core._gate.thread");
    INTERN(s_id, "id");
    INTERN(s_hid, "_id");
    INTERN(s_heap, "_heap");
    INTERN(s_moved_to, "_moved_to");
    INTERN(s_rw, "_rw");
    INTERN(s_ro, "_ro");
    INTERN(s_live, "_live");
    INTERN(s_target, "_target");
    INTERN(s_lender, "_lender");
    INTERN(s_empty_str, "");
#undef INTERN
    g_empty = PyTuple_New(0);
    if (g_empty == NULL)
        return NULL;
    return PyModule_Create(&gate_module);
}
