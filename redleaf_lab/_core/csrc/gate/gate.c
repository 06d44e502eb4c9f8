/* The compiled call gate: a proxy method as a CPython extension type (issue 14).
 *
 * A gate is what a generated proxy's method is when this module is built. Calling it
 * does, in the same order, what the generated Python fast path does
 * (redleaf_lab/idl/proxy.py, `_method_source`, fast variant):
 *
 *   1. callee gate open (`d.gate is None`) and caller gate open (`stack[-1].gate is
 *      None`); otherwise the Python proxy method (the fallback) does the whole call;
 *   2. the arguments' C checks (exchange.c): exact scalar types; handles of the exact
 *      class and layout, of this heap, without views. Anything else (keywords, a wrong
 *      count, another type, a re-lent borrow) is the fallback's, before any effect;
 *   3. lend the borrowed handles and move the moved ones with the registry's C functions
 *      (exchange.c); a refusal (not the owner, moved away, callee dead) ends the loans
 *      made and leaves the call to the fallback, which raises the precise error;
 *   4. count the call (in the gate: `Domain.calls` adds every gate's count to the Python
 *      proxies' `proxy_calls`), push `d` on the thread's continuation stack (the Python list the
 *      kernel's unwinder scans), re-check `d.gate is not None and d.state != 'running'`;
 *   5. vectorcall the implementation's bound method;
 *   6. on an exception: leave the callee first (pop it if it is on top), then drop a
 *      pending asynchronous unwind aimed at it, in C, before any Python runs; end the
 *      loans; raise what `calls.failed(ts, d, caller, exc)` returns;
 *   7. after a return: if the callee died meanwhile, leave it, drop the pending unwind
 *      and call `after_gated` (it raises); pop; end the loans (escaped views are the
 *      callee's panic); `returning` if the caller's gate closed; then the result: exact
 *      scalar type, or a moved handle (or a tuple of scalars and two handles) moved back
 *      in C, else the generated code's checked result step in Python (res_fix).
 *
 * Opacity: the type has no attributes, no tp_new (a private factory builds gates), no
 * Py_TPFLAGS_BASETYPE and no __dict__; its repr names the method only. Nothing reachable
 * from a gate leads to the callee, its domain, the kernel or a raw pointer.
 *
 * Threads: everything runs with the GIL held (the registry functions take the heap's own
 * mutex, and keep the GIL, as through cffi). The thread's ThreadState and stack are
 * cached (access.c), revalidated on every call.
 */
#include "gate.h"

PyObject *g_holder, *g_failed, *g_after_gated, *g_returning, *g_unwind_cls, *g_escaped,
    *g_unlend, *g_borrow_cls;
PyObject *s_gate, *s_state, *s_unwind_target, *s_running, *s_ts, *s_stack,
    *s_cache_key, *s_id, *s_hid, *s_heap, *s_moved_to, *s_rw, *s_ro, *s_live, *s_target, *s_lender,
    *s_empty_str, *g_empty;
rl_move_fn f_move;
rl_move_pair_fn f_move_pair;
rl_borrow_fn f_borrow;
rl_unborrow_fn f_unborrow;

/* --- the call ------------------------------------------------------------------------ */

/* Borrowed slot value at `off` of `obj`, or NULL when there is no such slot or it is
 * unset (then the caller reads the attribute by name, which raises properly). */
static inline PyObject *at(PyObject *obj, Py_ssize_t off)
{
    return off >= 0 ? *(PyObject **)((char *)obj + off) : NULL;
}

/* `d.gate is None`: 1, 0, or -1 on an error. */
static inline int callee_open(Gate *g)
{
    PyObject *v = at(g->domain, g->d_off_gate);
    return v != NULL ? v == Py_None : attr_is_none(g->domain, s_gate);
}

/* `d.gate is not None and d.state != 'running'`: 1, 0, or -1. */
static inline int callee_dead(Gate *g)
{
    int open = callee_open(g);
    if (open != 0)
        return open < 0 ? -1 : 0;
    return closed_and_not_running(g->domain);
}

/* The caller's slot offsets, cached for its type (a Domain or the root context). */
static inline void caller_slots(Gate *g, PyObject *caller)
{
    PyTypeObject *tp = Py_TYPE(caller);
    if ((PyObject *)tp != g->caller_tp) {
        Py_XSETREF(g->caller_tp, Py_NewRef(tp));
        g->c_off_gate = slot_offset(tp, s_gate);
        g->c_off_id = slot_offset(tp, s_id);
    }
}

/* `caller.gate is None`: 1, 0, or -1. */
static inline int caller_open(Gate *g, PyObject *caller)
{
    caller_slots(g, caller);
    PyObject *v = at(caller, g->c_off_gate);
    return v != NULL ? v == Py_None : attr_is_none(caller, s_gate);
}

