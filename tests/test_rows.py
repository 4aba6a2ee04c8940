"""Row ops (reductions, norms) and the chains around them, generated and compared with eager."""
import math
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fuseforge
from fuseforge import ops
from fuseforge.codegen import rows as render_rows
from fuseforge.capture import capture
from fuseforge.plan import plan

from . import zoo
from .outputs import assert_zoo_matches
from .zoo_rows import CASES, CHAINS, ODD, SPLIT, VECTOR, RowZoo, row_inputs

# float32 sums in another order than eager's: a few ulps of the largest partial sum
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def rows():
    model = RowZoo({**CASES, **CHAINS, **SPLIT, **VECTOR})
    return model, fuseforge.compile(model, row_inputs(0))


@pytest.fixture(scope="module")
def resident_rows():
    """The chains, long rows and vector cases with every row that two passes read held on chip
    (codegen.rows' resident layout, and the outer schedule's rows in registers; their thresholds
    lowered to 0, since rows of test size stay in L2), and the outer schedule's partials merged by
    a block per row. Not every registry case: one more build of the whole zoo costs CI a minute."""
    model = RowZoo({**CHAINS, **SPLIT, **VECTOR, **ODD})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(render_rows, "RESIDENT_MIN_BYTES", 0)
        mp.setattr(render_rows, "RESIDENT_MIN_RUN", 0)
        mp.setattr(render_rows, "MERGE_BLOCK_MIN_SPLITS", 0)
        return model, fuseforge.compile(model, row_inputs(0))


def test_every_registry_entry_has_a_case():
    from .test_convs import CASES as CONV_CASES
    from .test_gemm import CASES as GEMM_CASES
    from .test_scans import CASES as SCAN_CASES
    from .test_windows import CASES as WINDOW_CASES
    missing = sorted(set(ops.REGISTRY) - set(zoo.CASES) - set(CASES) - set(WINDOW_CASES) - set(SCAN_CASES) -
                     set(GEMM_CASES) - set(CONV_CASES))
    assert not missing, f"registry ops without a numerical test case: {missing}"


def test_every_row_case_is_generated():
    the_plan = plan(capture(RowZoo(CASES), row_inputs(0)))
    generated = {n.target for k in the_plan.kernels for n in k.nodes}
    externs = sorted({f"{e.node.target}: {e.reason}" for e in the_plan.externs})
    # lowered ops (cross entropy, triplet margin) are generated when what they became is
    lowered = {t for t in CASES if ops.lookup(t).kind == ops.LOWER}
    assert not sorted(set(CASES) - generated - lowered), f"not generated; externs: {externs}"
    row_externs = [e.node.target for e in the_plan.externs
                   if getattr(ops.lookup(e.node.target), "kind", None) in (ops.ROW, ops.LOWER)]
    assert not row_externs, externs


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_chain_is_one_kernel(chain):
    the_plan = plan(capture(RowZoo({chain: CHAINS[chain]}), row_inputs(0)))
    assert not the_plan.externs, [e.node.target for e in the_plan.externs]
    assert len(the_plan.kernels) == 1, [k.name for k in the_plan.kernels]


@pytest.mark.parametrize("case", sorted(SPLIT))
def test_few_long_rows_are_split(case):
    the_plan = plan(capture(RowZoo({case: SPLIT[case]}), row_inputs(0)))
    assert not the_plan.externs, [e.node.target for e in the_plan.externs]
    assert len(the_plan.kernels) == 1 and the_plan.kernels[0].splits > 1, \
        [(k.name, getattr(k, "splits", None)) for k in the_plan.kernels]


def test_outer_split_rows_fit_one_wave():
    """4096 rows of 15876 on the outer schedule (128 tiles of 32 rows): 8 splits, 1024 blocks, which
    an H100 holds at once; 9 (1152) left 96 blocks to run alone after the rest (level2/016)."""
    from fuseforge.plan_rows import OUTER_MIN_CHUNK, OUTER_TARGET_BLOCKS, splits_for
    assert splits_for(128, 15876, OUTER_TARGET_BLOCKS, OUTER_MIN_CHUNK, one_wave=True) == 8
    assert splits_for(128, 15876, OUTER_TARGET_BLOCKS, OUTER_MIN_CHUNK) == 9


