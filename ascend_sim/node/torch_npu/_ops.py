"""SIMULATOR (ascend-fa): the FlashAttention operators of the torch_npu stand-in.

``npu_fusion_attention`` has the exact torch_npu 2.14 schema. It never computes attention itself: it
converts the inputs to float32 contiguous BNSD buffers and calls ``aclnnFlashAttentionScore`` of the library
op-plugin's lookup picks (``_aclnn``: an ``ASCEND_CUSTOM_OPP_PATH`` or config.ini vendor's libcust_opapi.so,
else CANN's built-in libopapi.so from CANN 8.5) through ctypes, so the numbers come from that library, and every
deployment fault (no package, corrupt library, wrong --soc, bad card) shows up here the way it would on a real
host - including a package that is silently not used because CANN's own kernel served the call.
"""

from __future__ import annotations

import ctypes
import os

import torch

from . import _aclnn, _host
from . import npu as _npu

INT_MAX = 2147483647
_LAYOUTS = ("BSH", "SBH", "BSND", "BNSD", "TND")
_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_API = "aclnnFlashAttentionScore"
# SIMULATED fault "wrong-results" (host.json faults): added to every output element of the affected package.
WRONG_RESULTS_OFFSET = 0.25


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise RuntimeError(msg)


def _split_heads(t: torch.Tensor, layout: str, heads: int | None, head_dim: int | None, name: str) -> torch.Tensor:
    """[.. layout ..] -> [B, N, S, D]; for BSH/SBH either heads or head_dim must be given."""
    if layout == "BNSD":
        _check(t.dim() == 4, f"{name} must be 4-dimensional for layout BNSD, but got {t.dim()} dimensions")
        return t
    if layout == "BSND":
        _check(t.dim() == 4, f"{name} must be 4-dimensional for layout BSND, but got {t.dim()} dimensions")
        return t.permute(0, 2, 1, 3)
    _check(t.dim() == 3, f"{name} must be 3-dimensional for layout {layout}, but got {t.dim()} dimensions")
    h = t.shape[2]
    if heads is None:
        _check(
            head_dim is not None and head_dim > 0 and h % head_dim == 0,
            f"hidden size {h} of {name} is not a multiple of the head dim {head_dim}",
        )
        heads = h // head_dim
    _check(heads > 0 and h % heads == 0, f"hidden size {h} of {name} is not a multiple of head_num {heads}")
    d = h // heads
    if layout == "BSH":
        return t.reshape(t.shape[0], t.shape[1], heads, d).permute(0, 2, 1, 3)
    return t.reshape(t.shape[0], t.shape[1], heads, d).permute(1, 2, 0, 3)  # SBH


def _merge_heads(o: torch.Tensor, layout: str) -> torch.Tensor:
    """[B, N, S, D] -> layout."""
    b, n, s, d = o.shape
    if layout == "BNSD":
        return o
    if layout == "BSND":
        return o.permute(0, 2, 1, 3)
    if layout == "BSH":
        return o.permute(0, 2, 1, 3).reshape(b, s, n * d)
    return o.permute(2, 0, 1, 3).reshape(s, b, n * d)  # SBH


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _check_device_and_package() -> _aclnn.OpPackage:
    """The library op-plugin's lookup picks (custom, vendor, then CANN's built-in; _aclnn). No SoC check here:
    a package without kernel binaries for this device's SoC fails inside its own aclnn call ("Cannot find bin
    of op FlashAttentionScore", ascend-facts 9.5), as on a real node."""
    index = _npu.current_device()
    _npu.check_device(index)
    return _aclnn.find_package(_API)


