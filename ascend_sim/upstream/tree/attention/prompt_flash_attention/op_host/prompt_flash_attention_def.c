/*
 * SIMULATOR (ascend-fa): prototype of PromptFlashAttention. The simulated repository carries the operator so that
 * `build.sh --ops=prompt_flash_attention` is accepted; only FlashAttentionScore has a simulated kernel and aclnn API.
 */
#include "op_def.h"

static const ascendfa_sim_op_def prompt_flash_attention_def = {
    .name = "PromptFlashAttention",
    .aclnn = "aclnnPromptFlashAttention",
    .inputs = "query,key,value",
    .outputs = "attention_out",
    .socs = OP_ADD_CONFIG("ascend910b")
            OP_ADD_CONFIG("ascend910_93")
            OP_ADD_CONFIG("ascend950")
            OP_ADD_CONFIG("ascend310p"),
};
OP_DEF_REGISTER(prompt_flash_attention_def)
