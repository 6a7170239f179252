#!/usr/bin/env python3
"""Engine-foundation benchmark: hone next to llama.cpp's llama-bench on the same weights, in one run.

    python3 tools/bench/foundation.py --models bench-models --llama-cpp /path/to/llama.cpp/build [--threads 1,2]
    python3 tools/bench/foundation.py ... -p 0 -n 128 --depth 1024 --baseline OLD_HONE   (decode after 1,024 tokens of
        context, as llama-bench's "tg128 @ d1024", an earlier build of hone in the same rounds)

Needs the models from tools/bench/make_model.py (<shape>-bf16/, <shape>-f16/, <shape>-f16.gguf) and a release
build of hone (swift build -c release). llama.cpp is optional: give the build directory of a llama.cpp you
built yourself (its bin/llama-bench); nothing of llama.cpp is part of this repository.
Prints a Markdown table: open time, pp512 and tg128 tokens/s, peak RSS, hone ÷ llama.cpp ratios, and hone's tg
as a share of the memory-bandwidth limit (the read bandwidth probed before and after every hone run).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def hone_bench(hone, model, threads, prompt, generate, repetitions, depth=0):
    command = [hone, "bench", "--model", model, "-p", str(prompt), "-n", str(generate), "-r", str(repetitions),
               "--threads", str(threads), "--json"] + (["--depth", str(depth)] if depth else [])
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"hone bench failed: {result.stderr}")
    return json.loads(result.stdout)


def llama_bench(binary, model, threads, prompt, generate, repetitions, depth=0):
    command = [binary, "-m", model, "-t", str(threads), "-p", str(prompt), "-n", str(generate),
               "-r", str(repetitions), "-o", "json"] + (["-d", str(depth)] if depth else [])
    pid_out = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = pid_out.stdout.read()
    _, status, usage = os.wait4(pid_out.pid, 0)
    if status != 0:
        sys.exit(f"llama-bench failed on {model}")
    results = json.loads(out)
    figures = {"peak_rss": usage.ru_maxrss * 1024, "pp_tps": 0.0, "tg_tps": 0.0}
    for entry in results:
        if entry.get("n_prompt", 0) > 0 and entry.get("n_gen", 0) == 0:
            figures["pp_tps"], figures["pp_sd"] = entry["avg_ts"], entry["stddev_ts"]
        elif entry.get("n_gen", 0) > 0 and entry.get("n_prompt", 0) == 0:
            figures["tg_tps"], figures["tg_sd"] = entry["avg_ts"], entry["stddev_ts"]
    figures["commit"] = results[0].get("build_commit", "?") if results else "?"
    return figures


def gib(value):
    return f"{value / 2**30:.2f} GiB"


def memory_bandwidth(hone, threads):
    """Memory read bandwidth in bytes/s with `threads` threads, measured by `hone bench --memory-bandwidth` (wide
    loads over 1 GiB, best of 5): the most a decoder that streams every weight once per token can reach."""
    result = subprocess.run([hone, "bench", "--memory-bandwidth", "--json", "--threads", str(threads)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"hone bench --memory-bandwidth failed: {result.stderr}")
    return json.loads(result.stdout)["read_bytes_per_s"]


def decode_bytes(path):
    """Weight bytes one decoded token reads: every tensor except the token-embedding table (one row of it is read),
    which also serves as the output projection when the model has no separate one."""
    if os.path.isdir(path):
        from safetensors import safe_open
        sizes = {}
        with safe_open(os.path.join(path, "model.safetensors"), "np") as handle:
            for name in handle.keys():
                sizes[name] = handle.get_slice(name).get_shape()
        bytes_per = 2
        total = sum(bytes_per * int(__import__("numpy").prod(shape)) for shape in sizes.values())
        embedding = bytes_per * int(__import__("numpy").prod(sizes["model.embed_tokens.weight"]))
        return total - (embedding if "lm_head.weight" in sizes else 0)
    from gguf import GGUFReader
    reader = GGUFReader(path)
    sizes = {tensor.name: int(tensor.n_bytes) for tensor in reader.tensors}
    total = sum(sizes.values())
    return total - (sizes["token_embd.weight"] if "output.weight" in sizes else 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=os.path.join(ROOT, "bench-models"))
    parser.add_argument("--shape", default="tinyllama")
    parser.add_argument("--llama-cpp", help="llama.cpp build directory (with bin/llama-bench)")
    parser.add_argument("--hone", default=os.path.join(ROOT, ".build", "release", "hone"))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("-p", type=int, default=512)
    parser.add_argument("-n", type=int, default=128)
    parser.add_argument("-r", type=int, default=2, help="repetitions inside each tool run")
    parser.add_argument("-d", "--depth", type=int, default=0, help="tokens in the KV cache before pp and tg (llama-bench's -d)")
    parser.add_argument("--baseline", help="an earlier hone build, run in the same rounds (its tg and after ÷ before)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of hone and llama-bench")
    parser.add_argument("--only", help="comma-separated words a weights label must contain (e.g. GGUF)")
    parser.add_argument("--kinds", default="Q8_0,Q4_0,Q4_K_M,Q2_K,Q3_K_M,Q5_K_M,IQ4_XS",
                        help="quantized GGUFs <shape>-<kind>.gguf to include when present (e.g. Q4_1,Q5_0,Q5_1,IQ4_NL)")
    args = parser.parse_args()

    models = [("BF16 safetensors", os.path.join(args.models, f"{args.shape}-bf16"), None),
              ("F16 safetensors", os.path.join(args.models, f"{args.shape}-f16"), None),
              ("F16 GGUF", os.path.join(args.models, f"{args.shape}-f16.gguf"), "gguf")]
    # Quantized GGUFs (made by hand with llama-quantize or hone quantize from the F16 GGUF), when present.
    models += [(f"{kind} GGUF", os.path.join(args.models, f"{args.shape}-{kind}.gguf"), "gguf")
               for kind in args.kinds.split(",")]
    if args.only:
        models = [model for model in models if any(word in model[0] for word in args.only.split(","))]
    llama = os.path.join(args.llama_cpp, "bin", "llama-bench") if args.llama_cpp else None
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
          f"date {time.strftime('%Y-%m-%d')}")
    print()
    print(f"Medians of {args.rounds} alternating rounds (min–max in brackets), tokens/s.")
    print()
    at = f" @ d{args.depth}" if args.depth else ""
    baseline_columns = f" hone before tg{args.n}{at} | after ÷ before |" if args.baseline else ""
    print(f"| weights | threads | open s | hone pp{args.p}{at} | llama.cpp pp{args.p}{at} | ratio | hone tg{args.n}{at} "
          f"| llama.cpp tg{args.n}{at} | ratio |{baseline_columns} hone tg ÷ bandwidth limit | hone peak RSS | llama.cpp peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|" + ("---|---|" if args.baseline else "") + "---|---|---|")
    for threads in [int(t) for t in args.threads.split(",")]:
        for label, path, kind in models:
            if not os.path.exists(path):
                continue
            # The machine is a shared VM whose speed drifts minute to minute: run the two tools alternately,
            # round after round, and report medians, so drift hits both alike.
            # The bandwidth probe drifts too (by 10-20 % from one hour to the next): each round probes right before
            # and after hone's run, and that round's share divides by the mean of its two probes.
            ours_runs, theirs_runs, baseline_runs, probes, shares = [], [], [], [], []
            weight_bytes = decode_bytes(path)
            for _ in range(args.rounds):
                before = memory_bandwidth(args.hone, threads)
                ours_runs.append(hone_bench(args.hone, path, threads, args.p, args.n, args.r, args.depth))
                after = memory_bandwidth(args.hone, threads)
                probes += [before, after]
                shares.append(ours_runs[-1]["tg_tps"] * weight_bytes / ((before + after) / 2))
                if args.baseline:
                    baseline_runs.append(hone_bench(args.baseline, path, threads, args.p, args.n, args.r, args.depth))
                if llama and kind == "gguf":
                    theirs_runs.append(llama_bench(llama, path, threads, args.p, args.n, args.r, args.depth))
            ours = {key: statistics.median(run[key] for run in ours_runs) for key in ("open_s", "pp_tps", "tg_tps", "peak_rss")}
            spread = lambda runs, key: f"{min(r[key] for r in runs):.1f}–{max(r[key] for r in runs):.1f}"
            ratio = lambda a, b: f"{a / b:.2f}×" if b else "–"
            compared = ""
            if baseline_runs:
                baseline_tg = statistics.median(run["tg_tps"] for run in baseline_runs)
                compared = f" {baseline_tg:.1f} ({spread(baseline_runs, 'tg_tps')}) | {ratio(ours['tg_tps'], baseline_tg)} |"
            limit = statistics.median(probes) / weight_bytes
            share = (f"{statistics.median(shares) * 100:.0f}% ({min(shares) * 100:.0f}–{max(shares) * 100:.0f}) of "
                     f"{limit:.1f} (probes {min(probes) / 1e9:.1f}–{max(probes) / 1e9:.1f} GB/s)")
            if args.depth:
                share = "–"  # the limit counts the weights only, not the cached keys and values a step reads
            if theirs_runs:
                theirs = {key: statistics.median(run[key] for run in theirs_runs) for key in ("pp_tps", "tg_tps", "peak_rss")}
                print(f"| {label} | {threads} | {ours['open_s']:.3f} | {ours['pp_tps']:.1f} ({spread(ours_runs, 'pp_tps')}) | "
                      f"{theirs['pp_tps']:.1f} ({spread(theirs_runs, 'pp_tps')}) | {ratio(ours['pp_tps'], theirs['pp_tps'])} | "
                      f"{ours['tg_tps']:.1f} ({spread(ours_runs, 'tg_tps')}) | {theirs['tg_tps']:.1f} ({spread(theirs_runs, 'tg_tps')}) | "
                      f"{ratio(ours['tg_tps'], theirs['tg_tps'])} |{compared} {share} | {gib(ours['peak_rss'])} | {gib(theirs['peak_rss'])} |")
            else:
                print(f"| {label} | {threads} | {ours['open_s']:.3f} | {ours['pp_tps']:.1f} ({spread(ours_runs, 'pp_tps')}) | – | – | "
                      f"{ours['tg_tps']:.1f} ({spread(ours_runs, 'tg_tps')}) | – | – |{compared} {share} | {gib(ours['peak_rss'])} | – |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