def test_vector_path_and_row_cache_are_taken():
    """The VECTOR cases render 4-element accesses, the multi-pass ones a row cache, and a
    broadcast operand one value per pack (what test_rows_match_eager_* then checks)."""
    from fuseforge.plan_rows import RowKernel
    the_plan = plan(capture(RowZoo(VECTOR), row_inputs(0)))
    sources = {k.nodes[0].target + "/" + k.name: render_rows.render(k).shared
               for k in the_plan.kernels if isinstance(k, RowKernel)}
    # siblings over the same rows share a kernel: xv's last dim, xv's last two, xw's rows, xl's split
    # rows, xg's groups, xg's pixels
    assert len(sources) == 6, sorted(sources)
    assert all("elements per access" in s for s in sources.values()), sorted(sources)
    cached = [n for n, s in sources.items() if "cached in registers" in s]
    assert len(cached) == 4, cached          # not the split rows (a launch per pass), not a one-pass mean
    # xw's rows with the mask: the 1024 floats of a row fill the 32 registers, the mask is read again
    [masked] = [s for s in sources.values() if "masked_fill" in s]
    assert re.search(r"rows of in\d+ cached in registers", masked), masked[:400]
    assert any(re.search(r"^\s*float in\d+_c\[PER\];", s, re.M) for s in sources.values()), \
        "no broadcast operand cached as one value per pack"