def _run_kernel(pkg, q, k, v, scale, causal, pre, nxt, mask4=None, qlen=None, kvlen=None):
    """q/k/v: float32 contiguous BNSD. Returns (out, softmax_max, softmax_sum) as float32 BNSD tensors."""
    b, nq, sq, d = q.shape
    nkv, skv, dv = k.shape[1], k.shape[2], v.shape[3]
    out = torch.empty((b, nq, sq, dv), dtype=torch.float32)
    smax = torch.empty((b, nq, sq), dtype=torch.float32)
    ssum = torch.empty((b, nq, sq), dtype=torch.float32)
    p = _aclnn.FaParams()
    p.abi_version = _aclnn.ABI_VERSION
    p.causal = causal
    p.batch, p.heads_q, p.heads_kv, p.seq_q, p.seq_kv, p.head_dim, p.head_dim_v = b, nq, nkv, sq, skv, d, dv
    p.scale = float(scale)
    p.pre_tokens, p.next_tokens = int(pre), int(nxt)
    p.query, p.key, p.value = q.data_ptr(), k.data_ptr(), v.data_ptr()
    if mask4 is not None:
        p.atten_mask = mask4.data_ptr()
        p.mask_stride_b, p.mask_stride_n, p.mask_stride_s = mask4.stride(0), mask4.stride(1), mask4.stride(2)
    p.actual_seq_qlen = _ptr(qlen)
    p.actual_seq_kvlen = _ptr(kvlen)
    p.out, p.softmax_max, p.softmax_sum = out.data_ptr(), smax.data_ptr(), ssum.data_ptr()

    ws_size = ctypes.c_uint64(0)
    executor = ctypes.c_void_p()
    get_ws = getattr(pkg.lib, _API + "GetWorkspaceSize")
    rc = get_ws(ctypes.byref(p), ctypes.byref(ws_size), ctypes.byref(executor))
    if rc != 0:
        raise RuntimeError(f"call {_API} failed, detail:{pkg.last_error()} (GetWorkspaceSize={rc})")
    workspace = torch.empty(max(1, (ws_size.value + 3) // 4), dtype=torch.float32)
    nbytes = sum(t.numel() * t.element_size() for t in (q, k, v, out, smax, ssum, workspace))
    _npu._track_alloc(nbytes)
    try:
        rc = getattr(pkg.lib, _API)(workspace.data_ptr(), ws_size.value, executor, None)
    finally:
        _npu._track_free(nbytes)
    if rc != 0:
        raise RuntimeError(f"call {_API} failed, detail:{pkg.last_error()} (error code {rc})")
    if pkg.kind != "builtin" and _host.wrong_results(pkg.version):
        out.add_(WRONG_RESULTS_OFFSET)  # SIMULATED fault: the kernel "succeeds" with wrong numbers
    return out, smax, ssum


def _mask_bnss(atten_mask: torch.Tensor, b: int, n: int, sq: int, skv: int) -> torch.Tensor:
    _check(
        atten_mask.dtype in (torch.bool, torch.uint8),
        f"atten_mask must be bool or uint8 (True/1 = masked out), but got {atten_mask.dtype}",
    )
    m = atten_mask.to(torch.uint8)
    while m.dim() < 4:
        m = m.unsqueeze(0)
    _check(m.dim() == 4, f"atten_mask must have 2 to 4 dimensions, but got {atten_mask.dim()}")
    m = m.contiguous()
    try:
        return m.expand(b, n, sq, skv)
    except RuntimeError:
        raise RuntimeError(
            f"atten_mask of shape {tuple(atten_mask.shape)} cannot be broadcast to [B, N, Sq, Skv] = [{b}, {n}, {sq}, {skv}]"
        ) from None


def _tiling_error(reason: str) -> RuntimeError:
    """How the op rejects parameters in aclnnFlashAttentionScoreGetWorkspaceSize (tiling), CANN style."""
    return RuntimeError(f"call {_API} failed, detail:EZ9999: Inner Error!\n"
                        f"EZ9999: [PID: {os.getpid()}] FlashAttentionScore tiling failed: {reason}")


COMPRESSED_MASK = (2048, 2048)


def _mode(sparse_mode: int, pre: int, nxt: int, sq: int, skv: int, atten_mask, varlen: bool = False):
    """(causal, pre_tokens, next_tokens, use_mask) of the kernel for npu_fusion_attention's sparse_mode.

    Source: Ascend/op-plugin docs/context/torch_npu-npu_fusion_attention.md, parameter table 1 (sparse_mode),
    section 约束说明 ("sparse_mode取值说明") and section 参考资源 (one paragraph per mode).
    """
    if sparse_mode not in range(9):
        raise _tiling_error(f"sparse_mode {sparse_mode} is invalid, it should be in [0, 8]")
    if sparse_mode in (7, 8) and not varlen:
        raise _tiling_error(f"sparse_mode {sparse_mode} is only supported in the varlen (TND) scene")
    if sparse_mode == 5 and varlen:
        raise _tiling_error("sparse_mode 5 (prefix, uncompressed) is not supported in the varlen (TND) scene")
    if atten_mask is None:
        # 约束说明: "当atten_mask输入为None时，sparse_mode，pre_tockens，next_tockens参数不生效，固定为全计算"
        # (no mask: sparse_mode, pre_tockens and next_tockens do not apply; full attention is computed).
        return 0, INT_MAX, INT_MAX, False
    if sparse_mode >= 5:
        raise RuntimeError(f"sparse_mode {sparse_mode} (prefix / varlen split) is not simulated (0-4 are)")
    compressed = tuple(atten_mask.shape[-2:]) == COMPRESSED_MASK and atten_mask.numel() == 2048 * 2048
    if sparse_mode in (2, 3, 4) and not compressed:
        # 参考资源, modes 2/3/4: atten_mask is the optimised compressed lower-triangular matrix (2048*2048).
        raise _tiling_error(f"sparse_mode {sparse_mode} needs the compressed atten_mask of shape [2048, 2048], "
                            f"got {list(atten_mask.shape)}")
    if sparse_mode == 0:
        _check_band(pre, nxt, sq, skv)
        return 0, pre, nxt, True
    if sparse_mode == 1:
        return 0, INT_MAX, INT_MAX, True   # allMask: pre/next ignored
    if sparse_mode == 2:
        return 1, INT_MAX, INT_MAX, False  # leftUpCausal: pre/next ignored
    if sparse_mode == 3:
        return 2, INT_MAX, INT_MAX, False  # rightDownCausal: pre/next ignored
    # 4, band: pre/next counted from the bottom-right corner; "pre_tockens和next_tockens之间需要有交集"
    if pre + nxt < 0:
        raise _tiling_error(f"sparse_mode 4 needs pre_tokens[{pre}] + next_tokens[{nxt}] >= 0 (the band is empty)")
    off = skv - sq
    return 0, pre - off, nxt + off, False


def _check_band(pre: int, nxt: int, sq: int, skv: int) -> None:
    """参考资源, sparse_mode 0: a negative next_tockens needs pre_tockens >= |next_tockens| and |next_tockens| < Skv;
    a negative pre_tockens needs next_tockens >= |pre_tockens| and |pre_tockens| < Sq."""
    if nxt < 0 and (pre < -nxt or -nxt >= skv):
        raise _tiling_error(f"next_tokens[{nxt}] is negative: pre_tokens[{pre}] must be >= {-nxt} and "
                            f"|next_tokens| < Skv[{skv}]")
    if pre < 0 and (nxt < -pre or -pre >= sq):
        raise _tiling_error(f"pre_tokens[{pre}] is negative: next_tokens[{nxt}] must be >= {-pre} and "
                            f"|pre_tokens| < Sq[{sq}]")


def _pfa_mode(sparse_mode: int, pre: int, nxt: int, sq: int, skv: int, has_mask: bool):
    """(causal, pre_tokens, next_tokens, use_mask) for npu_prompt_flash_attention (unchanged simulation)."""
    if sparse_mode == 0:
        return 0, pre, nxt, has_mask
    if sparse_mode == 1:
        _check(has_mask, "sparse_mode 1 (allMask) needs atten_mask")
        return 0, INT_MAX, INT_MAX, True
    if sparse_mode == 2:
        return 1, INT_MAX, INT_MAX, False
    if sparse_mode == 3:
        return 2, INT_MAX, INT_MAX, False
    if sparse_mode == 4:
        off = skv - sq
        return 0, pre - off, nxt + off, False
    raise RuntimeError(f"sparse_mode {sparse_mode} is not supported by the simulated PromptFlashAttention (0-4)")


def npu_fusion_attention(
    query,
    key,
    value,
    head_num,
    input_layout,
    pse=None,
    padding_mask=None,
    atten_mask=None,
    scale=1.0,
    keep_prob=1.0,
    pre_tockens=2147483647,
    next_tockens=2147483647,
    inner_precise=0,
    prefix=None,
    actual_seq_qlen=None,
    actual_seq_kvlen=None,
    sparse_mode=0,
    gen_mask_parallel=True,
    sync=False,
    softmax_layout="",
    sink=None,
    dropout_mask=None,
    seed=0,
    offset=0,
):
    """FlashAttention forward through the installed aclnnFlashAttentionScore (SIMULATOR).

    Returns (attention_out, softmax_max, softmax_sum, softmax_out, seed, offset, numels) like torch_npu;
    attention_out has the input layout and dtype.
    """
    layout = str(input_layout).upper()
    _check(layout in _LAYOUTS, f"The input_layout should be BSH/SBH/BNSD/BSND/TND(case-insensitive), but got {input_layout}")
    for name, t in (("query", query), ("key", key), ("value", value)):
        _check(isinstance(t, torch.Tensor), f"{name} must be a Tensor")
        _check(t.dtype in _DTYPES, f"{name} dtype should be float16, bfloat16 or float32, but got {t.dtype}")
    _check(query.dtype == key.dtype == value.dtype, "query, key and value must have the same dtype")
    _check(isinstance(head_num, int) and head_num > 0, f"head_num must be a positive int, got {head_num!r}")
    _check(pse is None, "pse is not supported by the simulated FlashAttentionScore")
    _check(padding_mask is None, "padding_mask is reserved and not supported")
    _check(float(keep_prob) == 1.0, "keep_prob < 1 (dropout) is not supported by the simulated FlashAttentionScore")
    _check(prefix is None, "prefix (sparse_mode 5) is not supported by the simulated FlashAttentionScore")

    pkg = _check_device_and_package()
    out_dtype = query.dtype

    if layout == "TND":
        out, smax, ssum = _tnd(
            pkg,
            query,
            key,
            value,
            head_num,
            atten_mask,
            scale,
            pre_tockens,
            next_tockens,
            actual_seq_qlen,
            actual_seq_kvlen,
            sparse_mode,
        )
        numels = 0
        return (out.to(out_dtype), smax, ssum, torch.empty(0, dtype=out_dtype), int(seed), int(offset), numels)

    q = _split_heads(query, layout, head_num, None, "query")
    d = q.shape[3]
    _check(q.shape[1] == head_num, f"head_num {head_num} does not match the N axis ({q.shape[1]}) of query")
    k = _split_heads(key, layout, None, d, "key")
    v = _split_heads(value, layout, k.shape[1] if layout in ("BSH", "SBH") else None, None, "value")
    b, nq, sq, _ = q.shape
    nkv, skv = k.shape[1], k.shape[2]
    _check(k.shape[0] == b and v.shape[0] == b, "query, key and value must have the same batch size")
    _check(k.shape[3] == d, f"D of key ({k.shape[3]}) must equal D of query ({d})")
    _check(v.shape[1] == nkv and v.shape[2] == skv, "key and value must have the same N and S")

    causal, pre, nxt, use_mask = _mode(int(sparse_mode), int(pre_tockens), int(next_tockens), sq, skv, atten_mask)
    mask4 = _mask_bnss(atten_mask, b, nq, sq, skv) if use_mask else None
    q32 = q.to(torch.float32).contiguous()
    k32 = k.to(torch.float32).contiguous()
    v32 = v.to(torch.float32).contiguous()
    out, smax, ssum = _run_kernel(pkg, q32, k32, v32, scale, causal, pre, nxt, mask4)
    result = _merge_heads(out, layout).to(out_dtype).contiguous()
    smax8 = smax.unsqueeze(-1).expand(b, nq, sq, 8).contiguous()
    ssum8 = ssum.unsqueeze(-1).expand(b, nq, sq, 8).contiguous()
    return (result, smax8, ssum8, torch.empty(0, dtype=out_dtype), int(seed), int(offset), 0)


def _tnd(pkg, query, key, value, head_num, atten_mask, scale, pre, nxt, qcum, kvcum, sparse_mode):
    """Varlen layout [T, N, D]: actual_seq_qlen/kvlen are cumulative end offsets per sequence."""
    _check(query.dim() == 3 and key.dim() == 3 and value.dim() == 3, "TND inputs must be 3-dimensional")
    _check(qcum is not None and kvcum is not None, "layout TND needs actual_seq_qlen and actual_seq_kvlen")
    qcum = [int(x) for x in qcum]
    kvcum = [int(x) for x in kvcum]
    _check(len(qcum) == len(kvcum) and len(qcum) > 0, "actual_seq_qlen and actual_seq_kvlen must have the same, non-zero length")
    _check(
        qcum[-1] == query.shape[0] and kvcum[-1] == key.shape[0],
        "the last actual_seq_qlen / actual_seq_kvlen must equal T of query / key",
    )
    _check(query.shape[1] == head_num, f"head_num {head_num} does not match the N axis ({query.shape[1]}) of query")
    outs, maxes, sums = [], [], []
    q0 = kv0 = 0
    for q1, kv1 in zip(qcum, kvcum, strict=True):
        _check(q1 >= q0 and kv1 >= kv0, "actual_seq_qlen and actual_seq_kvlen must be non-decreasing")
        sq, skv = q1 - q0, kv1 - kv0
        q = query[q0:q1].permute(1, 0, 2).unsqueeze(0).to(torch.float32).contiguous()
        k = key[kv0:kv1].permute(1, 0, 2).unsqueeze(0).to(torch.float32).contiguous()
        v = value[kv0:kv1].permute(1, 0, 2).unsqueeze(0).to(torch.float32).contiguous()
        if sq == 0:
            q0, kv0 = q1, kv1
            continue
        if skv == 0:
            outs.append(torch.zeros(sq, query.shape[1], value.shape[2]))
            maxes.append(torch.full((sq, query.shape[1]), float("-inf")))
            sums.append(torch.zeros(sq, query.shape[1]))
            q0, kv0 = q1, kv1
            continue
        causal, p, n, use_mask = _mode(int(sparse_mode), int(pre), int(nxt), sq, skv, atten_mask, varlen=True)
        mask4 = None
        if use_mask:
            mask4 = _mask_bnss(atten_mask[..., :sq, :skv], 1, head_num, sq, skv)
        out, smax, ssum = _run_kernel(pkg, q, k, v, scale, causal, p, n, mask4)
        outs.append(out[0].permute(1, 0, 2))
        maxes.append(smax[0].permute(1, 0))
        sums.append(ssum[0].permute(1, 0))
        q0, kv0 = q1, kv1
    out = torch.cat(outs, 0) if outs else torch.empty(0, query.shape[1], value.shape[2])
    smax = torch.cat(maxes, 0).unsqueeze(-1).expand(-1, -1, 8).contiguous()
    ssum = torch.cat(sums, 0).unsqueeze(-1).expand(-1, -1, 8).contiguous()
    return out, smax, ssum


def npu_prompt_flash_attention(
    query,
    key,
    value,
    *,
    pse_shift=None,
    padding_mask=None,
    atten_mask=None,
    actual_seq_lengths=None,
    deq_scale1=None,
    quant_scale1=None,
    deq_scale2=None,
    quant_scale2=None,
    quant_offset2=None,
    num_heads=1,
    scale_value=1.0,
    pre_tokens=2147483647,
    next_tokens=0,
    input_layout="BSH",
    num_key_value_heads=0,
    actual_seq_lengths_kv=None,
    sparse_mode=0,
):
    """Inference FlashAttention (SIMULATOR): runs on the same installed aclnnFlashAttentionScore.

    The real op calls aclnnPromptFlashAttentionV3 from CANN's built-in operators; the simulator's built-in
    library has FlashAttentionScore only, so this runs on whatever serves aclnnFlashAttentionScore.
    Layouts BSH, BSND, BNSD; quantisation and
    pse_shift are not simulated.
    """
    layout = str(input_layout).upper()
    _check(layout in ("BSH", "BSND", "BNSD"), f"input_layout {input_layout} is not supported by the simulator")
    _check(pse_shift is None and padding_mask is None, "pse_shift / padding_mask are not simulated")
    _check(
        all(x is None for x in (deq_scale1, quant_scale1, deq_scale2, quant_scale2, quant_offset2)),
        "quantisation parameters are not simulated",
    )
    pkg = _check_device_and_package()
    out_dtype = query.dtype
    q = _split_heads(query, layout, num_heads, None, "query")
    d = q.shape[3]
    k = _split_heads(key, layout, num_key_value_heads or None, None if num_key_value_heads else d, "key")
    v = _split_heads(value, layout, k.shape[1] if layout == "BSH" else None, None, "value")
    b, nq, sq, _ = q.shape
    skv = k.shape[2]
    causal, pre, nxt, use_mask = _pfa_mode(int(sparse_mode), int(pre_tokens), int(next_tokens), sq, skv,
                                           atten_mask is not None)
    if int(sparse_mode) == 0 and atten_mask is None:
        pre, nxt = INT_MAX, INT_MAX  # without a mask, pre/next tokens do not apply
    mask4 = _mask_bnss(atten_mask, b, nq, sq, skv) if use_mask and atten_mask is not None else None
    qlen = torch.tensor([int(x) for x in actual_seq_lengths], dtype=torch.int64) if actual_seq_lengths else None
    kvlen = torch.tensor([int(x) for x in actual_seq_lengths_kv], dtype=torch.int64) if actual_seq_lengths_kv else None
    out, _, _ = _run_kernel(
        pkg,
        q.to(torch.float32).contiguous(),
        k.to(torch.float32).contiguous(),
        v.to(torch.float32).contiguous(),
        scale_value,
        causal,
        pre,
        nxt,
        mask4,
        qlen,
        kvlen,
    )
    return _merge_heads(out, layout).to(out_dtype).contiguous()
