/*
 * SIMULATOR (ascend-fa): prototype of FusedInferAttentionScore. The simulated repository carries the operator so that
 * `build.sh --ops=fused_infer_attention_score` is accepted; only FlashAttentionScore has a simulated kernel and aclnn API.
 */
#include "op_def.h"

static const ascendfa_sim_op_def fused_infer_attention_score_def = {
    .name = "FusedInferAttentionScore",
    .aclnn = "aclnnFusedInferAttentionScore",
    .inputs = "query,key,value",
    .outputs = "attention_out",
    .socs = OP_ADD_CONFIG("ascend910b")
            OP_ADD_CONFIG("ascend910_93")
            OP_ADD_CONFIG("ascend950")
            OP_ADD_CONFIG("ascend310p"),
};
OP_DEF_REGISTER(fused_infer_attention_score_def)
