#!/usr/bin/env python3
"""The chat page in a real headless browser (Debian's `chromium`): starts `hone serve`, opens
/?message=..., which sends the message at once, lets the answer stream in, then reads the page's DOM (the answer
must be there, finished, and not an error) and takes a screenshot.

    python3 tools/serve/page_check.py [--hone .build/debug/hone] [--model models/hone-tiny] [--out /tmp/hone-page]

The screenshot (OUT/chat-page.png) is a test artefact: it is not committed. Without chromium the check is skipped
(`apt-get install chromium` provides it).
"""
import argparse
import html
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
        common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--no-first-run", "--user-data-dir=" + os.path.join(args.out, "profile"),
                  "--virtual-time-budget=60000", "--window-size=1000,700"]
        # Headless chromium's virtual time can run out while the answer still streams on a loaded machine: the
        # page is loaded afresh up to four times until a dump shows the finished answer.
        for _ in range(4):
            dom = subprocess.run(common + ["--dump-dom", url], capture_output=True, text=True, timeout=300).stdout
            answers = re.findall(r'<div class="message assistant"( data-done="true")?>(.*?)<div class="meta">(.*?)</div>',
                                 dom, re.S)
            user = re.findall(r'<div class="message user">(.*?)</div>', dom, re.S)
            if answers and answers[0][0]:
                break
        with open(os.path.join(args.out, "chat-page.html"), "w") as f:
            f.write(dom)
        screenshot = os.path.join(args.out, "chat-page.png")
        subprocess.run(common + ["--screenshot=" + screenshot, url], capture_output=True, timeout=300)
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
