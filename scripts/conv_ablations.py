"""Ablations of the generated convolution: copies of generated files with one part of the
implicit-GEMM kernel's work dropped, to time on a GPU and see which part bounds it.

    python3 scripts/conv_ablations.py SRC_DIR OUT_ROOT
    python3 scripts/ab_generated.py SRC_DIR OUT_ROOT/<variant> PROBLEM.py... --no-verify

SRC_DIR holds files as scripts/generate_sources.py writes them; every one with a generated
convolution is copied into OUT_ROOT/<variant>/ for each variant (its extension renamed so that the
builds do not share a cache entry). The results are wrong on purpose; only the times mean
something:
  no_gather     the input's copies into shared memory read nothing (zero-filled): the L2 traffic
                and latency of the gather gone, the rest of the main loop as it is
  no_mma        no wgmma: the gather, the barriers and the epilogue as they are
  no_store      the epilogue's stores kept only behind a test the values never pass (so that the
                compiler keeps the main loop): the stores' traffic gone
  no_transpose  the input's conversion to channels-last not launched (the kernel reads stale
                workspace)
"""
import re
import sys
from pathlib import Path

VARIANTS = {
    "no_gather": ("copy16(dst[i] + into * (STAGE * 4), PADDED && !ok ? xin : src[i] + tap, ok);",
                  "copy16(dst[i] + into * (STAGE * 4), xin, false);"),
    "no_mma": ("wgmma<BN>::run(acc, hi | (a_lo + at), hi | (b_lo + at));", "(void)at;"),
    "no_store": ("if (in[h] && (T::K % BN == 0 || co < T::K)) T::store(a, img[h], co, p[h], acc[i]);",
                 "if (in[h] && acc[i] == 1.2345e-37f) T::store(a, img[h], co, p[h], acc[i]);"),
    "no_transpose": ("  if (!T::NCHW_IN)   // the input [N][C][(D*)H*W]", "  if (false)   // the input [N][C][(D*)H*W]"),
}


def ablate(text: str, variant: str) -> str:
    """The generated file's text with the variant's edit (exactly one place) and its extension renamed."""
    old, new = VARIANTS[variant]
    if text.count(old) != 1:
        raise SystemExit(f"{variant}: expected the kernel text once, found it {text.count(old)} times "
                         "(codegen/conv.py changed: update VARIANTS)")
    text = text.replace(old, new)
    return re.sub(r'name="(ff_[^"]+)"', lambda m: f'name="{m.group(1)}_{variant}"', text)


def main() -> int:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    files = [f for f in sorted(src.glob("*.py")) if "ffconv::launch<" in f.read_text()]
    for variant in VARIANTS:
        (out / variant).mkdir(parents=True, exist_ok=True)
        for f in files:
            (out / variant / f.name).write_text(ablate(f.read_text(), variant))
    print(f"{len(files)} file(s) x {len(VARIANTS)} variant(s) in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
