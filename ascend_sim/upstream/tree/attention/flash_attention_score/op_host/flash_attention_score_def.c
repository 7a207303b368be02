/*
 * SIMULATOR (ascend-fa): prototype of FlashAttentionScore, compiled into libcust_opsproto_rt2.0.so.
 * The SoCs below decide whether build.sh builds the op for a given --soc (FlashAttentionScore runs on
 * Atlas A2/A3 training and Ascend 950, not on 310P or the first-generation Ascend910).
 */
#include "op_def.h"

static const ascendfa_sim_op_def flash_attention_score_def = {
    .name = "FlashAttentionScore",
    .aclnn = "aclnnFlashAttentionScore",
    .inputs = "query,key,value,real_shift,drop_mask,padding_mask,atten_mask,prefix,actual_seq_qlen,actual_seq_kvlen",
    .outputs = "softmax_max,softmax_sum,softmax_out,attention_out",
    .socs = OP_ADD_CONFIG("ascend910b")
            OP_ADD_CONFIG("ascend910_93")
            OP_ADD_CONFIG("ascend950"),
};
OP_DEF_REGISTER(flash_attention_score_def)
