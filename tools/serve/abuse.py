#!/usr/bin/env python3
"""`hone serve` under abuse (issue 18): slow clients, oversized bodies, thousands of idle connections, malformed
requests, streams abandoned midway and streams never read. Each phase runs while a normal client keeps asking for
the same short greedy completion; the script reports that client's latency (p50/p95) and answer per phase, the
server's resident memory (VmRSS) before and after each phase, and checks that the server is alive, its slots are
free and the normal client's answer never changed.

Bounded: every phase has a fixed count of connections and a time limit; loopback only (the server is started here
on 127.0.0.1 with a short --timeout, or --port points at one already running on 127.0.0.1).

    python3 tools/serve/abuse.py [--hone .build/debug/hone] [--model models/hone-tiny] [--idle 2000] [--json out.json]

Exit status 0 when every check held, 1 otherwise. Standard library only.
"""
import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST = "127.0.0.1"
NORMAL = {"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mib(pid):
    if pid is None:
        return float("nan")
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def open_files(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd")) if pid else -1
    except OSError:
        return -1


# MARK: - A minimal HTTP/1.1 client on asyncio streams

def post_bytes(path, body, extra=""):
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{extra}\r\n").encode()
    return head + data


async def read_response(reader):
    """(status, headers, body) of one response; chunked or fixed length."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed before a response")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                break
            body += await reader.readexactly(size)
            await reader.readline()
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def request(port, path, body, timeout=60):
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(post_bytes(path, body) if body is not None else
                     f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        await writer.drain()
        return await asyncio.wait_for(read_response(reader), timeout)
    finally:
        writer.close()


async def health(port):
    _, _, body = await request(port, "/health", None)
    return json.loads(body)


class NormalClient:
    """Asks for NORMAL again and again on one keep-alive connection (reconnecting if closed); records latencies."""

    def __init__(self, port):
        self.port = port
        self.latencies = []
        self.answers = set()
        self.failures = 0
        self.running = True

    async def run(self):
        reader = writer = None
        while self.running:
            start = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, self.port)
                writer.write(post_bytes("/v1/completions", NORMAL))
                await writer.drain()
                status, _, body = await asyncio.wait_for(read_response(reader), 30)
                if status != 200:
                    raise ConnectionError(f"status {status}")
                self.answers.add(json.loads(body)["choices"][0]["text"])
                self.latencies.append(time.perf_counter() - start)
            except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                self.failures += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
            await asyncio.sleep(0.05)
        if writer is not None:
            writer.close()


# MARK: - Phases

async def slow_headers(port, count, seconds):
    """Connections that send their headers a byte at a time, never finishing them."""
    async def one():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            return "refused"
        head = b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Pad: " + b"a" * 4000
        deadline = time.monotonic() + seconds
        try:
            for byte in head:
                if time.monotonic() > deadline:
                    return "gave up"
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), 0.5) == b"":
                        return "closed by server"
                except asyncio.TimeoutError:
                    pass
            return "finished headers"
        except OSError:
            return "closed by server"
        finally:
            writer.close()
    return await asyncio.gather(*(one() for _ in range(count)))


async def slow_bodies(port, count, seconds):
    """Complete headers, then a body that trickles a byte every 0.4 s."""
    async def one():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            return "refused"
        body = json.dumps(NORMAL).encode()
        writer.write(f"POST /v1/completions HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        deadline = time.monotonic() + seconds
        try:
            for byte in body:
                if time.monotonic() > deadline:
                    return "gave up"
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    line = await asyncio.wait_for(reader.readline(), 0.4)
                    return f"answered {line.split()[1].decode()}" if line else "closed by server"
                except asyncio.TimeoutError:
                    pass
            return "finished body"
        except OSError:
            return "closed by server"
        finally:
            writer.close()
    return await asyncio.gather(*(one() for _ in range(count)))


async def oversized(port, count, megabytes):
    """Bodies over the server's limit, announced by Content-Length or chunked without one."""
    async def one(index):
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            return "refused"
        try:
            if index % 2 == 0:
                writer.write(f"POST /v1/completions HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {megabytes << 20}\r\n\r\n".encode())
                await writer.drain()
            else:
                writer.write(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
                piece = b"a" * (1 << 20)
                for _ in range(megabytes):
                    writer.write(b"100000\r\n" + piece + b"\r\n")
                    await writer.drain()
            status, _, body = await asyncio.wait_for(read_response(reader), 60)
            return f"{status} {json.loads(body)['error']['code']}"
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as error:
            return f"closed ({type(error).__name__})"
        except asyncio.TimeoutError:
            return "no answer"
        finally:
            writer.close()
    return await asyncio.gather(*(one(index) for index in range(count)))


async def idle_connections(port, count, hold):
    """`count` connections that send nothing; how many the server accepted and how many it closed by itself."""
    connections = []
    refused = 0
    for _ in range(count):
        try:
            connections.append(await asyncio.open_connection(HOST, port))
        except OSError:
            refused += 1
    await asyncio.sleep(hold)

    async def closed(reader):
        try:
            return await asyncio.wait_for(reader.read(1), 0.01) == b""
        except asyncio.TimeoutError:
            return False
        except OSError:
            return True
    closed_count = sum(await asyncio.gather(*(closed(reader) for reader, _ in connections)))
    for _, writer in connections:
        writer.close()
    return {"opened": len(connections), "refused": refused, "closed_by_server": closed_count}


MALFORMED = [
    b"\x00\x01\x02garbage\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"POST /v1/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /v1/completions HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}",
    b"POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"POST /v1/completions HTTP/1.1\r\nX-Big: " + b"b" * 200_000 + b"\r\n\r\n",
    post_bytes("/v1/completions", b"\xff\xfe{\"prompt\": \"\xc3\x28\"}"),
    post_bytes("/v1/completions", b'{"prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    post_bytes("/v1/chat/completions", {"messages": [{"role": "user", "content": "x" * 1_000_000}]}),
    post_bytes("/v1/completions", {"prompt": [[1, 2]] * 20_000, "n": 64, "max_tokens": 1}),
    post_bytes("/tokenize", {"prompt": "x" * 4_000_000}),
    post_bytes("/tokenize", {"prompt": "x" * 1_000_000}),
    post_bytes("/v1/completions", {"prompt": "Hi", "max_tokens": 2, "logit_bias": {str(i): -100 for i in range(4096)}}),
    post_bytes("/tokenize", {"prompt": "\u202e" * 50_000}),
    post_bytes("/detokenize", {"tokens": list(range(-3, 3))}),
]


async def malformed(port):
    async def one(data):
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            return "refused"
        try:
            writer.write(data)
            await writer.drain()
            status, _, _ = await asyncio.wait_for(read_response(reader), 60)
            return str(status)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            return "closed"
        except asyncio.TimeoutError:
            return "no answer"
        finally:
            writer.close()
    return [await one(data) for data in MALFORMED]


async def abandoned_streams(port, count):
    """Streams closed after their first chunk: each must end as cancelled and free its slot."""
    async def one(seed):
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(post_bytes("/v1/completions", {"prompt": "Once", "max_tokens": 100000, "stream": True, "seed": seed}))
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 60)
        await asyncio.wait_for(reader.read(200), 60)
        writer.transport.abort()
        return b" 200 " in status
    # Those beyond the slots and the queue are answered 503 and do not count.
    results = await asyncio.gather(*(one(seed) for seed in range(count)), return_exceptions=True)
    return sum(1 for result in results if result is True)


async def unread_streams(port, count, hold):
    """Streams whose client never reads (a tiny receive buffer that fills): they hold their slots (2 of the 4) while
    they generate, and must not stall the others."""
    sockets = []
    for seed in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, port))
        s.sendall(post_bytes("/v1/completions", {"prompt": "Once", "max_tokens": 2000, "stream": True, "seed": seed,
                                                 "logprobs": 5}))
        sockets.append(s)
    await asyncio.sleep(hold)
    for s in sockets:
        s.close()
    return count


