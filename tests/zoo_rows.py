"""Every row op (reductions, norms) once or more, on odd sizes, every kind of axis set, a
non-contiguous input, and chains that must fuse. Compared with eager in test_rows.py."""
import torch
import torch.nn.functional as F

A = torch.ops.aten


def _bn_train(t):
    out = A._native_batch_norm_legit_functional.default(t["z"], t["w6"], t["b6"], t["rm6"], t["rv6"],
                                                        True, 0.1, 1e-5)
    return tuple(out)


# registry target -> fn(inputs) -> tensor or tuple of tensors
CASES = {
    "aten.sum.dim_IntList": lambda t: (A.sum.dim_IntList(t["x"], [1]), A.sum.dim_IntList(t["x"], [0, 2], True),
                                       A.sum.dim_IntList(t["xt"], [2])),
    "aten.sum.default": lambda t: A.sum.default(t["x"]),
    "aten.mean.dim": lambda t: (A.mean.dim(t["x"], [-1], True), A.mean.dim(t["xt"], [0, 1])),
    "aten.mean.default": lambda t: A.mean.default(t["xt"]),
    "aten.prod.dim_int": lambda t: A.prod.dim_int(t["x"] * 0.1 + 1, 1),
    "aten.prod.default": lambda t: A.prod.default(t["x"][0] * 0.05 + 1),
    "aten.amax.default": lambda t: (A.amax.default(t["x"], [0, 2]), A.amax.default(t["xt"], [1], True)),
    "aten.amin.default": lambda t: A.amin.default(t["x"], [1], True),
    "aten.max.default": lambda t: A.max.default(t["xt"]),      # torch.max(x): every element
    "aten.min.default": lambda t: A.min.default(t["x"]),
    # the values alone too (the index not folded: codegen.rows._combine)
    "aten.max.dim": lambda t: tuple(A.max.dim(t["x"], 2)) + (A.max.dim(t["xt"], 1)[0],),
    "aten.min.dim": lambda t: tuple(A.min.dim(t["xt"], 0, True)) + (A.min.dim(t["x"], 1)[0],),
    "aten.argmax.default": lambda t: (A.argmax.default(t["x"], 1), A.argmax.default(t["x"])),
    "aten.argmin.default": lambda t: A.argmin.default(t["xt"], 2, True),
    "aten.logsumexp.default": lambda t: A.logsumexp.default(t["x"] * 3, [1, 2]),
    "aten.var.dim": lambda t: A.var.dim(t["x"], [2], True, False),
    "aten.var.correction": lambda t: A.var.correction(t["xt"], [1], correction=0, keepdim=True),
    "aten.var_mean.correction": lambda t: tuple(A.var_mean.correction(t["x"], [0, 2], correction=1)),
    "aten.std.dim": lambda t: A.std.dim(t["x"], [0], False, False),
    "aten.std.correction": lambda t: A.std.correction(t["x"], None, correction=1),
    "aten.linalg_vector_norm.default": lambda t: tuple(
        A.linalg_vector_norm.default(t["x"], p, [2]) for p in (2, 1, float("inf"), 3.0, 0)),
    "aten.softmax.int": lambda t: A.softmax.int(t["x"] * 2, 1),
    "aten._softmax.default": lambda t: A._softmax.default(t["xt"], -1, False),
    "aten.log_softmax.int": lambda t: A.log_softmax.int(t["x"], 0),
    "aten._log_softmax.default": lambda t: A._log_softmax.default(t["xt"], 2, False),
    "aten.layer_norm.default": lambda t: (A.layer_norm.default(t["z"], [5, 7], t["w57"], t["b57"], 1e-5),
                                          A.layer_norm.default(t["x"], [9])),
    "aten.rms_norm.default": lambda t: A.rms_norm.default(t["x"], [9], t["w9"]),
    "aten.group_norm.default": lambda t: A.group_norm.default(t["z"], 3, t["w6"], t["b6"], 1e-5),
    # its statistics too: mean and rstd per (sample, group), row results over the grouped view
    "aten.native_group_norm.default": lambda t: tuple(A.native_group_norm.default(t["z"], t["w6"], t["b6"], 3, 6, 35,
                                                                                3, 1e-5)),
    "aten.instance_norm.default": lambda t: A.instance_norm.default(t["z"], None, None, None, None, True,
                                                                    0.1, 1e-5, False),
    "aten._native_batch_norm_legit_functional.default": _bn_train,
    "aten.mse_loss.default": lambda t: (A.mse_loss.default(t["x"], t["xt"], 1), A.mse_loss.default(t["x"], t["xt"], 2)),
    "aten.l1_loss.default": lambda t: A.l1_loss.default(t["x"], t["xt"], 1),
    "aten.smooth_l1_loss.default": lambda t: (A.smooth_l1_loss.default(t["x"], t["xt"], 1, 0.5),
                                              A.smooth_l1_loss.default(t["x"], t["xt"], 2, 0.0)),
    "aten.huber_loss.default": lambda t: A.huber_loss.default(t["x"], t["xt"], 1, 0.7),
    "aten.kl_div.default": lambda t: (A.kl_div.default(t["x"], torch.relu(t["xt"]), 1),   # zeros: xlogy
                                      A.kl_div.default(t["x"], t["xt"] * 0.1, 2, log_target=True)),
    "aten.hinge_embedding_loss.default": lambda t: A.hinge_embedding_loss.default(t["x"], torch.sign(t["xt"]), 0.8, 1),
    "aten.cosine_similarity.default": lambda t: (A.cosine_similarity.default(t["x"], t["xt"], 1, 1e-8),
                                                 A.cosine_similarity.default(t["x"], t["xt"], -1, 1e-8)),
    "aten.cross_entropy_loss.default": lambda t: (
        F.cross_entropy(t["x2"], t["tg"]),                                   # one target ignored (-100)
        F.cross_entropy(t["x2"], t["tg"], reduction="sum", label_smoothing=0.1),
        F.cross_entropy(t["x2"], t["tg"], reduction="none"),
        F.cross_entropy(t["x"], t["tg3"], ignore_index=2, label_smoothing=0.2)),   # (N, C, d): classes in dim 1
    "aten.nll_loss_nd.default": lambda t: (
        F.nll_loss(torch.log_softmax(t["x2"] / 0.7, -1), t["tg"]),
        F.nll_loss(t["x2"], t["tg"], reduction="none"), F.nll_loss(t["x"], t["tg3"], reduction="sum")),
    "aten.pairwise_distance.default": lambda t: (F.pairwise_distance(t["x"], t["xt"]),
                                                 F.pairwise_distance(t["x"], t["xt"], 1.0, 1e-3, True),
                                                 F.pairwise_distance(t["x"], t["xt"], 3.0)),
    "aten.triplet_margin_loss.default": lambda t: (
        F.triplet_margin_loss(t["x2"], t["x2"] * 0.5 + 0.1, -t["x2"] * 0.3, margin=2.0),
        F.triplet_margin_loss(t["x"], t["xt"], t["x"] * 0.5, margin=0.5, p=1, swap=True, reduction="sum"),
        F.triplet_margin_loss(t["x2"], t["x2"].flip(0), t["x2"] * 2, reduction="none")),
    "aten._native_batch_norm_legit_no_training.default": lambda t: A._native_batch_norm_legit_no_training.default(
        t["z"], t["w6"], t["b6"], t["b6"], t["rv6"], 0.1, 1e-5)[0],
}


