#!/usr/bin/env python3
"""`hone serve` next to llama.cpp's `llama-server` on the same GGUF: requests/s, generated tokens/s, latency (p50,
p95) and time to first token at several numbers of concurrent clients, over loopback, alternating the two servers
round by round. Standard library only.

    python3 tools/bench/serve.py --hone .build/release/hone --llama-bin /path/to/llama.cpp/build/bin \
        --model /work/bench-models/smollm2-135m-Q8_0.gguf [--threads 2] [--clients 1,4,8] [--requests 16] \
        [--max-tokens 64] [--rounds 2]

Each client sends streamed chat completions (greedy, `max_tokens` new tokens) one after another, over distinct
questions; a level ends after `--requests` requests (at least one per client). Both servers get 8 slots
(`--parallel 8`, `-np 8`) and the same thread count. Tokens are counted from the usage each server reports.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import threading
import time

QUESTIONS = [
    "What is the capital of France?", "Explain photosynthesis in simple terms.", "Write a haiku about the sea.",
    "How do I make a cup of tea?", "What are the planets of the solar system?", "Give me three tips for sleeping well.",
    "What is a prime number?", "Describe a cat to someone who has never seen one.", "Why is the sky blue?",
    "Name some famous painters.", "How does a bicycle work?", "What should I pack for a beach trip?",
    "Summarise the story of Cinderella.", "What is the boiling point of water?", "How do vaccines work?",
    "Suggest a name for a pet goldfish.",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, process, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not start")


def one_request(port, question, max_tokens):
    body = json.dumps({"messages": [{"role": "user", "content": question}], "max_tokens": max_tokens,
                       "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"status {response.status}: {response.read()[:200]}")
    first = None
    tokens = 0
    chunks = 0
    buffer = b""
    while True:
        data = response.read1(65536) if hasattr(response, "read1") else response.read(1024)
        if not data:
            break
        buffer += data
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if not event.startswith(b"data: ") or event == b"data: [DONE]":
                continue
            chunk = json.loads(event[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices", []):
                if (choice.get("delta") or {}).get("content"):
                    chunks += 1
                    if first is None:
                        first = time.perf_counter()
    end = time.perf_counter()
    connection.close()
    return end - start, (first or end) - start, tokens or chunks


def level(port, clients, requests, max_tokens):
    results = []
    lock = threading.Lock()
    per_client = max(1, requests // clients)

    def client(index):
        for k in range(per_client):
            outcome = one_request(port, QUESTIONS[(index * per_client + k) % len(QUESTIONS)], max_tokens)
            with lock:
                results.append(outcome)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies = sorted(r[0] for r in results)
    ttfts = sorted(r[1] for r in results)
    tokens = sum(r[2] for r in results)
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
    return {"requests_per_s": len(results) / wall, "tokens_per_s": tokens / wall,
            "p50": statistics.median(latencies), "p95": p95, "ttft_p50": statistics.median(ttfts), "tokens": tokens}


def start(kind, args, port):
    if kind == "hone":
        command = [args.hone, "serve", "--model", args.model, "--port", str(port), "--parallel", "8",
                   "--threads", str(args.threads), "--ctx-size", "2048"]
    else:
        command = [os.path.join(args.llama_bin, "llama-server"), "-m", args.model, "--port", str(port), "-np", "8",
                   "-t", str(args.threads), "-c", str(8 * 2048), "--host", "127.0.0.1", "--no-webui"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, process)
    return process


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hone", required=True)
    parser.add_argument("--llama-bin", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    measured = {kind: {c: [] for c in levels} for kind in ("hone", "llama")}
    for round_index in range(args.rounds):
        order = ("hone", "llama") if round_index % 2 == 0 else ("llama", "hone")
        for kind in order:
            port = free_port()
            process = start(kind, args, port)
            try:
                one_request(port, "Hello!", 8)  # warm-up
                for clients in levels:
                    result = level(port, clients, max(args.requests, clients), args.max_tokens)
                    measured[kind][clients].append(result)
                    print(f"round {round_index + 1} {kind} {clients} clients: {result['tokens_per_s']:.1f} tokens/s, "
                          f"TTFT {result['ttft_p50'] * 1000:.0f} ms", flush=True)
            finally:
                process.terminate()
                process.wait(timeout=30)
    print(f"model {os.path.basename(args.model)}, {args.threads} threads, {args.max_tokens} new tokens per request, "
          f"{args.rounds} alternating rounds (medians)")
    print("| clients | server | requests/s | tokens/s | p50 latency | p95 latency | TTFT p50 |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    summary = {}
    for clients in levels:
        for kind in ("hone", "llama"):
            runs = measured[kind][clients]
            m = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            summary[(kind, clients)] = m
            name = "hone serve" if kind == "hone" else "llama-server"
            print(f"| {clients} | {name} | {m['requests_per_s']:.2f} | {m['tokens_per_s']:.1f} | {m['p50'] * 1000:.0f} ms | "
                  f"{m['p95'] * 1000:.0f} ms | {m['ttft_p50'] * 1000:.0f} ms |")
    for clients in levels:
        h, l = summary[("hone", clients)], summary[("llama", clients)]
        print(f"{clients} clients: tokens/s ratio hone/llama {h['tokens_per_s'] / l['tokens_per_s']:.2f}, "
              f"requests/s ratio {h['requests_per_s'] / l['requests_per_s']:.2f}, "
              f"TTFT ratio {h['ttft_p50'] / l['ttft_p50']:.2f}")


if __name__ == "__main__":
    main()
