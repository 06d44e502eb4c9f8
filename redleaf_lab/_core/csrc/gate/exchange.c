/* What crosses a call gate: scalar checks, RRef moves and borrows, the result's move back.
 *
 * These are the generated proxy's steps 2, 4 and 8 (redleaf_lab/idl/proxy.py), done with
 * direct calls to the heap registry's C functions (csrc/heap.c: rl_move, rl_move_pair,
 * rl_borrow, rl_unborrow), no cffi round trip. The C path takes only the common case:
 * a handle of the exact class and layout, of this kernel's heap, with no live views. Any
 * other value, and any refusal by the registry, is left to the generated Python method
 * (the gate's fallback), which redoes the whole call and raises the precise error. The
 * registry calls are atomic and change nothing when they refuse, so a fallback after a
 * refusal starts from the same state; loans already made are ended first.
 *
 * Ownership: a Borrow made here is the callee's argument; the gate keeps its own
 * reference until the loan has ended (end_loans), as the generated code keeps `x_loan`.
 */
#include "gate.h"

static const struct { const char *name; unsigned char kind; } SCALARS[] = {
    {"int", K_INT}, {"float", K_FLOAT}, {"str", K_STR}, {"bytes", K_BYTES}, {"bool", K_BOOL},
};

/* desc: "int" | "float" | "str" | "bytes" | "bool"
 *     | ("move", cls, layout, layout_attr, viewless) | ("borrow", cls, layout, layout_attr)
 * Anything else gives K_NONE (the fallback handles it). */
int parse_item(PyObject *desc, ItemSpec *out)
{
    memset(out, 0, sizeof *out);
    if (PyUnicode_Check(desc)) {
        const char *k = PyUnicode_AsUTF8(desc);
        if (k == NULL)
            return -1;
        for (size_t j = 0; j < sizeof SCALARS / sizeof SCALARS[0]; j++)
            if (strcmp(k, SCALARS[j].name) == 0)
                out->kind = SCALARS[j].kind;
        return 0;
    }
    if (!PyTuple_Check(desc) || PyTuple_GET_SIZE(desc) < 4
        || !PyUnicode_Check(PyTuple_GET_ITEM(desc, 0)))
        return 0;
    const char *k = PyUnicode_AsUTF8(PyTuple_GET_ITEM(desc, 0));
    if (k == NULL)
        return -1;
    if (strcmp(k, "move") == 0 && PyTuple_GET_SIZE(desc) == 5)
        out->kind = K_MOVE;
    else if (strcmp(k, "borrow") == 0 && PyTuple_GET_SIZE(desc) == 4)
        out->kind = K_BORROW;
    else
        return 0;
    PyObject *attr = PyTuple_GET_ITEM(desc, 3);
    if (!PyType_Check(PyTuple_GET_ITEM(desc, 1)) || !PyUnicode_Check(attr)) {
        out->kind = K_NONE;
        return 0;
    }
    out->type = Py_NewRef(PyTuple_GET_ITEM(desc, 1));
    out->layout = Py_NewRef(PyTuple_GET_ITEM(desc, 2));
    Py_INCREF(attr);
    PyUnicode_InternInPlace(&attr);
    out->layout_attr = attr;
    out->viewless = out->kind == K_MOVE && PyObject_IsTrue(PyTuple_GET_ITEM(desc, 4)) == 1;
    PyTypeObject *tp = (PyTypeObject *)out->type;
    out->off_layout = slot_offset(tp, attr);
    out->off_id = slot_offset(tp, s_hid);
    out->off_heap = slot_offset(tp, s_heap);
    out->off_rw = slot_offset(tp, s_rw);
    out->off_ro = slot_offset(tp, s_ro);
    out->off_moved_to = slot_offset(tp, s_moved_to);
    return 0;
}

void clear_item(ItemSpec *it)
{
    Py_CLEAR(it->type);
    Py_CLEAR(it->layout);
    Py_CLEAR(it->layout_attr);
}

int visit_item(ItemSpec *it, visitproc visit, void *arg)
{
    Py_VISIT(it->type);
    Py_VISIT(it->layout);
    return 0;
}

int scalar_ok(unsigned char kind, PyObject *a)
{
    switch (kind) {
    case K_INT: return PyLong_CheckExact(a);
    case K_FLOAT: return PyFloat_CheckExact(a);
    case K_STR: return PyUnicode_CheckExact(a);
    case K_BYTES: return PyBytes_CheckExact(a);
    case K_BOOL: return PyBool_Check(a);
    default: return 0;
    }
}