def _softmax_by_hand(t):
    x = t["x"]
    e = torch.exp(x - x.amax(dim=2, keepdim=True))
    return e / e.sum(dim=2, keepdim=True)


# chains that must become exactly one generated kernel
CHAINS = {
    "prologue_mean": lambda t: torch.relu(t["x"] * 2 - 0.5).mean(dim=1),
    "softmax_by_hand": _softmax_by_hand,
    "sum_relu_scale_rows": lambda t: torch.relu(t["x"].sum(dim=2, keepdim=True)) * t["x"],
    "gemm_style_tail": lambda t: torch.relu(torch.logsumexp(
        t["x"].sum(dim=2, keepdim=True).amax(dim=2, keepdim=True), dim=2, keepdim=True)),
    "layer_norm_gelu": lambda t: torch.nn.functional.gelu(A.layer_norm.default(t["x"], [9])),
}


def _frobenius_normalize(x):
    return x / torch.norm(x)


def _l1_normalize(x, dim):
    return x / x.abs().sum(dim, keepdim=True)


# long rows of an odd length, read by two passes: the resident layout's scalar path (test_rows)
ODD = {"split_group_norm_odd": lambda t: F.group_norm(t["xl"][:, :19998].reshape(3, 2, 9999), 1),
       # rows of 1500 along dim 1 (the outer schedule), read by two passes: held in registers by
       # 64 threads a row where the re-read input is large (codegen.rows.RESIDENT_MIN_BYTES)
       "outer_l1_normalize": lambda t: _l1_normalize(t["xl"][:, :15000].reshape(3, 1500, 10), 1),
       # rows too long to hold (codegen.rows, streamed rows): each block holds a chunk, the rest is
       # read again in items; one row of an odd length (the scalar path), and two rows of a softmax
       # (two statistics passes, then the output)
       "streamed_frobenius": lambda t: _frobenius_normalize(t["xh"][:, :1048577]),
       "streamed_softmax": lambda t: torch.softmax(t["xh"], -1)}

