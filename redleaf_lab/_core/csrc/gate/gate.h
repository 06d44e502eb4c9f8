/* Shared declarations of the compiled call gate (gate.c, access.c, exchange.c).
 *
 * Everything here runs with the GIL held; nothing is thread-local except the cache of
 * the calling thread's ThreadState (access.c), which is revalidated on every call.
 */
#ifndef REDLEAF_GATE_H
#define REDLEAF_GATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#define GATE_MAX_ARGS 8
#define GATE_MAX_ITEMS 8

/* What the gate checks and does for one argument or result item. */
enum {
    K_NONE = 0, /* not handled in C: the whole call is the fallback's */
    K_INT, K_FLOAT, K_STR, K_BYTES, K_BOOL, /* exact scalar types */
    K_MOVE,   /* an RRef-family handle moved to the callee (and back, as a result) */
    K_BORROW, /* an RRef lent for the call: a Borrow handle, ended at return */
};

typedef struct {
    unsigned char kind;
    unsigned char viewless;  /* containers: they never export views */
    PyObject *type;          /* K_MOVE/K_BORROW: the exact handle class */
    PyObject *layout;        /* ... and its layout (compared by identity) */
    PyObject *layout_attr;   /* "_layout" (RRef) or "_element" (containers) */
    /* byte offsets of the handle class's slot members (-1: read by name) */
    Py_ssize_t off_layout, off_id, off_heap, off_rw, off_ro, off_moved_to;
} ItemSpec;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *domain;    /* the callee incarnation `d` */
    PyObject *impl;      /* the implementation's bound method (or `_gone` once released) */
    PyObject *impl_func; /* ... split: its function and its self (NULL: call impl as is), */
    PyObject *impl_self; /* so the call skips the bound method's own argument copy */
    PyObject *fallback;  /* the Python proxy's method: every unusual case */
    PyObject *res_type;  /* K_INT...: exact result type; NULL: see result */
    PyObject *res_fix;   /* res_fix(result, d, caller) -> checked result, or raises */
    PyObject *label;     /* "Echo.ping", for repr and errors */
    PyObject *entered;   /* "entered <name> after its crash" */
    PyObject *dname;     /* the callee's name: a moved handle's `_moved_to` */
    void *heap;          /* the kernel heap (rl_heap *), for moves and borrows */
    PyObject *heap_obj;  /* its Python object (`d.heap`): a handle must be of this heap */
    uint32_t did;        /* the callee's domain id */
    uint64_t count;      /* calls that entered the callee through this gate */
    Py_ssize_t d_off_gate;                 /* the callee's `gate` slot (-1: by name) */
    PyObject *caller_tp;                   /* the last caller's type, and its slots */
    Py_ssize_t c_off_gate, c_off_id;
    int fast;            /* 0: every call takes the fallback */
    int nargs;
    int moves, borrows;  /* how many K_MOVE / K_BORROW arguments */
    ItemSpec args[GATE_MAX_ARGS];
    /* Borrow handles whose loans ended with no reference left but the gate's: reused by
     * the next call (their target cleared meanwhile). No one else can observe one: a
     * Borrow has no __weakref__ slot, and its only reference is here. */
    PyObject *spare[GATE_MAX_ARGS];
    /* the result: kind K_NONE (always res_fix), a scalar (res_type), K_MOVE, or a tuple
     * (n_items > 0) of scalars and exactly two moved handles */
    ItemSpec result;
    int n_items;
    ItemSpec items[GATE_MAX_ITEMS];
} Gate;

/* --- globals set by _setup() (gate.c) --- */
extern PyObject *g_holder, *g_failed, *g_after_gated, *g_returning, *g_unwind_cls,
    *g_escaped, *g_unlend, *g_borrow_cls;
extern PyObject *s_gate, *s_state, *s_unwind_target, *s_running, *s_ts, *s_stack,
    *s_cache_key, *s_id, *s_hid, *s_heap, *s_moved_to, *s_rw, *s_ro, *s_live, *s_target, *s_lender,
    *s_empty_str, *g_empty;
