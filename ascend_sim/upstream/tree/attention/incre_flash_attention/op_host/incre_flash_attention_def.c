/*
 * SIMULATOR (ascend-fa): prototype of IncreFlashAttention. The simulated repository carries the operator so that
 * `build.sh --ops=incre_flash_attention` is accepted; only FlashAttentionScore has a simulated kernel and aclnn API.
 */
#include "op_def.h"

static const ascendfa_sim_op_def incre_flash_attention_def = {
    .name = "IncreFlashAttention",
    .aclnn = "aclnnIncreFlashAttention",
    .inputs = "query,key,value",
    .outputs = "attention_out",
    .socs = OP_ADD_CONFIG("ascend910b")
            OP_ADD_CONFIG("ascend910_93")
            OP_ADD_CONFIG("ascend950")
            OP_ADD_CONFIG("ascend310p"),
};
OP_DEF_REGISTER(incre_flash_attention_def)
