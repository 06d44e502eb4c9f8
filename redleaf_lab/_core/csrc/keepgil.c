/* keepgil.c: see keepgil.h. */
#include "keepgil.h"

typedef int (*rl_pass_fn)(void *);

int rl_call_keeping_gil(void *fn, void *arg) { return ((rl_pass_fn)fn)(arg); }
