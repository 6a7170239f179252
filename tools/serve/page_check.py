#!/usr/bin/env python3
"""The chat page in a real headless browser (Debian's `chromium`): starts `hone serve`, opens
/?message=..., which sends the message at once, lets the answer stream in, then reads the page's DOM (the answer
must be there, finished, and not an error) and takes a screenshot.

    python3 tools/serve/page_check.py [--hone .build/debug/hone] [--model models/hone-tiny] [--out /tmp/hone-page]

The screenshot (OUT/chat-page.png) is a test artefact: it is not committed. Without chromium the check is skipped
(`apt-get install chromium` provides it).
"""
import argparse
import base64
import fcntl
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browse(browser, url, profile, seconds=60):
    """Opens `url` in headless chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
    JSON messages ending in NUL on file descriptors 3 and 4), waits in real time until the answer is marked done
    (or `seconds` pass), and returns the page's HTML and a PNG screenshot. Waiting on the page itself, not on
    headless chromium's virtual-time budget: that budget could run out while the answer still streamed in."""
    to_browser_read, to_browser_write = os.pipe()
    from_browser_read, from_browser_write = os.pipe()

    def child_fds():
        # Moved above 3 and 4 first, so neither end is overwritten by the other; dup2 makes the copies inheritable
        # (the pipes' own descriptors close on exec).
        high_read = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
        high_write = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
        os.dup2(high_read, 3)
        os.dup2(high_write, 4)

    process = subprocess.Popen([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                "--no-first-run", "--user-data-dir=" + profile, "--window-size=1000,700",
                                "--remote-debugging-pipe", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=child_fds,
                               close_fds=False)
    os.close(to_browser_read)
    os.close(from_browser_write)
    pending = b""
    counter = [0]

    def call(method, params=None, session=None):
        counter[0] += 1
        message = {"id": counter[0], "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(to_browser_write, json.dumps(message).encode() + b"\0")
        nonlocal pending
        while True:
            while b"\0" not in pending:
                chunk = os.read(from_browser_read, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                pending += chunk
            raw, pending = pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == counter[0]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    try:
        target = call("Target.createTarget", {"url": url})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        script = ("document.querySelector('.message.assistant[data-done]') || document.querySelector('.message.error')"
                  " ? document.documentElement.outerHTML : ''")
        dom = ""
        deadline = time.time() + seconds
        while time.time() < deadline:
            dom = call("Runtime.evaluate", {"expression": script, "returnByValue": True}, session)["result"].get("value", "")
            if dom:
                break
            time.sleep(0.2)
        if not dom:
            dom = call("Runtime.evaluate", {"expression": "document.documentElement.outerHTML", "returnByValue": True},
                       session)["result"].get("value", "")
        png = base64.b64decode(call("Page.captureScreenshot", {"format": "png"}, session)["data"])
        return dom, png
    finally:
        os.close(to_browser_write)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        os.close(from_browser_read)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hone", default=os.path.join(REPO, ".build/debug/hone"))
    parser.add_argument("--model", default=os.path.join(REPO, "models/hone-tiny"))
    parser.add_argument("--out", default="/tmp/hone-page")
    parser.add_argument("--message", default="Write a short poem about the sea.")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("skip: chromium is not installed (apt-get install chromium)")
        return 0
    os.makedirs(args.out, exist_ok=True)
    port = free_port()
    server = subprocess.Popen([args.hone, "serve", "--model", args.model, "--port", str(port), "--threads", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/?max_tokens=24&temperature=0&message={urllib.parse.quote(args.message)}"
        dom, screenshot_png = browse(browser, url, os.path.join(args.out, "profile"))
        answers = re.findall(r'<div class="message assistant"( data-done="true")?>(.*?)<div class="meta">(.*?)</div>',
                             dom, re.S)
        user = re.findall(r'<div class="message user">(.*?)</div>', dom, re.S)
        with open(os.path.join(args.out, "chat-page.html"), "w") as f:
            f.write(dom)
        screenshot = os.path.join(args.out, "chat-page.png")
        if screenshot_png:
            with open(screenshot, "wb") as f:
                f.write(screenshot_png)
    finally:
        server.terminate()
        # Read stderr while waiting: a server that writes more than a pipe holds at exit (a sanitizer's report)
        # would otherwise block on the pipe and never exit.
        _, log = server.communicate(timeout=20)
    ok = (len(user) == 1 and html.unescape(user[0]) == args.message and len(answers) == 1 and answers[0][0]
          and answers[0][1].strip() and "POST /v1/chat/completions 200" in log)
    print(f"user message: {user[:1]}")
    print(f"streamed answer: {answers[0][1][:200]!r} ({answers[0][2]})" if answers else "no answer in the page")
    print(f"screenshot: {screenshot} ({os.path.getsize(screenshot) if os.path.exists(screenshot) else 0} bytes)")
    print("chat page: ok" if ok else "chat page: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
