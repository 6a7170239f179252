#!/usr/bin/env python3
"""Chat templates rendered with extra keyword arguments (Tests/HoneKitTests/Fixtures/templates/chat_template_kwargs.json).

transformers' `apply_chat_template(conversation, add_generation_prompt=True, enable_thinking=...)` passes its extra
keyword arguments to the template as variables; llama-server and vLLM take them as `chat_template_kwargs`. Every
template in ../shared/data/chat-templates that reads `enable_thinking` is rendered here, through the same
`render_jinja_template` call as make_template_fixtures.py, for one conversation with a system message and for one
without, with enable_thinking false, true and absent. Errors are recorded as such.

Rerun:  tools/oracle/.venv/bin/python tools/oracle/make_template_kwargs_fixtures.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_template_fixtures as mt  # noqa: E402  (patches strftime_now's clock on import)
from oracle_common import FIXTURES, write_json  # noqa: E402

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour."},
     {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "Another?"}],
]
SETTINGS = [{"enable_thinking": False}, {"enable_thinking": True}, {}]


def render(source: str, messages: list[dict], kwargs: dict) -> str:
    rendered, _ = mt.ctu.render_jinja_template(
        conversations=[json.loads(json.dumps(messages))], tools=None, documents=None, chat_template=source,
        add_generation_prompt=True, **mt.SPECIAL_TOKENS, **kwargs)
    return rendered[0]


def main() -> None:
    cases = []
    for path in sorted(mt.TEMPLATES.glob("*.jinja")):
        source = path.read_text(encoding="utf-8")
        if "enable_thinking" not in source:
            continue
        for index, conversation in enumerate(CONVERSATIONS):
            for kwargs in SETTINGS:
                case = {"template": path.name, "conversation": index, "kwargs": kwargs}
                try:
                    case["text"] = render(source, conversation, kwargs)
                except Exception as error:  # noqa: BLE001 - recorded, as the main fixture does
                    case["error"] = str(getattr(error, "message", error))
                cases.append(case)
    texts = sum(1 for case in cases if "text" in case)
    print(f"{len(cases)} cases, {texts} rendered, {len(cases) - texts} errors")
    write_json(FIXTURES / "templates" / "chat_template_kwargs.json",
               {"generator": "tools/oracle/make_template_kwargs_fixtures.py", "bos_token": mt.SPECIAL_TOKENS["bos_token"],
                "eos_token": mt.SPECIAL_TOKENS["eos_token"], "now": mt.FIXED_NOW.isoformat(),
                "conversations": CONVERSATIONS, "cases": cases})


if __name__ == "__main__":
    main()
