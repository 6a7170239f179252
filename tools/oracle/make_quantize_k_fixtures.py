#!/usr/bin/env python3
"""llama-quantize's per-tensor mixes for the K schemes (Tests/HoneKitTests/Fixtures/quantize/llama-quantize-k.json).

The same synthetic LCG models as make_quantize_fixtures.py (the Swift test rebuilds them bit for bit), quantized by
llama-quantize (no importance matrix) to Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q5_K_S, Q5_K_M and IQ4_XS; the
fixture records every output tensor's name, shape, type and checksum, and the file size.
  deep8  (make_quantize_fixtures.py's: 4 heads / 2 KV heads, ffn 320) for the schemes whose fallbacks Hone
         writes in this branch (Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q6_K -> Q8_0; Q5_K -> Q5_1 and IQ4_XS ->
         IQ4_NL need those formats);
  gqa4   8 layers, hidden 256, 4 heads / 1 KV head (n_gqa 4: the attn_v rules of Q2_K and IQ4_XS), ffn 512
         (every row a multiple of 256: no fallbacks), untied; every scheme.
  moe8   Mixtral's tensors: 4 layers of 8 experts (ffn 256) each, 2 used (n_expert 8: attn_v and attn_k to Q8_0,
         attn_output to Q5_K; ffn_down's layer from its name; the router kept F32); every K scheme and Q4_K_M,
         Q6_K, Q8_0, Q4_0, IQ4_NL.

Run: LLAMA_QUANTIZE=<build>/bin/llama-quantize tools/oracle/.venv/bin/python tools/oracle/make_quantize_k_fixtures.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402
from make_quantize_fixtures import LLAMA_QUANTIZE, MODELS, OUT, SEED, describe, llama_cpp_build, write_input  # noqa: E402

ALL = ["Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q5_K_S", "Q5_K_M", "IQ4_XS"]
PLAN = {
    "deep8": (MODELS["deep8"], ["Q2_K", "Q3_K_S", "Q3_K_M"]),
    "gqa4": (dict(layers=8, hidden=256, heads=4, kv_heads=1, ffn=512, vocab=256, tied=False), ALL),
    "moe8": (dict(layers=4, hidden=256, heads=4, kv_heads=1, ffn=256, vocab=256, tied=False, experts=8,
                  experts_used=2), ALL + ["Q4_K_M", "Q6_K", "Q8_0", "Q4_0", "IQ4_NL"]),
}


def main() -> None:
    result = {"llama_quantize": llama_cpp_build(), "seed": SEED,
              "lcg": "as llama-quantize.json", "checksum": "sum over bytes of (i + 1) * byte mod 2^64", "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (spec, types) in PLAN.items():
            src = Path(tmp) / f"{name}-f32.gguf"
            write_input(spec, src)
            entry = {"spec": spec, "input": describe(src)["tensors"], "quantized": {}}
            for qtype in types:
                dst = Path(tmp) / f"{name}-{qtype}.gguf"
                run = subprocess.run([LLAMA_QUANTIZE, str(src), str(dst), qtype, "2"], capture_output=True, text=True)
                if run.returncode != 0:
                    print(run.stdout[-2000:], run.stderr[-2000:])
                    raise SystemExit(f"llama-quantize failed for {name} {qtype}")
                d = describe(dst)
                entry["quantized"][qtype.lower()] = {"file_bytes": d["file_bytes"], "tensors": d["tensors"]}
                counts = {}
                for t in d["tensors"]:
                    counts[t["type"]] = counts.get(t["type"], 0) + 1
                print(f"  {name} {qtype}: {counts}")
            result["models"][name] = entry
    oc.write_json(OUT / "llama-quantize-k.json", result)


if __name__ == "__main__":
    main()
