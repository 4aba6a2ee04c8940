"""Registers, spills and machine instructions of each kernel of generated files, read without a GPU:
a file's CUDA source (its _ELEMENT_SOURCE and _CUDA_SOURCE) through nvcc -O3 -Xptxas -v for one
architecture, then cuobjdump -sass.

    python scripts/sass_stats.py FILE.py [FILE.py ...] [--kernel REGEX] [--arch 90a]

A line a kernel: registers, spill stores, instructions in all and before its last EXIT (the body,
without the subroutines its slow paths call: what the warps run, and what the instruction cache
holds), then MUFU (exp, reciprocal), FCHK (a division's range check), BSSY (a divergent region),
LDG, STG. level2/022's fused convolution kernel went from 3208 to 2480 instructions over the 29th
session this way (bench/session29/notes.md), each step then timed on the GPU. ST>LD: the global loads
that come right after a global store in program order. The compiler keeps a load behind an earlier
store it may alias, so an epilogue that loads each element's input after the previous element's
store counts one an element and waits a load's latency for each (level2/024's convolution: 31,
then 1 with its inputs loaded 16 elements at a time, 0.79 of the time; bench/session34/notes.md).
"""
import argparse
import ast
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

COUNTED = ("MUFU", "FCHK", "BSSY", "LDG", "STG")


def cuda_source(path: Path) -> str:
    """The file's element and CUDA sources (string constants of the module), as nvcc sees them."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and \
                node.targets[0].id in ("_ELEMENT_SOURCE", "_CUDA_SOURCE"):
            found[node.targets[0].id] = ast.literal_eval(node.value)
    if "_CUDA_SOURCE" not in found:
        raise SystemExit(f"{path}: no _CUDA_SOURCE (not a generated file, or one without CUDA kernels)")
    return found.get("_ELEMENT_SOURCE", "") + "\n" + found["_CUDA_SOURCE"]


def tool(name: str) -> str:
    """nvcc or cuobjdump: on PATH, in CUDA_HOME (/usr/local/cuda), or (cuobjdump) in triton's wheel."""
    import os
    for cand in (shutil.which(name), Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / name):
        if cand and Path(cand).exists():
            return str(cand)
    try:
        import triton
        cand = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name
        if cand.exists():
            return str(cand)
    except ImportError:
        pass
    raise SystemExit(f"{name} not found (PATH, CUDA_HOME/bin, triton's wheel)")


def demangle(names: list[str]) -> dict[str, str]:
    filt = shutil.which("c++filt")
    if not filt:
        return {n: n for n in names}
    out = subprocess.run([filt], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    return dict(zip(names, out))


def stats(path: Path, arch: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        cu, obj = Path(d) / "k.cu", Path(d) / "k.o"
        cu.write_text(cuda_source(path))
        done = subprocess.run([tool("nvcc"), "-O3", "--expt-relaxed-constexpr", "-std=c++17",
                               f"-gencode=arch=compute_{arch},code=sm_{arch}", "-Xptxas", "-v", "-c", str(cu),
                               "-o", str(obj)], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{path}: nvcc failed:\n{done.stderr[-2000:]}")
        sass = subprocess.run([tool("cuobjdump"), "-sass", str(obj)], capture_output=True, text=True).stdout
    kernels: dict[str, dict] = {}
    name = None
    for line in done.stderr.splitlines():   # ptxas -v: a function's name, then its properties
        if m := re.search(r"(?:Compiling entry function|Function properties for) '?(\w+)'?", line):
            name = m.group(1)
            kernels.setdefault(name, {"name": name})
        elif name and (m := re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)):
            kernels[name].update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
        elif name and (m := re.search(r"Used (\d+) registers", line)):
            kernels[name]["registers"] = int(m.group(1))
    for part in re.split(r"\n\s*Function : ", sass)[1:]:
        fname, body = part.split("\n", 1)
        fname = fname.strip()
        if fname not in kernels:
            continue
        instr = re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", body)
        ops = [re.sub(r"^@!?U?P\w+\s+", "", text).split()[0].split(".")[0] for _, text in instr if text.strip()]
        exits = [int(addr, 16) for addr, text in instr if re.search(r"\bEXIT\b", text)]
        memory = [op for op in ops if op in ("LDG", "STG")]
        kernels[fname].update(instructions=len(ops), body=(max(exits) // 16 + 1) if exits else len(ops),
                              store_then_load=sum(a == "STG" and b == "LDG" for a, b in zip(memory, memory[1:])),
                              **{op: ops.count(op) for op in COUNTED})
    names = demangle(list(kernels))
    for k in kernels.values():
        k["name"] = names[k["name"]]
    return [k for k in kernels.values() if "instructions" in k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--kernel", default="", help="only kernels whose (demangled) name matches this regex")
    ap.add_argument("--arch", default="90a", help="nvcc's compute_/sm_ suffix (default 90a: the H100, H200)")
    args = ap.parse_args()
    head = f"{'kernel':60} {'regs':>5} {'spill':>6} {'instr':>6} {'body':>6} " + " ".join(f"{c:>5}" for c in COUNTED) + \
        f" {'ST>LD':>5}"
    for path in args.files:
        print(f"{path}  (sm_{args.arch})")
        print(head)
        for k in stats(path, args.arch):
            if args.kernel and not re.search(args.kernel, k["name"]):
                continue
            print(f"{k['name'][:60]:60} {k.get('registers', 0):5} {k.get('spill_stores', 0):6} {k['instructions']:6} "
                  f"{k['body']:6} " + " ".join(f"{k[c]:5}" for c in COUNTED) + f" {k['store_then_load']:5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