/* Borrowed `caller.id` when it is an exact int slot, else NULL (no error set). */
static inline PyObject *caller_id(Gate *g, PyObject *caller)
{
    caller_slots(g, caller);
    PyObject *v = at(caller, g->c_off_id);
    if (v == NULL)
        v = peek_attr(caller, s_id);
    return v != NULL && PyLong_CheckExact(v) ? v : NULL;
}

static PyObject *call_fallback(Gate *g, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    return PyObject_Vectorcall(g->fallback, args, PyVectorcall_NARGS(nargsf), kw);
}

/* Leave the callee: pop it if it is on top of the stack, then drop an asynchronous
 * unwind pending for it (plain C: no point where Python code could run in between). */
static void leave_callee(PyObject *d, PyObject *ts, PyObject *stack)
{
    Py_ssize_t size = PyList_GET_SIZE(stack);
    if (size > 0 && PyList_GET_ITEM(stack, size - 1) == d) {
        Py_SET_SIZE(stack, size - 1);  /* del stack[-1]; the list keeps its allocation */
        Py_DECREF(d);
    }
    PyObject *target = peek_attr(ts, s_unwind_target);
    if (target == d)
        PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), NULL);
}

/* The callee raised (the error is set): raise what calls.failed returns, with the
 * callee's exception as its context. */
static void fail(Gate *g, PyObject *ts, PyObject *caller)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
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

/* The callee returned but died meanwhile: after_gated(ts, d, caller, loans) raises. */
static void died_during_call(Gate *g, PyObject *ts, PyObject *caller, PyObject **loans,
                             int n_loans)
{
    PyObject *tuple = n_loans ? PyTuple_New(n_loans) : Py_NewRef(g_empty);
    if (tuple == NULL)
        return;
    for (int i = 0; i < n_loans; i++)
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(loans[i]));
    PyObject *argv[4] = {ts, g->domain, caller, tuple};
    PyObject *r = PyObject_Vectorcall(g_after_gated, argv, 4, NULL);
    Py_DECREF(tuple);
    if (r != NULL) {  /* it returns only for a gate closed by tracing or a fault */
        Py_DECREF(r);
        PyErr_SetString(PyExc_SystemError, "gate: after_gated returned for a dead callee");
    }
}

