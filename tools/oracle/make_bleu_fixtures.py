#!/usr/bin/env python3
"""Build Hone's BLEU fixtures with NLTK's own sentence_bleu (default weights, no smoothing).

Output: Tests/HoneKitTests/Fixtures/hh_eval/bleu.json
  "strings": [{hypothesis, reference, bleu}]   PRO's call: sentence_bleu([ref.strip()], hyp.strip()) on strings,
                                               i.e. over characters; hand-made edge cases and real HH-RLHF replies
                                               (the rejected reply scored against the chosen one, first records of
                                               both test files in ../shared/data/hh_rlhf)
  "tokens":  [{references, hypothesis, bleu}]  word lists, several references
Every value is a string, Python's repr (shortest round-trip): the Swift test parses it with Double(String)
(strtod; JSONSerialization can round numbers off by an ulp) and compares exactly.

Rerun:  tools/oracle/.venv/bin/python tools/oracle/make_bleu_fixtures.py
"""

import gzip
import json
import warnings

import nltk
from nltk.translate.bleu_score import sentence_bleu

from oracle_common import REPO, FIXTURES

warnings.filterwarnings("ignore")  # NLTK warns on zero n-gram counts; the value it returns is what is recorded
SHARED = REPO.parent / "shared" / "data" / "hh_rlhf"
PER_FILE = 60


def reply(chosen: str, rejected: str):
    """The final replies after the shared prompt (cut at the last "\n\nAssistant:" inside the common prefix)."""
    common = 0
    while common < min(len(chosen), len(rejected)) and chosen[common] == rejected[common]:
        common += 1
    end = chosen.rfind("\n\nAssistant:", 0, common)
    if end < 0 or end + len("\n\nAssistant:") > common:
        return None
    cut = end + len("\n\nAssistant:")
    return chosen[cut:], rejected[cut:]


def main() -> None:
    strings = []
    hand = [
        ("The cat sat on the mat.", "The cat sat on the mat."),
        ("The cat is on the mat.", "The cat sat on the mat."),
        ("", "Anything at all."),
        ("xyz", "abc"),
        ("ab", "abc"),
        ("abc", "ab"),
        ("qqqq", "qqqqqq"),
        ("  padded reply \n", "\tpadded reply"),
        ("Café crème, s'il vous plaît ☕", "Un café crème ☕ s'il vous plaît"),
        ("I'm not sure.", "I don't know, sorry."),
        ("abcd", "dcba"),
        ("aaaaaaaaab", "ab"),
    ]
    for hypothesis, reference in hand:
        strings.append({"hypothesis": hypothesis, "reference": reference,
                        "bleu": repr(float(sentence_bleu([reference.strip()], hypothesis.strip())))})
    for name in ["harmless-base", "helpful-base"]:
        path = SHARED / name / "test.jsonl.gz"
        taken = 0
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                pair = reply(record["chosen"], record["rejected"])
                if pair is None:
                    continue
                chosen, rejected = pair
                strings.append({"hypothesis": rejected, "reference": chosen,
                                "bleu": repr(float(sentence_bleu([chosen.strip()], rejected.strip())))})
                taken += 1
                if taken == PER_FILE:
                    break
    tokens = []
    for references, hypothesis in [
        ([["the", "cat", "sat", "on", "the", "mat"]], ["the", "cat", "sat", "on", "the", "mat"]),
        ([["the", "cat", "sat", "on", "the", "mat"]], ["the", "cat", "is", "on", "the", "mat"]),
        ([["the", "cat", "sat", "on", "the", "mat"], ["there", "is", "a", "cat", "on", "the", "mat"]],
         ["the", "the", "the", "the", "the", "the", "the"]),
        ([["a", "b", "c", "d", "e"], ["a", "b", "c"]], ["a", "b", "c", "d"]),
        ([["a", "b", "c", "d", "e", "f"], ["a", "b"]], ["a", "b", "c", "d"]),
        ([["it", "is", "a", "guide", "to", "action", "which", "ensures", "that", "the", "military", "always",
           "obeys", "the", "commands", "of", "the", "party"]],
         ["it", "is", "a", "guide", "to", "action", "that", "ensures", "that", "the", "military", "will",
          "forever", "heed", "party", "commands"]),
        ([["x", "y"]], ["z"]),
    ]:
        tokens.append({"references": references, "hypothesis": hypothesis,
                       "bleu": repr(float(sentence_bleu(references, hypothesis)))})
    out = FIXTURES / "hh_eval"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bleu.json", "w", encoding="utf-8") as f:
        json.dump({"nltk": nltk.__version__, "strings": strings, "tokens": tokens}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(len(strings), "string cases,", len(tokens), "token cases;",
          sum(1 for s in strings if 0 < float(s["bleu"]) < 1e-50), "tiny (a zero n-gram count)",
          sum(1 for s in strings if float(s["bleu"]) == 0), "zero")


if __name__ == "__main__":
    main()
