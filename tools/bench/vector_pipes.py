#!/usr/bin/env python3
"""Which vector instructions share execution pipes on this CPU: throughput of each alone and of pairs.

    python3 tools/bench/vector_pipes.py [--width zmm|ymm] [--cc clang]

Writes a small C program of inline-assembly loops to a temporary directory, builds it with the given compiler and
runs it. Each loop issues eight independent copies of an instruction (or eight of each of two), so latency does
not limit it; the time per loop, in cycles of a dependent-add chain timed in the same program, is the reciprocal
throughput of that mix. If A alone takes a cycles per eight, B alone b, and A + B together about a + b, they use
the same pipes; about max(a, b), different ones; in between, pipes partly shared. The decode kernels are planned
with it (their instruction mix, not any one instruction, bounds them; see BENCHMARKS.md).
"""
import argparse
import os
import subprocess
import sys
import tempfile

# Destination register {d}; sources are registers 1 and 2 (kept constant), %0 a 64-byte aligned buffer.
ZMM = {
    "vpdpbusd": "vpdpbusd %%zmm1, %%zmm2, %%zmm{d}",
    "vpdpwssd": "vpdpwssd %%zmm1, %%zmm2, %%zmm{d}",
    "vpmaddwd": "vpmaddwd %%zmm1, %%zmm2, %%zmm{d}",
    "vpmaddubsw": "vpmaddubsw %%zmm1, %%zmm2, %%zmm{d}",
    "vpmulld": "vpmulld %%zmm1, %%zmm2, %%zmm{d}",
    "vgf2p8affineqb": "vgf2p8affineqb $0, %%zmm1, %%zmm2, %%zmm{d}",
    "vpmultishiftqb": "vpmultishiftqb %%zmm1, %%zmm2, %%zmm{d}",
    "vprolvd": "vprolvd %%zmm1, %%zmm2, %%zmm{d}",
    "vfmadd231ps": "vfmadd231ps %%zmm1, %%zmm2, %%zmm{d}",
    "vpshufb": "vpshufb %%zmm1, %%zmm2, %%zmm{d}",
    "vpermb": "vpermb %%zmm1, %%zmm2, %%zmm{d}",
    "vpermt2b": "vpermt2b %%zmm1, %%zmm2, %%zmm{d}",
    "vpackssdw": "vpackssdw %%zmm1, %%zmm2, %%zmm{d}",
    "vbroadcasti32x4": "vbroadcasti32x4 (%0), %%zmm{d}",
    "vpsrlw": "vpsrlw $2, %%zmm2, %%zmm{d}",
    "vpsllvw": "vpsllvw %%zmm1, %%zmm2, %%zmm{d}",
    "vcvtdq2ps": "vcvtdq2ps %%zmm2, %%zmm{d}",
    "vpandd": "vpandd %%zmm1, %%zmm2, %%zmm{d}",
    "vpaddd": "vpaddd %%zmm1, %%zmm2, %%zmm{d}",
    "vpternlogd": "vpternlogd $0xf8, %%zmm1, %%zmm2, %%zmm{d}",
}
YMM = {
    "vpmaddubsw": "vpmaddubsw %%ymm1, %%ymm2, %%ymm{d}",
    "vpmaddwd": "vpmaddwd %%ymm1, %%ymm2, %%ymm{d}",
    "vpsignb": "vpsignb %%ymm1, %%ymm2, %%ymm{d}",
    "vfmadd231ps": "vfmadd231ps %%ymm1, %%ymm2, %%ymm{d}",
    "vpshufb": "vpshufb %%ymm1, %%ymm2, %%ymm{d}",
    "vpermpd": "vpermpd $80, %%ymm2, %%ymm{d}",
    "vinserti128": "vinserti128 $1, (%0), %%ymm2, %%ymm{d}",
    "vpsrlw": "vpsrlw $4, %%ymm2, %%ymm{d}",
    "vcvtdq2ps": "vcvtdq2ps %%ymm2, %%ymm{d}",
    "vpand": "vpand %%ymm1, %%ymm2, %%ymm{d}",
    "vpaddd": "vpaddd %%ymm1, %%ymm2, %%ymm{d}",
}
# Pairs with the multiply-class instruction of each width: the one the dot products need.
ANCHOR = {"zmm": "vpdpbusd", "ymm": "vpmaddubsw"}
EXTRA_PAIRS = {"zmm": [("vpshufb", "vpackssdw"), ("vpshufb", "vpsrlw"), ("vpsrlw", "vcvtdq2ps")],
               "ymm": [("vpshufb", "vpermpd"), ("vpshufb", "vpsrlw"), ("vpsrlw", "vcvtdq2ps")]}


