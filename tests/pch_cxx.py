#!/usr/bin/env python3
"""The C++ compiler of the test session (conftest sets CXX to it): every generated extension's
main.cpp starts with the host runtime's headers (ATen, the dispatcher, pybind), whose parsing took
12 of the 21-29 s its compile takes on two cores. This wrapper compiles those headers once into a
precompiled header and has each such compile include it first (-include; g++ takes prelude.h.gch in
its place), with the very flags of the compile (the extension's name left out: no header reads it).
The objects come out byte for byte the same. Every other call goes to the compiler unchanged, and a
precompiled header that cannot be built leaves the compile as it was (a note on stderr).

    FF_PCH_DIR  where the precompiled headers go (one per set of flags and headers; conftest gives
                each test session a fresh one, so headers that changed on disk are never stale)
    FF_PCH_CXX  the compiler (default c++)
"""
import fcntl
import hashlib
import os
import subprocess
import sys

MARKER = "// ---- fuseforge host runtime"
DIRECTIVES = ("#include", "#ifdef", "#ifndef", "#if ", "#else", "#elif", "#endif", "#define", "#undef")


def prelude(text: str) -> str:
    """The leading run of comments and preprocessor lines of a generated main.cpp, cut after its
    last line at #if depth 0 (the host runtime's #includes), or '' if it does not start with them."""
    if MARKER not in text[:200]:
        return ""
    lines = text.splitlines()
    depth, end = 0, 0
    for i, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("//"):
            continue
        if not s.startswith(DIRECTIVES):
            break
        if s.startswith(("#if", "#ifdef", "#ifndef")):
            depth += 1
        elif s.startswith("#endif"):
            depth -= 1
        if depth == 0:
            end = i + 1
    return "\n".join(lines[:end]) + "\n" if end else ""


def with_pch(cxx: str, args: list[str]) -> list[str]:
    """args with the precompiled prelude of their main.cpp included first, or args as they are."""
    if "-c" not in args or not os.environ.get("FF_PCH_DIR"):
        return args
    source = args[args.index("-c") + 1] if args.index("-c") + 1 < len(args) else ""
    if os.path.basename(source) != "main.cpp":
        return args
    with open(source) as f:
        head = prelude(f.read())
    if not head:
        return args
    skip = {"-c", source, "-o", "-MF", "-MMD"}
    flags, i = [], 0
    while i < len(args):
        a = args[i]
        if a in ("-o", "-MF"):
            i += 2
            continue
        if a not in skip and not a.startswith("-DTORCH_EXTENSION_NAME="):
            flags.append(a)
        i += 1
    key = hashlib.sha256("\0".join([cxx, head, *flags]).encode()).hexdigest()[:16]
    folder = os.path.join(os.environ["FF_PCH_DIR"], key)
    header = os.path.join(folder, "prelude.h")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # (tests in other processes build at the same time)
        failed = os.path.join(folder, "failed")   # (tried once: later compiles do not try again)
        if os.path.exists(failed):
            return args
        if not os.path.exists(header + ".gch"):
            with open(header, "w") as f:
                f.write(head)
            done = subprocess.run([cxx, *flags, "-x", "c++-header", header, "-o", header + ".gch.tmp"],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                with open(failed, "w") as f:
                    f.write(done.stderr)
                print(f"pch_cxx: no precompiled header ({done.stderr.strip()[-300:]}); compiling without",
                      file=sys.stderr)
                return args
            os.replace(header + ".gch.tmp", header + ".gch")
    return ["-include", header, "-Winvalid-pch", *args]


def main() -> None:
    cxx = os.environ.get("FF_PCH_CXX", "c++")
    args = sys.argv[1:]
    try:
        args = with_pch(cxx, args)
    except OSError as e:   # (an unreadable source or folder: the compiler reports what matters)
        print(f"pch_cxx: {e}; compiling without a precompiled header", file=sys.stderr)
    os.execvp(cxx, [cxx, *args])


if __name__ == "__main__":
    main()
