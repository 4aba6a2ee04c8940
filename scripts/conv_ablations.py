"""Ablations of the generated convolution: copies of generated files with one part of the
implicit-GEMM kernel's work dropped, to time on a GPU and see which part bounds it.

    python3 scripts/conv_ablations.py SRC_DIR OUT_ROOT
    python3 scripts/ab_generated.py SRC_DIR OUT_ROOT/<variant> PROBLEM.py... --no-verify

SRC_DIR holds files as scripts/generate_sources.py writes them; every one with a generated
convolution is copied into OUT_ROOT/<variant>/ for each variant of its kernel (its extension
renamed so that the builds do not share a cache entry): the implicit GEMM's variants, or with
FUSEFORGE_CONV_HALO=1 the halo kernel's (halo_*). The results are wrong on purpose; only the
times mean something:
  no_gather     the input's copies into shared memory read nothing (zero-filled): the L2 traffic
                and latency of the gather gone, the rest of the main loop as it is
  no_mma        no wgmma: the gather, the barriers and the epilogue as they are
  no_store      the epilogue (its loads and stores) kept only behind a test the values never pass
                (so that the compiler keeps the main loop): the epilogue's traffic gone
  no_transpose  the input's conversion to channels-last not launched (the kernel reads stale
                workspace)
  halo_no_load  the halo kernel's copies of a tile's input read nothing (zero-filled)
  halo_no_mma   the halo kernel without wgmma
  halo_no_store the halo kernel's epilogue kept behind a test the values never pass
"""
import re
import sys
from pathlib import Path

VARIANTS = {
    "no_gather": ("copy16(dst[i] + into * (STAGE * 4), PADDED && !ok ? xin : src[i] + tap, ok);",
                  "copy16(dst[i] + into * (STAGE * 4), xin, false);"),
    "no_mma": ("wgmma<BN>::run(acc, hi | (a_lo + at), hi | (b_lo + at));", "(void)at;"),
    "no_store": ("img_ = img[h], p_ = p[h];\n      return in[h] && (T::K % BN == 0 || co < T::K);",
                 "img_ = img[h], p_ = p[h];\n      return in[h] && acc[i] == 1.2345e-37f;"),
    "no_transpose": ("  if (!T::NCHW_IN)   // the input [N][C][(D*)H*W]", "  if (false)   // the input [N][C][(D*)H*W]"),
}
HALO_VARIANTS = {
    "halo_no_load": ("ok ? xin + ((((int64_t(img) * T::D + id) * T::H + ih) * T::W + iw) * T::C + cq * 4) : xin, ok);",
                     "xin, false);"),
    "halo_no_mma": ("wgmma<BN>::run(acc, desc_plain(at + 2 * kk * T::HPS * 16, T::HPS * 16), "
                    "desc_plain(wts + 16 * (j * CQ + 2 * kk) * BN, BN * 16));", "(void)at;"),
    "halo_no_store": ("img_ = img, p_ = p[h];\n      return in[h] && (T::K % BN == 0 || co < T::K);",
                      "img_ = img, p_ = p[h];\n      return in[h] && acc[i] == 1.2345e-37f;"),
}


def ablate(text: str, variant: str) -> str:
    """The generated file's text with the variant's edit (exactly one place) and its extension renamed."""
    old, new = {**VARIANTS, **HALO_VARIANTS}[variant]
    if text.count(old) != 1:
        raise SystemExit(f"{variant}: expected the kernel text once, found it {text.count(old)} times "
                         "(codegen/conv.py changed: update VARIANTS)")
    text = text.replace(old, new)
    return re.sub(r'name="(ff_[^"]+)"', lambda m: f'name="{m.group(1)}_{variant}"', text)


def main() -> int:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    files = [f for f in sorted(src.glob("*.py")) if "ffconv::launch<" in f.read_text()]
    for f in files:
        text = f.read_text()
        for variant in HALO_VARIANTS if "static constexpr bool HALO = true;" in text else VARIANTS:
            (out / variant).mkdir(parents=True, exist_ok=True)
            (out / variant / f.name).write_text(ablate(text, variant))
    print(f"{len(files)} file(s) in {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
