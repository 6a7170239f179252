#!/usr/bin/env python3
"""Build the chat-template fixture: transformers' own rendering of every real chat template in
../shared/data/chat-templates/*.jinja for a fixed set of conversations.

Output (relative to the repository root):
  Tests/HoneKitTests/Fixtures/templates/chat_template_renders.json
  (in the standalone jinja-dev package: Tests/JinjaTests/Fixtures/templates/chat_template_renders.json;
  the script writes to whichever of the two test folders exists)

Rerun:  tools/oracle/.venv/bin/python tools/oracle/make_template_fixtures.py
Needs transformers 5.23.0 and Jinja2 3.1.6 (tools/oracle/requirements.txt); no torch, no network.

How a case is rendered
----------------------
Exactly as `PreTrainedTokenizerBase.apply_chat_template(conversation, tools=..., tokenize=False,
add_generation_prompt=...)` does it in transformers 5.23, minus the tokenizer: keys whose value is None are
dropped from every message, then `transformers.utils.chat_template_utils.render_jinja_template` is called
with `{**special_tokens_map}` as extra kwargs. The special tokens map is fixed to
{"bos_token": "<s>", "eos_token": "</s>"} for every template (a real tokenizer would pass its own strings;
the Swift side passes the same two). `render_jinja_template` compiles with transformers' environment
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, {% generation %}, its own
`tojson`, `raise_exception`, `strftime_now`, `dict`, `namespace`) and aliases reasoning fields
(`reasoning_content` / `thinking` / `reasoning`), so everything the template sees is what transformers
hands it.

`strftime_now` reads `datetime.now()` from chat_template_utils' module globals; that name is replaced by a
subclass whose `now()` returns FIXED_NOW, recorded in the fixture as "now" (naive local time, ISO 8601).

Layout of the JSON (written with ensure_ascii=False, compact separators)
------------------------------------------------------------------------
{
  "generator": "tools/oracle/make_template_fixtures.py", "versions": {...},
  "now": "2025-03-07T14:05:09", "bos_token": "<s>", "eos_token": "</s>",
  "conversations": [[message, ...], ...],          # each conversation stored once
  "tools": [[tool schema, ...], ...],              # tool lists, referenced by index
  "cases": [{"conversation": i, "add_generation_prompt": b, "tools": j or null}, ...],
  "templates": [
    {"name": "X.jinja", "sha256": "...", "bytes": n,   # the template file as rendered (size checked by the test)
     "compile_error": null or {"kind": "TemplateSyntaxError", "message": "...", "line": n},
     "results": [ one per case, same order as "cases":
        {"text": "..."}                                      rendered output
        {"same_as": k}                                       same text as case k of this template
        {"error": {"kind": "TemplateError", "message": "..."}}  what render raised
     ]}
  ]
}
An error of kind "TemplateError" (the base class itself) is what `raise_exception(msg)` raises; its
message is msg exactly. Other kinds (UndefinedError, TypeError, ...) are template bugs that jinja2 reports;
the Swift side only has to fail too.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sys
from pathlib import Path

import jinja2
import transformers
from transformers.utils import chat_template_utils as ctu

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO.parent / "shared" / "data" / "chat-templates"

FIXED_NOW = _dt.datetime(2025, 3, 7, 14, 5, 9)
SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>"}


class _FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):  # noqa: D401 - mirrors datetime.now
        return FIXED_NOW


ctu.datetime = _FixedDatetime


def fixture_path() -> Path:
    for tests in ("HoneKitTests", "JinjaTests"):
        if (REPO / "Tests" / tests).is_dir():
            return REPO / "Tests" / tests / "Fixtures" / "templates" / "chat_template_renders.json"
    sys.exit("no Tests/HoneKitTests or Tests/JinjaTests folder under " + str(REPO))


# ---------------------------------------------------------------------------
# Conversations
# ---------------------------------------------------------------------------

SYSTEM = "You are a helpful assistant. Answer briefly."
TURNS = [
    ("Hello! What's 2+2?", "2 + 2 = 4."),
    ("Thanks. Now write a haiku about the sea,\nplease.",
     "  Waves fold into foam —\nsalt wind carries gull voices,\nthe tide keeps its time.  "),
    ("Translate \"good morning\" to French & German.", "Bonjour / Guten Morgen"),
    ("  What is the capital of Japan?  \n", "Tokyo.\n"),
]


def alternating(count: int) -> list[dict]:
    """`count` messages user, assistant, user, ... drawn from TURNS in order."""
    out = []
    for i in range(count):
        user, assistant = TURNS[i // 2]
        out.append({"role": "user", "content": user} if i % 2 == 0 else {"role": "assistant", "content": assistant})
    return out


def conversations() -> list[list[dict]]:
    convs = []
    # Plain conversations: without and with a system message; 1, 2 and 4 turns, ending with the user
    # (1, 3, 7 messages) or with the assistant (2, 4, 8 messages).
    for system in (False, True):
        for count in (1, 2, 3, 4, 7, 8):
            msgs = alternating(count)
            if system:
                msgs = [{"role": "system", "content": SYSTEM}] + msgs
            convs.append(msgs)
    # An assistant turn with reasoning (transformers copies it to `thinking` and `reasoning_content`).
    convs.append([
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Is 17 prime?"},
        {"role": "assistant", "content": "Yes, 17 is prime.",
         "reasoning_content": "17 is not divisible by 2, 3 or 4, so it is prime."},
        {"role": "user", "content": "And 21?"},
    ])
    # Content as a list of typed parts (what multimodal-aware templates iterate over).
    convs.append([
        {"role": "user", "content": [{"type": "text", "text": "Describe the weather in one word."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Sunny."}]},
        {"role": "user", "content": [{"type": "text", "text": "And "}, {"type": "text", "text": "tomorrow?"}]},
    ])
    # Text that a careless template could escape, trim or re-encode.
    convs.append([
        {"role": "system", "content": "  Keep <b>tags</b> & \"quotes\" 'as is'.\n"},
        {"role": "user", "content": "Ünïcödé ✓ 🙂 {{ not a tag }} {% neither %}\ttab\n\nend"},
    ])
    # A tool call answered by a tool, then the final answer (assistant content None is dropped, as
    # apply_chat_template drops None-valued keys).
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}
    convs.append([
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
         "content": "{\"temperature\": 18, \"condition\": \"sunny\"}"},
        {"role": "assistant", "content": "It is 18 °C and sunny in Paris."},
    ])
    # Two parallel calls with text before them, ending on the tool results (the model answers next).
    second = {"id": "call_2", "type": "function",
              "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    convs.append([
        {"role": "user", "content": "Compare Paris and Oslo."},
        {"role": "assistant", "content": "Let me check both.", "tool_calls": [call, second]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18 C, sunny"},
        {"role": "tool", "tool_call_id": "call_2", "name": "get_weather", "content": "4 C, rain"},
    ])
    # A call whose arguments are a JSON string and whose id is 9 alphanumerics (what Mistral's templates
    # insist on), with empty assistant content.
    convs.append([
        {"role": "user", "content": "Weather in Rome?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "a1b2c3d4e", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
        {"role": "tool", "tool_call_id": "a1b2c3d4e", "name": "get_weather", "content": "22 C"},
    ])
    return convs


TOOLS = [[{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. \"Paris\"."},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}]]


def cases(convs: list[list[dict]]) -> list[dict]:
    out = []
    for i in range(len(convs) - 3):
        for gen in (False, True):
            out.append({"conversation": i, "add_generation_prompt": gen, "tools": None})
    # Tool lists with the two simplest conversations (one user message, without and with a system message),
    # and the three tool-call conversations (the last three).
    for i in (0, 6):
        out.append({"conversation": i, "add_generation_prompt": True, "tools": 0})
    out.append({"conversation": len(convs) - 3, "add_generation_prompt": False, "tools": 0})
    out.append({"conversation": len(convs) - 2, "add_generation_prompt": True, "tools": 0})
    out.append({"conversation": len(convs) - 1, "add_generation_prompt": True, "tools": 0})
    return out


# ---------------------------------------------------------------------------
# Rendering through transformers
# ---------------------------------------------------------------------------

def render(template: str, messages: list[dict], gen: bool, tools) -> str:
    # apply_chat_template drops None-valued keys first; ours have none, but keep the step for fidelity.
    messages = [{k: v for k, v in m.items() if v is not None} for m in messages]
    rendered, _ = ctu.render_jinja_template(
        conversations=[json.loads(json.dumps(messages))],  # a fresh copy: templates may not mutate ours
        tools=json.loads(json.dumps(tools)) if tools is not None else None,
        documents=None,
        chat_template=template,
        add_generation_prompt=gen,
        **SPECIAL_TOKENS,
    )
    return rendered[0]


def main() -> None:
    if not TEMPLATES.is_dir():
        sys.exit(f"missing {TEMPLATES}")
    convs = conversations()
    all_cases = cases(convs)
    templates = []
    counts = {"text": 0, "error": 0, "compile_error": 0}
    for path in sorted(TEMPLATES.glob("*.jinja")):
        source = path.read_text(encoding="utf-8")
        entry = {"name": path.name, "sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
                 "bytes": len(source.encode("utf-8")),
                 "compile_error": None, "results": []}
        try:
            ctu._compile_jinja_template(source)
        except jinja2.TemplateSyntaxError as e:
            entry["compile_error"] = {"kind": type(e).__name__, "message": e.message, "line": e.lineno}
            counts["compile_error"] += 1
            templates.append(entry)
            continue
        seen: dict[str, int] = {}
        for k, case in enumerate(all_cases):
            tools = TOOLS[case["tools"]] if case["tools"] is not None else None
            try:
                text = render(source, convs[case["conversation"]], case["add_generation_prompt"], tools)
            except Exception as e:  # noqa: BLE001 - every failure is recorded, not only jinja2's
                message = e.message if isinstance(e, jinja2.TemplateError) else str(e)
                entry["results"].append({"error": {"kind": type(e).__name__, "message": message}})
                counts["error"] += 1
                continue
            counts["text"] += 1
            if text in seen:
                entry["results"].append({"same_as": seen[text]})
            else:
                seen[text] = k
                entry["results"].append({"text": text})
        templates.append(entry)

    doc = {
        "generator": "tools/oracle/make_template_fixtures.py",
        "versions": {"transformers": transformers.__version__, "jinja2": jinja2.__version__,
                     "python": sys.version.split()[0]},
        "now": FIXED_NOW.isoformat(),
        **SPECIAL_TOKENS,
        "conversations": convs,
        "tools": TOOLS,
        "cases": all_cases,
        "templates": templates,
    }
    out = fixture_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), indent=None)
    out.write_text(data + "\n", encoding="utf-8")
    print(f"{out.relative_to(REPO)}: {len(templates)} templates x {len(all_cases)} cases, "
          f"{counts['text']} texts, {counts['error']} render errors, {counts['compile_error']} compile errors, "
          f"{len(data.encode('utf-8'))} bytes")


if __name__ == "__main__":
    main()