def program(width, table):
    registers = 32 if width == "zmm" else 16
    copies = 8 if width == "zmm" else 6
    clobbers = ",".join(f'"xmm{i}"' for i in range(3, registers))
    lines = ["#include <stdio.h>", "#include <time.h>",
             "static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }",
             "static char buffer[256] __attribute__((aligned(64)));",
             # One dependent add per cycle: the clock the loops are counted in, timed again right before each of
             # them (a shared VM's clock drifts within a run).
             "static double clock_hz(void) {",
             "    long chain = 0, loops = 5000000; double t0 = now();",
             "    for (long i = 0; i < loops; i++) asm volatile(\"add $1, %0\\n add $1, %0\\n add $1, %0\\n add $1, %0\" : \"+r\"(chain));",
             "    return 4.0 * loops / (now() - t0);",
             "}",
             "int main(void) {",
             f'    asm volatile("vpxor %%xmm1, %%xmm1, %%xmm1\\n vpxor %%xmm2, %%xmm2, %%xmm2" ::: "xmm1", "xmm2");',
             "    const long loops = 20000000;",
             "    double hz = clock_hz(); hz = clock_hz();",
             '    printf("clock %.2f GHz (dependent adds)\\n", hz * 1e-9);']

    def loop(name, names):
        body = []
        for j, op in enumerate(names):
            for i in range(copies):
                body.append(table[op].format(d=3 + i + copies * j) + "\\n")
        lines.append("    { hz = clock_hz(); double t = now(); for (long i = 0; i < loops; i++) asm volatile(\"" + "".join(body)
                     + f"\" :: \"r\"(buffer) : {clobbers}); t = now() - t;")
        lines.append(f'      printf("%-32s %6.2f cycles per {copies} of each\\n", "{name}", t * hz / loops); }}')

    for op in table:
        loop(op, [op])
    anchor = ANCHOR[width]
    for op in table:
        if op != anchor:
            loop(f"{anchor} + {op}", [anchor, op])
    for a, b in EXTRA_PAIRS[width]:
        loop(f"{a} + {b}", [a, b])
    lines.append("    return 0;\n}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", choices=["zmm", "ymm"], default="zmm")
    parser.add_argument("--cc", default=os.environ.get("CC", "clang"))
    args = parser.parse_args()
    table = ZMM if args.width == "zmm" else YMM
    with tempfile.TemporaryDirectory() as directory:
        source, binary = os.path.join(directory, "pipes.c"), os.path.join(directory, "pipes")
        with open(source, "w") as f:
            f.write(program(args.width, table))
        try:
            build = subprocess.run([args.cc, "-O2", source, "-o", binary], capture_output=True, text=True)
        except FileNotFoundError:
            sys.exit(f"vector_pipes.py: no compiler named {args.cc} (give one with --cc)")
        if build.returncode != 0:
            sys.exit(f"vector_pipes.py: {args.cc} could not build the probe: {build.stderr.strip().splitlines()[-1]}")
        run = subprocess.run([binary], capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"vector_pipes.py: the probe stopped with status {run.returncode} (does this CPU have these instructions?)")
        print(run.stdout, end="")


if __name__ == "__main__":
    main()
