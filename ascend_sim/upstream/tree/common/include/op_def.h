/*
 * SIMULATOR (ascend-fa): operator definition macros. The real op_host/<op>_def.cpp declares inputs,
 * outputs and, per SoC, `this->AICore().AddConfig("ascend910b")`; build.sh reads the OP_ADD_CONFIG
 * lines to decide whether an op is built for the requested --soc.
 */
#ifndef ASCENDFA_SIM_OP_DEF_H_
#define ASCENDFA_SIM_OP_DEF_H_

typedef struct ascendfa_sim_op_def {
    const char *name;      /* e.g. "FlashAttentionScore" */
    const char *aclnn;     /* e.g. "aclnnFlashAttentionScore" */
    const char *inputs;    /* comma-separated */
    const char *outputs;
    const char *socs;      /* comma-separated OP_ADD_CONFIG values */
} ascendfa_sim_op_def;

void ascendfa_sim_op_register(const ascendfa_sim_op_def *def);

#define OP_ADD_CONFIG(soc) soc ","

#define OP_DEF_REGISTER(var)                                                            \
    static void __attribute__((constructor)) ascendfa_sim_register_##var(void)         \
    {                                                                                   \
        ascendfa_sim_op_register(&(var));                                               \
    }

#endif /* ASCENDFA_SIM_OP_DEF_H_ */
