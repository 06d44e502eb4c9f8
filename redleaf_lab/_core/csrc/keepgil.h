/* keepgil.h: call a C function of another extension module while keeping the GIL.
 *
 * The device models live in `_redleaf_dev`, a cffi module that releases the GIL around
 * every call (their threads and long passes must not stall Python). An inline model's
 * pass after a control-register write is short, though, and releasing the GIL for it
 * lets every other busy Python thread run first: with four traffic threads, the NVMe
 * driver's re-initialization after a crash (dozens of register writes) waited behind
 * them for up to 120 ms. This module (`_redleaf_core`) keeps the GIL, so calling the
 * pass through it keeps it too (devices/sim_nvme.py uses it for the control path).
 *
 * rl_call_keeping_gil(fn, arg) calls `int fn(void *arg)`; fn comes from the other
 * module (ffi.addressof), so it must have exactly that signature.
 */
#ifndef REDLEAF_KEEPGIL_H
#define REDLEAF_KEEPGIL_H

int rl_call_keeping_gil(void *fn, void *arg);

#endif