static uint64_t id_of(PyObject *id)
{
    if (id == NULL || !PyLong_CheckExact(id))
        return 0;
    uint64_t v = PyLong_AsUnsignedLongLong(id);
    if (v == (uint64_t)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return v;
}

/* The registry id of a handle checked against `spec` (its exact class). */
static inline uint64_t spec_id(const ItemSpec *spec, PyObject *a)
{
    return id_of(field(a, spec->off_id, s_hid));
}

uint64_t handle_id(PyObject *a)
{
    return id_of(peek_attr(a, s_hid));
}

/* Exact class and layout, a live id, and for a move (unless viewless) no exporters of
 * views: the generated code's `_check_no_views` decides about those (it drops exporters
 * whose views are gone), in the fallback. A loan may be made while the lender holds
 * views, as calls.lend allows. The heap is compared by identity with the one the gate
 * moves on (the callee's kernel). */
static int handle_ok_on(const ItemSpec *spec, PyObject *a, PyObject *heap)
{
    if ((PyObject *)Py_TYPE(a) != spec->type)
        return 0;
    if (field(a, spec->off_layout, spec->layout_attr) != spec->layout)
        return 0;
    if (field(a, spec->off_heap, s_heap) != heap)
        return 0;
    if (spec->kind == K_MOVE && !spec->viewless) {
        if (field(a, spec->off_rw, s_rw) != Py_None || field(a, spec->off_ro, s_ro) != Py_None)
            return 0;
    }
    return spec_id(spec, a) != 0;
}

int args_ok(Gate *g, PyObject *const *args)
{
    for (int i = 0; i < g->nargs; i++) {
        const ItemSpec *spec = &g->args[i];
        if (spec->kind == K_MOVE || spec->kind == K_BORROW) {
            if (!handle_ok_on(spec, args[i], g->heap_obj))
                return 0;
        }
        else if (!scalar_ok(spec->kind, args[i]))
            return 0;
    }
    return 1;
}

static PyObject *new_borrow(Gate *g, int slot, PyObject *target, uint32_t lender)
{
    PyTypeObject *cls = (PyTypeObject *)g_borrow_cls;
    PyObject *b = g->spare[slot];
    g->spare[slot] = NULL;
    if (b == NULL)
        b = cls->tp_alloc(cls, 0);
    if (b == NULL)
        return NULL;
    PyObject *owner = PyLong_FromUnsignedLong(lender);
    if (owner == NULL || set_field(b, borrow_off_target, s_target, target) < 0
        || set_field(b, borrow_off_lender, s_lender, owner) < 0
        || set_field(b, borrow_off_live, s_live, Py_True) < 0
        || set_field(b, borrow_off_ro, s_ro, Py_None) < 0) {
        Py_XDECREF(owner);
        Py_DECREF(b);
        return NULL;
    }
    Py_DECREF(owner);
    return b;
}

int exchange_in(Gate *g, PyObject *const *args, uint32_t cid, PyObject **loans)
{
    int lent = 0;
    for (int i = 0; i < g->nargs; i++) {  /* the loans first, in order, as the proxy does */
        if (g->args[i].kind != K_BORROW)
            continue;
        uint64_t id = spec_id(&g->args[i], args[i]);
        if (f_borrow(g->heap, id, cid) != 0)
            goto refused;
        PyObject *b = new_borrow(g, lent, args[i], cid);
        if (b == NULL) {
            f_unborrow(g->heap, id);
            goto error;
        }
        loans[lent++] = b;
    }
    if (g->moves == 1) {
        for (int i = 0; i < g->nargs; i++)
            if (g->args[i].kind == K_MOVE) {
                const ItemSpec *spec = &g->args[i];
                if (f_move(g->heap, spec_id(spec, args[i]), cid, g->did) != 0)
                    goto refused;
                if (set_field(args[i], spec->off_moved_to, s_moved_to, g->dname) < 0)
                    return -1;  /* the move is done: the call goes on to fail cleanly */
            }
    }
    else if (g->moves == 2) {
        PyObject *pair[2];
        const ItemSpec *specs[2];
        int n = 0;
        for (int i = 0; i < g->nargs; i++)
            if (g->args[i].kind == K_MOVE) {
                specs[n] = &g->args[i];
                pair[n++] = args[i];
            }
        if (f_move_pair(g->heap, spec_id(specs[0], pair[0]), spec_id(specs[1], pair[1]), cid,
                        g->did) != 0)
            goto refused;
        if (set_field(pair[0], specs[0]->off_moved_to, s_moved_to, g->dname) < 0
            || set_field(pair[1], specs[1]->off_moved_to, s_moved_to, g->dname) < 0)
            return -1;
    }
    return 1;
refused:
    if (end_loans(g, loans, lent) < 0)
        return -1;
    return 0;
error:
    end_loans(g, loans, lent);
    return -1;
}

Py_ssize_t end_loans(Gate *g, PyObject **loans, int n)
{
    Py_ssize_t escaped = 0;
    int failed = 0;
    for (int i = n - 1; i >= 0; i--) {  /* in reverse, as unlend_all(reversed(made)) */
        PyObject *loan = loans[i];
        if (loan == NULL)
            continue;
        PyObject *live = field(loan, borrow_off_live, s_live);
        if (live == Py_True && field(loan, borrow_off_ro, s_ro) == Py_None && !failed) {
            PyObject *target = field(loan, borrow_off_target, s_target);
            uint64_t id = target == NULL ? 0 : handle_id(target);
            if (set_field(loan, borrow_off_live, s_live, Py_False) < 0)
                failed = 1;
            else
                f_unborrow(g->heap, id);
        }
        else if (live != Py_False && !failed) {
            /* views were made of it (or it is not a plain slotted Borrow): Python counts
             * the escaped ones */
            PyObject *r = PyObject_CallOneArg(g_unlend, loan);
            if (r == NULL)
                failed = 1;
            else {
                escaped += PyLong_AsSsize_t(r);
                Py_DECREF(r);
                if (PyErr_Occurred())
                    failed = 1;
            }
        }
        loans[i] = NULL;
        if (Py_REFCNT(loan) == 1 && g->spare[i] == NULL && !failed
            && Py_TYPE(loan) == (PyTypeObject *)g_borrow_cls
            && field(loan, borrow_off_live, s_live) == Py_False && borrow_off_target >= 0
            && set_field(loan, borrow_off_target, s_target, Py_None) == 0) {
            g->spare[i] = loan;  /* ended, and no one else holds it: keep it for the next */
            continue;
        }
        Py_DECREF(loan);
    }
    return failed ? -1 : escaped;
}

static int moved_back(const ItemSpec *spec, PyObject *h)
{
    return set_field(h, spec->off_moved_to, s_moved_to, s_empty_str);
}

PyObject *exchange_out(Gate *g, PyObject *result, PyObject *caller, uint32_t cid)
{
    if (g->result.kind == K_MOVE) {
        if (handle_ok_on(&g->result, result, g->heap_obj)
            && f_move(g->heap, spec_id(&g->result, result), g->did, cid) == 0) {
            if (moved_back(&g->result, result) < 0)
                Py_CLEAR(result);
            return result;
        }
    }
    else if (g->n_items > 0) {
        if (PyTuple_CheckExact(result) && PyTuple_GET_SIZE(result) == g->n_items) {
            PyObject *pair[2];
            const ItemSpec *specs[2];
            int n = 0, ok = 1;
            for (int i = 0; i < g->n_items && ok; i++) {
                PyObject *item = PyTuple_GET_ITEM(result, i);
                if (g->items[i].kind == K_MOVE) {
                    ok = n < 2 && handle_ok_on(&g->items[i], item, g->heap_obj);
                    if (ok) {
                        specs[n] = &g->items[i];
                        pair[n++] = item;
                    }
                }
                else
                    ok = scalar_ok(g->items[i].kind, item);
            }
            if (ok && n == 2
                && f_move_pair(g->heap, spec_id(specs[0], pair[0]), spec_id(specs[1], pair[1]),
                               g->did, cid) == 0) {
                if (moved_back(specs[0], pair[0]) < 0 || moved_back(specs[1], pair[1]) < 0)
                    Py_CLEAR(result);
                return result;
            }
        }
    }
    else if (g->res_type != NULL && (PyObject *)Py_TYPE(result) == g->res_type)
        return result;
    /* the checked Python path: exactly the generated code's result step */
    PyObject *argv[3] = {result, g->domain, caller};
    PyObject *checked = PyObject_Vectorcall(g->res_fix, argv, 3, NULL);
    Py_DECREF(result);
    return checked;
}
