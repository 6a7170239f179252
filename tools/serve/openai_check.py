#!/usr/bin/env python3
"""`hone serve` with the real `openai` client: starts a server on a free loopback port, then lists models, chats
(whole and streamed), completes text, and checks that errors arrive as the client's own exception types.

    python tools/serve/openai_check.py --hone .build/debug/hone [--model models/hone-tiny]

Prints one line per check and "openai client: all checks passed"; exits 1 on the first failure.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import openai

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(hone, model, key, extra=()):
    port = free_port()
    process = subprocess.Popen([hone, "serve", "--model", model, "--port", str(port), "--parallel", "2",
                                "--threads", "1", "--api-key", key, *extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"hone serve exited: {process.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("hone serve did not start in 60 s")


def requests_json(port, key, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name}: {detail}")
        raise SystemExit(1)
    print(f"ok   {name}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hone", default=os.path.join(REPO, ".build/debug/hone"))
    parser.add_argument("--model", default=os.path.join(REPO, "models/hone-tiny"))
    args = parser.parse_args()
    key = "test-key"
    process, port = start_server(args.hone, args.model, key)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
        models = [m.id for m in client.models.list().data]
        check("models.list", len(models) == 1, models)
        name = models[0]

        chat = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "Name a color."}],
                                              max_tokens=16, temperature=0)
        text = chat.choices[0].message.content
        check("chat.completions", chat.choices[0].message.role == "assistant" and isinstance(text, str) and text,
              chat)
        check("chat usage", chat.usage.completion_tokens > 0 and chat.usage.total_tokens ==
              chat.usage.prompt_tokens + chat.usage.completion_tokens, chat.usage)

        stream = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "Name a color."}],
                                                max_tokens=16, temperature=0, stream=True,
                                                stream_options={"include_usage": True})
        pieces, reasons, usage = [], [], None
        for chunk in stream:
            if chunk.usage:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                if choice.finish_reason:
                    reasons.append(choice.finish_reason)
        check("chat stream equals the whole answer", "".join(pieces) == text, ("".join(pieces), text))
        check("chat stream finish and usage", reasons == [chat.choices[0].finish_reason] and usage is not None
              and usage.completion_tokens == chat.usage.completion_tokens, (reasons, usage))

        completion = client.completions.create(model=name, prompt=["Once upon a time", "Water boils at"],
                                               max_tokens=8, temperature=0, logprobs=2, echo=True)
        check("completions", len(completion.choices) == 2 and completion.choices[0].text.startswith("Once upon a time"),
              completion)
        lp = completion.choices[0].logprobs
        check("completions logprobs", lp.token_logprobs[0] is None and len(lp.tokens) == len(lp.token_logprobs)
              == len(lp.top_logprobs) == len(lp.text_offset), lp)

        streamed = "".join(c.choices[0].text for c in client.completions.create(
            model=name, prompt="Once upon a time", max_tokens=8, temperature=0, stream=True) if c.choices)
        whole = client.completions.create(model=name, prompt="Once upon a time", max_tokens=8, temperature=0)
        check("completions stream", streamed == whole.choices[0].text, (streamed, whole.choices[0].text))

        # The client keeps its connection between requests (keep-alive): both answers come from one local port.
        first = client.completions.with_raw_response.create(model=name, prompt="Hi", max_tokens=2, temperature=0)
        second = client.completions.with_raw_response.create(model=name, prompt="Hi", max_tokens=2, temperature=0)
        ports = [r.http_response.extensions["network_stream"].get_extra_info("client_addr") for r in (first, second)]
        check("two requests over one connection", ports[0] == ports[1] and first.http_response.headers.get("connection") != "close",
              (ports, first.http_response.headers))

        # logit_bias as the client sends it ({"id": bias}): banning the first greedy token changes the answer.
        tokens = client.completions.create(model=name, prompt="Once upon a time", max_tokens=4, temperature=0, logprobs=0)
        banned_text = tokens.choices[0].logprobs.tokens[0]
        # Its id: the prompt with that token's text appended tokenizes to the prompt's ids and one more.
        prompt_ids = requests_json(port, key, "/tokenize", {"prompt": "Once upon a time"})["tokens"]
        banned = requests_json(port, key, "/tokenize", {"prompt": "Once upon a time" + banned_text})["tokens"][len(prompt_ids)]
        biased = client.completions.create(model=name, prompt="Once upon a time", max_tokens=4, temperature=0, logprobs=0,
                                           logit_bias={str(banned): -100})
        check("logit_bias bans a token", biased.choices[0].logprobs.tokens[0] != banned_text,
              (banned, banned_text, biased.choices[0].logprobs.tokens))

        try:
            client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
            check("unknown model raises NotFoundError", False)
        except openai.NotFoundError as error:
            check("unknown model raises NotFoundError", error.code == "model_not_found", error)
        try:
            client.completions.create(model=name, prompt="Hi", max_tokens=2, temperature=-1)
            check("bad field raises BadRequestError", False)
        except openai.BadRequestError as error:
            check("bad field raises BadRequestError", error.param == "temperature", error)
        try:
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0).models.list()
            check("wrong key raises AuthenticationError", False)
        except openai.AuthenticationError:
            check("wrong key raises AuthenticationError", True)
    finally:
        process.send_signal(2)  # SIGINT: a clean stop
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            code = None
        log = process.stderr.read()
    check("SIGINT stops the server cleanly", code == 0, (code, log[-2000:]))
    check("one log line per request", "POST /v1/chat/completions 200" in log, log[-2000:])
    print("openai client: all checks passed")


if __name__ == "__main__":
    sys.exit(main())