PyObject *gate_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
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
    int open = callee_open(g);
    if (open <= 0)
        return open < 0 ? NULL : call_fallback(g, args, nargsf, kw);
    if (thread_cached() < 0)
        return NULL;
    PyObject *ts = c_ts, *stack = c_stack;
    Py_ssize_t depth = PyList_GET_SIZE(stack);
    if (depth == 0)
        return call_fallback(g, args, nargsf, kw);
    PyObject *caller = PyList_GET_ITEM(stack, depth - 1);
    open = caller_open(g, caller);
    if (open <= 0)
        return open < 0 ? NULL : call_fallback(g, args, nargsf, kw);
    if (!args_ok(g, args))
        return call_fallback(g, args, nargsf, kw);

    PyObject *loans[GATE_MAX_ARGS] = {NULL};
    uint32_t cid = 0;
    if (g->moves || g->borrows) {
        PyObject *cid_obj = caller_id(g, caller);
        if (cid_obj == NULL)
            return call_fallback(g, args, nargsf, kw);
        cid = (uint32_t)PyLong_AsUnsignedLong(cid_obj);
        if (PyErr_Occurred())
            return NULL;
        int done = exchange_in(g, args, cid, loans);
        if (done <= 0)
            return done < 0 ? NULL : call_fallback(g, args, nargsf, kw);
    }
    Py_INCREF(ts);
    Py_INCREF(stack);
    Py_INCREF(caller);
    PyObject *impl = g->impl;
    Py_INCREF(impl);
    PyObject *result = NULL;
    g->count++;
    int dead = PyList_Append(stack, d) < 0 ? -1 : callee_dead(g);
    if (dead > 0) {
        PyObject *e = PyObject_CallOneArg(g_unwind_cls, g->entered);
        if (e != NULL) {
            PyErr_SetObject(g_unwind_cls, e);
            Py_DECREF(e);
        }
    }
    if (dead == 0) {
        /* buf[0] is free for the callee (PY_VECTORCALL_ARGUMENTS_OFFSET), buf[1] is the
         * implementation's self, then the arguments; the callee gets the Borrow handles
         * in place of the lent RRefs */
        PyObject *buf[GATE_MAX_ARGS + 2];
        PyObject *self_ = g->impl_self;
        buf[1] = self_;
        for (Py_ssize_t i = 0, b = 0; i < n; i++)
            buf[i + 2] = g->args[i].kind == K_BORROW ? loans[b++] : args[i];
        if (self_ != NULL) {
            PyObject *func = g->impl_func;
            Py_INCREF(func);
            Py_INCREF(self_);
            result = PyObject_Vectorcall(func, buf + 1, (size_t)(n + 1)
                                         | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
            Py_DECREF(self_);
            Py_DECREF(func);
        }
        else
            result = PyObject_Vectorcall(impl, buf + 2, (size_t)n
                                         | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    if (result == NULL) {
        leave_callee(d, ts, stack);
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        Py_ssize_t ended = end_loans(g, loans, g->borrows);
        if (ended < 0) {  /* report the callee's exception; the loan error is lost */
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            PyErr_Fetch(&type, &value, &tb);
        }
        PyErr_Restore(type, value, tb);
        fail(g, ts, caller);
        goto out;
    }
    dead = callee_dead(g);
    if (dead != 0) {
        Py_CLEAR(result);
        if (dead > 0) {
            leave_callee(d, ts, stack);
            died_during_call(g, ts, caller, loans, g->borrows);
        }
        end_loans(g, loans, g->borrows);  /* after_gated ended them; drop our references */
        goto out;
    }
    Py_ssize_t size = PyList_GET_SIZE(stack);
    if (size == 0) {
        PyErr_SetString(PyExc_IndexError, "list assignment index out of range");
        Py_CLEAR(result);
        end_loans(g, loans, g->borrows);
        goto out;
    }
    {   /* del stack[-1]: the list keeps its allocation, as list.pop() may */
        PyObject *top = PyList_GET_ITEM(stack, size - 1);
        Py_SET_SIZE(stack, size - 1);
        Py_DECREF(top);
    }
    if (g->borrows) {  /* every loan ends, even when an earlier one had views escape */
        Py_ssize_t escaped = end_loans(g, loans, g->borrows);
        if (escaped != 0) {
            Py_CLEAR(result);
            if (escaped > 0) {
                PyObject *count = PyLong_FromSsize_t(escaped);
                if (count != NULL) {
                    PyObject *argv[3] = {d, caller, count};
                    PyObject *e = PyObject_Vectorcall(g_escaped, argv, 3, NULL);
                    Py_DECREF(count);
                    if (e != NULL) {
                        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
                        Py_DECREF(e);
                    }
                }
            }
            goto out;
        }
    }
    open = caller_open(g, caller);
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
    if (g->result.kind == K_MOVE || g->n_items > 0) {
        if (cid == 0) {
            PyObject *cid_obj = caller_id(g, caller);
            cid = cid_obj != NULL ? (uint32_t)PyLong_AsUnsignedLong(cid_obj) : 0;
            if (PyErr_Occurred())
                PyErr_Clear();
        }
        if (cid == 0) {  /* an unusual caller: the checked Python step */
            PyObject *argv[3] = {result, d, caller};
            PyObject *checked = PyObject_Vectorcall(g->res_fix, argv, 3, NULL);
            Py_DECREF(result);
            result = checked;
            goto out;
        }
    }
    result = exchange_out(g, result, caller, cid);
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
    Py_VISIT(g->impl_func);
    Py_VISIT(g->impl_self);
    Py_VISIT(g->fallback);
    Py_VISIT(g->res_type);
    Py_VISIT(g->res_fix);
    Py_VISIT(g->heap_obj);
    Py_VISIT(g->caller_tp);
    for (int i = 0; i < GATE_MAX_ARGS; i++)
        Py_VISIT(g->spare[i]);
    for (int i = 0; i < GATE_MAX_ARGS; i++)
        visit_item(&g->args[i], visit, arg);
    visit_item(&g->result, visit, arg);
    for (int i = 0; i < GATE_MAX_ITEMS; i++)
        visit_item(&g->items[i], visit, arg);
    return 0;
}

static int gate_clear(Gate *g)
{
    Py_CLEAR(g->domain);
    Py_CLEAR(g->impl);
    Py_CLEAR(g->impl_func);
    Py_CLEAR(g->impl_self);
    Py_CLEAR(g->fallback);
    Py_CLEAR(g->res_type);
    Py_CLEAR(g->res_fix);
    Py_CLEAR(g->label);
    Py_CLEAR(g->entered);
    Py_CLEAR(g->dname);
    Py_CLEAR(g->heap_obj);
    Py_CLEAR(g->caller_tp);
    for (int i = 0; i < GATE_MAX_ARGS; i++)
        Py_CLEAR(g->spare[i]);
    for (int i = 0; i < GATE_MAX_ARGS; i++)
        clear_item(&g->args[i]);
    clear_item(&g->result);
    for (int i = 0; i < GATE_MAX_ITEMS; i++)
        clear_item(&g->items[i]);
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

PyTypeObject GateType = {
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