typedef int (*rl_move_fn)(void *h, uint64_t id, uint32_t from, uint32_t to);
typedef int (*rl_move_pair_fn)(void *h, uint64_t a, uint64_t b, uint32_t from, uint32_t to);
typedef int (*rl_borrow_fn)(void *h, uint64_t id, uint32_t owner);
typedef int (*rl_unborrow_fn)(void *h, uint64_t id);
extern rl_move_fn f_move;
extern rl_move_pair_fn f_move_pair;
extern rl_borrow_fn f_borrow;
extern rl_unborrow_fn f_unborrow;

extern PyTypeObject GateType;
PyObject *gate_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw);

/* --- access.c: attributes by slot, the thread's state --- */
PyObject *get_attr(PyObject *obj, PyObject *name);       /* new reference or NULL */
PyObject *peek_attr(PyObject *obj, PyObject *name);      /* borrowed; NULL: not a set slot */
int set_attr(PyObject *obj, PyObject *name, PyObject *value);
int attr_is_none(PyObject *obj, PyObject *name);         /* 1, 0, -1 */
int closed_and_not_running(PyObject *d);                 /* 1, 0, -1 */
int thread_cached(void);                                 /* 0 or -1 */
/* The offset of a plain object slot member `name` of `tp` (its own or inherited), or -1
 * when `tp` reads or writes attributes in another way. */
Py_ssize_t slot_offset(PyTypeObject *tp, PyObject *name);
/* Borrowed obj.name read at a precomputed offset (off >= 0; obj of the class it was
 * computed for), else by name; NULL when unset. */
static inline PyObject *field(PyObject *obj, Py_ssize_t off, PyObject *name)
{
    return off >= 0 ? *(PyObject **)((char *)obj + off) : peek_attr(obj, name);
}
/* obj.name = value at a precomputed offset, else by name. */
static inline int set_field(PyObject *obj, Py_ssize_t off, PyObject *name, PyObject *value)
{
    if (off < 0)
        return set_attr(obj, name, value);
    PyObject **addr = (PyObject **)((char *)obj + off), *prev = *addr;
    *addr = Py_NewRef(value);
    Py_XDECREF(prev);
    return 0;
}
extern Py_ssize_t borrow_off_target, borrow_off_lender, borrow_off_live, borrow_off_ro;
extern PyObject *c_ts, *c_stack;                         /* borrowed, after thread_cached */

/* --- exchange.c: descriptors, moves, borrows --- */
int parse_item(PyObject *desc, ItemSpec *out);           /* 0, or -1 with an error */
void clear_item(ItemSpec *it);
int visit_item(ItemSpec *it, visitproc visit, void *arg);
int scalar_ok(unsigned char kind, PyObject *a);
/* 1 if every argument passes its C check (exact scalar type; a handle of the exact
 * class and layout, of this heap, with no views), 0 if not: then the fallback's. */
int args_ok(Gate *g, PyObject *const *args);
/* Lend and move the arguments from `cid` to the callee. Returns 1 when done (loans[]
 * holds one new Borrow per K_BORROW argument, in order), 0 when the registry refused
 * (nothing changed: the fallback redoes the call and raises the precise error), -1 on
 * an error. */
int exchange_in(Gate *g, PyObject *const *args, uint32_t cid, PyObject **loans);
/* End the loans; returns the number of escaped views (>= 0) or -1 on an error. Loans
 * already ended are skipped, as calls.unlend_all does. */
Py_ssize_t end_loans(Gate *g, PyObject **loans, int n);
/* The result step: the checked result (new reference) or NULL. Steals `result`. */
PyObject *exchange_out(Gate *g, PyObject *result, PyObject *caller, uint32_t cid);
uint64_t handle_id(PyObject *a);                         /* 0 on error */

#endif