def _rows_over(shape, axes, strides=None):
    """A stand-in for a row kernel over a float32 tensor of `shape` (contiguous unless `strides`),
    with what render_rows._resident reads, and the bytes of the tensor."""
    st = strides or [math.prod(shape[d + 1:]) for d in range(len(shape))]
    length = math.prod(shape[d] for d in axes)
    k = SimpleNamespace(space=list(shape), axes=list(axes), main="x", strides={"x": st},
                        length=length, rows=math.prod(shape) // length)
    return k, math.prod(shape) * 4


@pytest.mark.parametrize("shape, axes, strides, held", [
    ((16, 64, 256, 256), (2, 3), None, "whole"),     # instance norm, 268 MB (level1/060)
    ((16, 64, 256, 256), (0, 2, 3), None, "whole"),  # batch norm, planes of 65536 (level1/061)
    ((64, 192, 56, 56), (0, 2, 3), None, None),      # batch norm, planes of 3136 (level3/007)
    ((32, 128, 56, 56), (0, 2, 3), None, None),      # 51 MB: L2 holds most of the second read (level3/005)
    # rows beyond 64 chunks, few of them: streamed (bench/session10: 058 0.176 -> 0.164 ms, 064 0.285 -> 0.279)
    ((16, 64, 128, 256), (1, 2, 3), None, "streamed"),       # rows of 2M (level1/058)
    ((16, 64, 256, 256), (0, 1, 2, 3), None, "streamed"),    # one row of 67M (level1/064)
    ((32, 1, 1024, 1100), (1, 2, 3), None, None),            # 32 such rows: beyond RESIDENT_STREAM_MAX_ROWS (not measured)
])
def test_resident_rows_where_measured_faster(shape, axes, strides, held):
    """The thresholds of the resident layout at the sizes they were measured on (bench/session8,
    bench/session10)."""
    k, nbytes = _rows_over(shape, axes, strides)
    got = render_rows._resident(k, "inner", 4, {"x": 16}, [], True, lambda n: nbytes)
    assert (None if got is None else "streamed" if got.item else "whole") == held, got


ZOOS = ["rows", "resident_rows"]   # the fixtures: the row zoo as planned, and with its rows held on chip


@pytest.mark.parametrize("zoo_name", ZOOS)
@pytest.mark.parametrize("seed", [1, 2])
def test_rows_match_eager_on_cpu(request, zoo_name, seed):
    assert_zoo_matches(request.getfixturevalue(zoo_name), row_inputs, seed, RTOL, ATOL)


@pytest.mark.gpu
@pytest.mark.parametrize("zoo_name", ZOOS)
@pytest.mark.parametrize("seed", [1, 2])
def test_rows_match_eager_on_cuda(request, zoo_name, seed):
    assert_zoo_matches(request.getfixturevalue(zoo_name), row_inputs, seed, RTOL, ATOL, "cuda")


def test_resident_rows_are_taken(monkeypatch):
    """Rows that two passes read are held on chip (here at any size): long rows split over
    several blocks that meet between passes (softmax: two statistics passes), the scalar path (a
    group norm over runs of 9999), and rows of one block (a batch norm over 4 x 2500)."""
    from fuseforge.plan_rows import RowKernel
    monkeypatch.setattr(render_rows, "RESIDENT_MIN_BYTES", 0)
    monkeypatch.setattr(render_rows, "RESIDENT_MIN_RUN", 0)
    cases = {n: {**SPLIT, **ODD}[n] for n in ("split_softmax", "split_group_norm_odd", "split_bn_train")}
    the_plan = plan(capture(RowZoo(cases), row_inputs(0)))
    notes = [re.search(r"^//      space.*$", render_rows.render(k).shared, re.M).group(0)
             for k in the_plan.kernels if isinstance(k, RowKernel)]
    assert len(notes) == 3 and all("resident:" in n for n in notes), notes
    softmax, odd, bn = notes
    assert "3 rows of 20000" in softmax and "resident: 2-4 blocks" in softmax, softmax
    assert "resident: 2-4 blocks" in odd and "elements per access" not in odd, odd
    assert "resident: 1 blocks" in bn, bn


def test_streamed_rows_are_taken(monkeypatch):
    """Rows too long for RESIDENT_MAX_SPLITS held chunks, few of them: one launch of every block
    the GPU holds, each holding PER steps, the rest read in items (the statistics passes' items
    fixed per block, the last pass's shared out by the row's counter)."""
    from fuseforge.plan_rows import RowKernel
    monkeypatch.setattr(render_rows, "RESIDENT_MIN_BYTES", 0)
    monkeypatch.setattr(render_rows, "RESIDENT_MIN_RUN", 0)
    cases = {n: ODD[n] for n in ("streamed_frobenius", "streamed_softmax")}
    the_plan = plan(capture(RowZoo(cases), row_inputs(0)))
    sources = [render_rows.render(k) for k in the_plan.kernels if isinstance(k, RowKernel)]
    notes = [re.search(r"^//      space.*$", s.shared, re.M).group(0) for s in sources]
    assert len(notes) == 2 and all("streamed: up to 1024 blocks" in n for n in notes), notes
    frobenius, softmax = sources
    assert "1 rows of 2097154" in notes[0] and "elements per access" not in notes[0], notes[0]
    assert "2 rows of 1048580" in notes[1] and "4 elements per access" in notes[1], notes[1]
    for s in sources:
        assert s.shared.count("ff_items it(") == 1 and "cudaLaunchCooperativeKernel" in s.cuda
    assert softmax.shared.count("i0 += uint32_t(splits)") == 2   # the max, then the sum of exponentials


def test_nll_picks_the_target_alone():
    """nll_loss after log_softmax: the target's log-probability is computed alone from its one
    element once the row's statistics are known (a pick stage), not by a third pass over the row."""
    from fuseforge.plan_rows import RowKernel
    model = RowZoo({"nll": lambda t: F.nll_loss(torch.log_softmax(t["x2"] / 0.7, -1), t["tg"], reduction="none")})
    [k] = [k for k in plan(capture(model, row_inputs(0))).kernels if isinstance(k, RowKernel)]
    shared = render_rows.render(k).shared
    assert "// the element at index in" in shared and "if (active && at >= 0 && at < 11)" in shared, shared[-1500:]
    assert shared.count("team.reduce(") == 2, shared[-1500:]     # the max, the sum of exponentials


def test_row_inputs_of_rows_past_the_end_are_not_read():
    """A block of lanes takes several rows; where the rows do not fill the last block, its threads
    past the last row read no row input (the target of a row of 11 classes: 6 rows in a block
    of 128), and where they fill it, the load is plain."""
    from fuseforge.plan_rows import RowKernel

    def shared(n_rows):
        model = RowZoo({"nll": lambda t: F.nll_loss(t["x2"][:1].expand(n_rows, -1) * 2, t["tg"][:1].expand(n_rows),
                                                    reduction="none")})
        [k] = [k for k in plan(capture(model, row_inputs(0))).kernels if isinstance(k, RowKernel)]
        return render_rows.render(k).shared

    guarded = re.compile(r"const int64_t (\w+) = active \? a\.\1\[o_\1\] : int64_t\(0\);")
    assert guarded.search(shared(6)), shared(6)[-1500:]
    assert not guarded.search(shared(256)) and re.search(r"const int64_t (\w+) = a\.\1\[o_\1\];", shared(256))


def test_outer_rows_held_in_registers(monkeypatch):
    """Rows along a dim that is not innermost (the outer schedule), read by two passes from a
    tensor beyond RESIDENT_MIN_BYTES (here at any size): 64 threads a row, 16 rows a block, so
    that a thread's 24 elements of a row of 1500 stay in registers between the passes."""
    from fuseforge.plan_rows import RowKernel
    monkeypatch.setattr(render_rows, "RESIDENT_MIN_BYTES", 0)
    the_plan = plan(capture(RowZoo({"outer_l1_normalize": ODD["outer_l1_normalize"]}), row_inputs(0)))
    [k] = [k for k in the_plan.kernels if isinstance(k, RowKernel)]
    source = render_rows.render(k)
    assert "schedule outer, rows of in0 cached in registers" in source.shared, source.shared[:300]
    assert "dim3(16, 64)" in source.cuda and re.search(r"_row<24>\(a, o", source.cuda), source.cuda[-600:]


def test_split_partials_merged_in_launches_of_their_own(monkeypatch):
    """Split rows on the outer schedule: a launch between a level's partials and what follows merges
    a row's partials, with a block per row where it has MERGE_BLOCK_MIN_SPLITS of them or more
    (here lowered to 0; 3 rows of 20000 in 39 splits), else with the row tile's block; without
    element outputs, the last merge writes the row results. On the inner schedule each block of
    the next launch merges them itself."""
    from fuseforge.plan_rows import RowKernel

    def launches(case):
        the_plan = plan(capture(RowZoo({case: SPLIT[case]}), row_inputs(0)))
        [k] = [k for k in the_plan.kernels if isinstance(k, RowKernel)]
        cuda = render_rows.render(k).cuda
        return k.splits, re.findall(r"_kernel<(\d)><<<", cuda), cuda

    splits, phases, tile = launches("split_outer_sum")   # partials, then merge and results
    assert splits == 39 and phases == ["0", "1"] and "_merge_kernel" not in tile, tile[-1500:]
    assert re.search(r"if constexpr \(PHASE == 1\) \{  // the row results", tile), tile[-1500:]
    assert launches("split_outer_softmax")[1] == ["0", "1", "2", "3", "4"]   # max, merge, sum, merge, output
    assert launches("split_logsumexp_all")[1] == ["0", "1", "2"]   # inner: max, sum of exponentials, results
    assert launches("split_layer_norm")[1] == ["0", "1"]
    splits, phases, forty = launches("split_outer_sum_40")   # 40 rows: one tile of them all
    assert re.search(rf"_kernel<0><<<\(\(40u \+ 39u\) / 40u\) \* {splits}u, dim3\(40, 16\), ", forty), forty[-1500:]
    monkeypatch.setattr(render_rows, "MERGE_BLOCK_MIN_SPLITS", 0)
    per_row = launches("split_outer_sum")[2]
    assert re.search(r"_merge_kernel<1><<<3u, 256, ", per_row) and "ff_team_block team" in per_row, per_row[-1500:]


class SumOverDim1(nn.Module):
    def forward(self, x):
        return x.sum(dim=1)


def test_lone_strided_reduction_generated_on_long_rows():
    """A reduction over strided rows with nothing fused to it is generated (the outer schedule)
    where rows are long, and left to eager below plan_rows.ALONE_MIN_LENGTH."""
    from fuseforge.plan_rows import ALONE_MIN_LENGTH, RowKernel
    long = plan(capture(SumOverDim1(), [torch.empty(4, ALONE_MIN_LENGTH, 64)]))
    assert [type(k) for k in long.kernels] == [RowKernel], long.decisions
    short = plan(capture(SumOverDim1(), [torch.empty(4, ALONE_MIN_LENGTH - 1, 64)]))
    assert not short.kernels and any("strided rows of" in d for d in short.decisions), short.decisions


def test_max_values_alone_fold_no_index():
    """torch.max(x, dim)[0]: the kernel folds the values alone (ff_acc_max); with the indices
    read, it folds both (ff_acc_argmax)."""
    from fuseforge.plan_rows import RowKernel

    def accumulators(fn):
        the_plan = plan(capture(RowZoo({"case": fn}), row_inputs(0)))
        return {m for k in the_plan.kernels if isinstance(k, RowKernel)
                for m in re.findall(r"ff_acc_\w+", render_rows.render(k).shared)}

    assert accumulators(lambda t: torch.max(t["x"], 1)[0]) == {"ff_acc_max"}
    assert accumulators(lambda t: torch.max(t["x"], 1)) == {"ff_acc_argmax"}
