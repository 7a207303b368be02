/*
 * SIMULATOR (ascend-fa): prototype of FlashAttentionScoreGrad. The simulated repository carries the operator so that
 * `build.sh --ops=flash_attention_score_grad` is accepted; only FlashAttentionScore has a simulated kernel and aclnn API.
 */
#include "op_def.h"

static const ascendfa_sim_op_def flash_attention_score_grad_def = {
    .name = "FlashAttentionScoreGrad",
    .aclnn = "aclnnFlashAttentionScoreGrad",
    .inputs = "query,key,value",
    .outputs = "attention_out",
    .socs = OP_ADD_CONFIG("ascend910b")
            OP_ADD_CONFIG("ascend910_93")
            OP_ADD_CONFIG("ascend950"),
};
OP_DEF_REGISTER(flash_attention_score_grad_def)
