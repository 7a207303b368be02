/*
 * SIMULATOR (ascend-fa): the operator prototype registry of libcust_opsproto_rt2.0.so.
 * Each op_host/<op>_def.c registers its definition with OP_DEF_REGISTER (a constructor); the real
 * library registers graph prototypes and InferShape functions with GE the same way.
 */
#include <stdio.h>
#include <string.h>

#include "ascendfa_sim_common.h"
#include "op_def.h"

#define MAX_OPS 32

static const ascendfa_sim_op_def *g_ops[MAX_OPS];
static int g_nops;

void ascendfa_sim_op_register(const ascendfa_sim_op_def *def)
{
    if (g_nops < MAX_OPS) {
        g_ops[g_nops++] = def;
    }
}

ASCENDFA_API int ascendfa_sim_op_count(void)
{
    return g_nops;
}

ASCENDFA_API const char *ascendfa_sim_op_name(int i)
{
    return (i >= 0 && i < g_nops) ? g_ops[i]->name : NULL;
}

/* Comma-separated socs the op was defined for, or NULL when the op is not in this package. */
ASCENDFA_API const char *ascendfa_sim_op_socs(const char *name)
{
    for (int i = 0; i < g_nops; i++) {
        if (strcmp(g_ops[i]->name, name) == 0) {
            return g_ops[i]->socs;
        }
    }
    return NULL;
}