# few long rows: each row split over several blocks (plan_rows.splits_for)
SPLIT = {
    "split_sum_all": lambda t: t["xl"].sum(),
    "split_softmax": lambda t: torch.softmax(t["xl"], -1),
    "split_var": lambda t: t["xl"].var(-1),
    "split_argmax": lambda t: t["xl"].argmax(-1),
    "split_layer_norm": lambda t: A.layer_norm.default(t["xl"], [20000]),
    "split_logsumexp_all": lambda t: torch.logsumexp(t["xl"], [0, 1]),
    "split_outer_sum": lambda t: t["xlt"].sum(0),
    "split_outer_softmax": lambda t: torch.softmax(t["xlt"], 0),
    # 40 rows side by side (a channels-last batch norm's channels): one tile of all of them
    # (plan_rows.outer_rows_per_block), its warps' steps reading whole rows one after the other
    "split_outer_sum_40": lambda t: t["xc"].sum(0),
    "split_bn_train": lambda t: tuple(A._native_batch_norm_legit_functional.default(
        t["zl"], t["w3"], t["b3"], t["rm3"], t["rv3"], True, 0.1, 1e-5)),
}


# rows whose inner dim 4 divides: the vector path (4 elements per access) and the row cache
# (inputs two passes read, kept in registers); `sv` has stride 0 along the inner reduced dim
# (one value for a pack)
VECTOR = {
    "vec_softmax": lambda t: torch.softmax(t["xv"], -1),
    "vec_layer_norm_affine": lambda t: F.layer_norm(t["xv"], [64], t["wv"], t["bv"]),
    "vec_broadcast_logsumexp": lambda t: torch.logsumexp(t["xv"] * t["sv"], dim=(1, 2)),
    "vec_argmax": lambda t: A.argmax.default(t["xv"] * 2, -1),
    "vec_long_rows_log_softmax": lambda t: F.log_softmax(t["xw"] - 0.5, -1),
    "vec_long_rows_mean": lambda t: (t["xw"] * 3).mean(-1),
    "vec_split_rms": lambda t: t["xl"] * torch.rsqrt((t["xl"] * t["xl"]).mean(-1, keepdim=True) + 1e-6),
    # rows over pixels whose width 4 does not divide: (height, width) walked as one run
    "vec_merged_group_norm": lambda t: F.group_norm(t["xg"], 3, t["w6"], t["b6"]),
    "vec_merged_scaled_mean": lambda t: (t["xg"] * t["sg"]).mean((2, 3)),
    # a causal-mask softmax: xw's rows cached in registers, the small bool mask read again per pass
    "vec_masked_softmax": lambda t: torch.softmax(t["xw"].masked_fill(t["mw"], float("-inf")), -1),
}