async def wait_for_free_slots(port, seconds=30):
    start = time.monotonic()
    state = {}
    while time.monotonic() - start < seconds:
        state = await health(port)
        if state.get("slots_busy") == 0 and state.get("queued") == 0:
            return state, time.monotonic() - start
        await asyncio.sleep(0.05)
    return state, None


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def main_async(args, port, pid):
    results = []
    ok = True

    async def phase(name, work):
        nonlocal ok
        client = NormalClient(port)
        rss_before = rss_mib(pid)
        task = asyncio.create_task(client.run())
        start = time.monotonic()
        outcome = await work
        elapsed = time.monotonic() - start
        await asyncio.sleep(0.5)
        client.running = False
        await task
        state, freed_after = await wait_for_free_slots(port)
        row = {"phase": name, "seconds": round(elapsed, 1), "outcome": outcome,
               "normal_requests": len(client.latencies), "normal_failures": client.failures,
               "p50_ms": round(1000 * percentile(client.latencies, 0.5), 1),
               "p95_ms": round(1000 * percentile(client.latencies, 0.95), 1),
               "answers": sorted(client.answers), "rss_before_mib": round(rss_before, 1),
               "rss_after_mib": round(rss_mib(pid), 1), "open_files_after": open_files(pid),
               "slots_free_after_s": None if freed_after is None else round(freed_after, 2), "health": state}
        results.append(row)
        problems = []
        if client.failures:
            problems.append(f"{client.failures} normal requests failed")
        if len(client.answers) > 1:
            problems.append(f"the normal answer changed: {client.answers}")
        if freed_after is None:
            problems.append("slots still busy")
        if problems:
            ok = False
        print(f"{name:18} {elapsed:6.1f} s  normal: {len(client.latencies):4} req p50 {row['p50_ms']:7.1f} ms "
              f"p95 {row['p95_ms']:7.1f} ms  RSS {row['rss_before_mib']:.0f}->{row['rss_after_mib']:.0f} MiB  "
              f"fds {row['open_files_after']}  {'; '.join(problems) or 'ok'}", file=sys.stderr)
        print(f"{'':18} outcome: {summarise(outcome)}", file=sys.stderr)
        return outcome

    await phase("baseline", asyncio.sleep(3))
    await phase("slow headers", slow_headers(port, args.slow, args.timeout + 4))
    await phase("slow bodies", slow_bodies(port, args.slow // 2, args.timeout + 4))
    over = await phase("oversized bodies", oversized(port, 8, 20))
    if not all(entry.startswith("413") or entry.startswith("closed") for entry in over):
        ok = False
    idle = await phase("idle connections", idle_connections(port, args.idle, args.timeout + 3))
    if idle["opened"] < args.idle or idle["closed_by_server"] < idle["opened"]:
        ok = False
    bad = await phase("malformed", malformed(port))
    if any(entry in ("no answer",) or entry.startswith("5") for entry in bad):
        ok = False
    before = (await health(port))["requests_cancelled"]
    abandoned = await phase("abandoned streams", abandoned_streams(port, 24))
    cancelled = (await health(port))["requests_cancelled"] - before
    results[-1]["cancelled"] = cancelled
    if cancelled < abandoned:
        ok = False
        print(f"  only {cancelled} of {abandoned} abandoned streams ended as cancelled", file=sys.stderr)
    await phase("unread streams", unread_streams(port, 2, 6))
    await phase("after", asyncio.sleep(3))
    answers = {answer for row in results for answer in row["answers"]}
    if len(answers) != 1:
        ok = False
    return ok, results


def summarise(outcome):
    if isinstance(outcome, list):
        counts = {}
        for entry in outcome:
            counts[entry] = counts.get(entry, 0) + 1
        return ", ".join(f"{key} x{value}" for key, value in sorted(counts.items(), key=lambda item: -item[1]))
    return str(outcome)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hone", default=os.path.join(REPO, ".build/debug/hone"))
    parser.add_argument("--model", default=os.path.join(REPO, "models/hone-tiny"))
    parser.add_argument("--port", type=int, help="a server already running on 127.0.0.1 (not started here)")
    parser.add_argument("--timeout", type=float, default=3, help="the server's --timeout (seconds)")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections held at once")
    parser.add_argument("--slow", type=int, default=200, help="slow-header connections (half as many slow bodies)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    # The client side needs a descriptor per connection too.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle + 512)), hard))
    server = None
    port, pid = args.port, None
    if port is None:
        port = free_port()
        server = subprocess.Popen([args.hone, "serve", "--model", args.model, "--port", str(port), "--parallel", "4",
                                   "--timeout", str(args.timeout), "--threads", "1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid = server.pid
        for _ in range(600):
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
    try:
        ok, results = asyncio.run(asyncio.wait_for(main_async(args, port, pid), 900))
        alive = server is None or server.poll() is None
        if not alive:
            ok = False
            print("the server died", file=sys.stderr)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump({"ok": ok, "server_alive": alive, "phases": results}, handle, indent=1, default=str)
        print("abuse: " + ("every check held" if ok else "FAILED"), file=sys.stderr)
        return 0 if ok else 1
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    sys.exit(main())