class RowZoo(torch.nn.Module):
    def __init__(self, cases):
        super().__init__()
        self.cases = cases

    def forward(self, x, xt, z, w57, b57, w9, w6, b6, rm6, rv6, xl, xlt, zl, w3, b3, rm3, rv3, x2, tg, tg3,
                xv, wv, bv, sv, xw, xg, sg, mw, xh, xc):
        t = dict(x=x, xt=xt, z=z, w57=w57, b57=b57, w9=w9, w6=w6, b6=b6, rm6=rm6, rv6=rv6,
                 xl=xl, xlt=xlt, zl=zl, w3=w3, b3=b3, rm3=rm3, rv3=rv3, x2=x2, tg=tg, tg3=tg3,
                 xv=xv, wv=wv, bv=bv, sv=sv, xw=xw, xg=xg, sg=sg, mw=mw, xh=xh, xc=xc)
        out = []
        for fn in self.cases.values():
            r = fn(t)
            # `+ 1` fuses into each kernel: the planner leaves some ops to eager when alone
            out.extend(v + 1 for v in (r if isinstance(r, tuple) else (r,)))
        return tuple(out)


def row_inputs(seed: int, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 7, 9, generator=g)
    xt = torch.randn(9, 5, 7, generator=g).permute(1, 2, 0)      # non-contiguous (5, 7, 9)
    z = torch.randn(3, 6, 5, 7, generator=g) * 2 + 0.5
    w57, b57 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    w9 = torch.randn(9, generator=g)
    w6, b6 = torch.randn(6, generator=g), torch.randn(6, generator=g)
    rm6, rv6 = torch.randn(6, generator=g), torch.rand(6, generator=g) + 0.5
    xl, xlt = torch.randn(3, 20000, generator=g), torch.randn(20000, 3, generator=g)
    zl = torch.randn(4, 3, 50, 50, generator=g) * 2 + 0.5
    w3, b3, rm3 = torch.randn(3, generator=g), torch.randn(3, generator=g), torch.randn(3, generator=g)
    rv3 = torch.rand(3, generator=g) + 0.5
    x2 = torch.randn(6, 11, generator=g) * 2                      # logits: 6 rows of 11 classes
    tg = torch.randint(0, 11, (6,), generator=g)
    tg[4] = -100                                                   # ignore_index
    tg3 = torch.randint(0, 7, (5, 9), generator=g)                 # targets of x as (N=5, C=7, d=9)
    xv, wv, bv = torch.randn(6, 8, 64, generator=g) * 3, torch.randn(64, generator=g), torch.randn(64, generator=g)
    sv = torch.randn(8, 1, generator=g)                            # varies along dim 1 of xv only
    xw = torch.randn(300, 1024, generator=g) * 2                   # many rows of 1024: a block each
    xg = torch.randn(2, 6, 6, 10, generator=g) * 2 + 1             # 6 x 10 pixels: a run of 60
    sg = torch.randn(6, 1, 1, generator=g)                         # one value per channel (and pack)
    mw = torch.rand(1024, generator=g) < 0.3                       # masked columns of xw's rows
    xh = torch.randn(2, 1048580, generator=g)                      # rows beyond 64 held chunks of 16384
    xc = torch.randn(8200, 40, generator=g)                        # 40 long rows along dim 0 (split)
    return [v.to(device) for v in (x, xt, z, w57, b57, w9, w6, b6, rm6, rv6, xl, xlt, zl, w3, b3, rm3, rv3,
                                   x2, tg, tg3, xv, wv, bv, sv, xw, xg, sg, mw, xh, xc)]
