#!/usr/bin/env python3
"""Build the Jinja language fixture: small hand-written templates, each rendered by real jinja2 in
transformers' chat-template environment, so the Swift interpreter's unit tests compare against jinja2's
actual output instead of expectations written by hand.

Output (relative to the repository root):
  Tests/HoneKitTests/Fixtures/templates/jinja_language_cases.json
  (in the standalone jinja-dev package: Tests/JinjaTests/Fixtures/templates/jinja_language_cases.json)

Rerun:  tools/oracle/.venv/bin/python tools/oracle/make_jinja_language_fixtures.py
Needs transformers 5.23.0 and Jinja2 3.1.6; no torch, no network.

Each case is rendered with `transformers.utils.chat_template_utils._compile_jinja_template(template)`
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, {% generation %}, transformers'
`tojson`, `raise_exception`, `strftime_now`, `dict`, `namespace`). Cases marked "plain" use the same
environment with trim_blocks and lstrip_blocks off (jinja2's defaults), to test whitespace control on its own.
`strftime_now` sees FIXED_NOW.

Layout: {"now": "...", "cases": [{"name", "template", "context", "plain", "output" | "error": {"kind",
"message"}}]}. The Swift test requires the exact output, or an error (with the exact message for
raise_exception, kind "TemplateError"; and for syntax errors, kind "TemplateSyntaxError", the same line).
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path

import jinja2
from transformers.utils import chat_template_utils as ctu

REPO = Path(__file__).resolve().parents[2]
FIXED_NOW = _dt.datetime(2025, 3, 7, 14, 5, 9)


class _FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW


ctu.datetime = _FixedDatetime

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!"},
]

# (name, template, context, plain)
CASES: list[tuple[str, str, dict, bool]] = [
    # --- printing values the Python way
    ("print list", "{{ [1, 'a', \"it's\", none, true, false, 1.0, 2.5] }}", {}, False),
    ("print dict", "{{ {'a': 1, 'b': [1, 2], 'c': {'d': none}} }}", {}, False),
    ("print nested strings", "{{ ['x\\ny', 'tab\\t', 'q\"', \"both'\\\"\"] }}", {}, False),
    ("print scalars", "{{ none }}|{{ true }}|{{ false }}|{{ 3 }}|{{ 3.0 }}|{{ -0.5 }}|{{ 'txt' }}", {}, False),
    ("print floats", "{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ 2.5e-7 }} {{ 123456.789 }}", {}, False),
    ("print undefined", "[{{ missing }}][{{ missing_too|default('d') }}]", {}, False),
    ("print context values", "{{ data }} {{ data.nums }} {{ data['text'] }}",
     {"data": {"text": "héllo", "nums": [1, 2.0, -3], "flag": True, "nothing": None}}, False),
    ("print unicode repr", "{{ ['é', '🙂', '\\x00', '\\u200b', '\\x7f'] }}", {}, False),

    # --- arithmetic and operators
    ("arithmetic", "{{ 7 + 3 }} {{ 7 - 10 }} {{ 7 * 3 }} {{ 7 / 2 }} {{ 10 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} "
     "{{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ 1 + 2.0 }} {{ true + 1 }}", {}, False),
    ("precedence", "{{ 2 + 3 * 4 }} {{ (2 + 3) * 4 }} {{ -2 ** 2 }} {{ 2 * 3 ~ 4 }} {{ 'a' ~ (1 + 1) }} {{ 'a' ~ 2 * 3 }}", {}, False),
    ("error: tilde binds tighter than plus", "{{ 1 + 1 ~ 'x' }}", {}, False),
    ("string concat and repeat", "{{ 'a' + 'b' }} {{ 'ab' * 3 }} {{ 3 * 'x' }} {{ [1] + [2, 3] }} {{ [0] * 3 }}", {}, False),
    ("tilde concat", "{{ 'a' ~ 1 ~ none ~ missing ~ [1] ~ true }}", {}, False),
    ("comparisons", "{{ 1 < 2 }} {{ 2 <= 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} {{ 1 != '1' }} "
     "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ none == none }} {{ true == 1 }}", {}, False),
    ("in operator", "{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'cat' }} "
     "{{ 'x' in missing }} {{ '' in 'abc' }}", {}, False),
    ("and or not", "{{ 0 or 'b' }} {{ 'a' and 'b' }} {{ '' and 'b' }} {{ not 0 }} {{ none or [] }} {{ not missing }}",
     {}, False),
    ("inline if", "{{ 'y' if 1 else 'n' }} {{ 'y' if 0 else 'n' }} [{{ 'y' if 0 }}] {{ 1 if 0 else 2 if 1 else 3 }}",
     {}, False),
    ("unary", "{{ -3 }} {{ +3 }} {{ -(2 + 1) }} {{ - 1.5 }} {{ -x }}", {"x": 4}, False),

    # --- attribute and item access
    ("attribute falls back to item", "{{ m.role }} {{ m['role'] }} {{ m.missing is defined }}",
     {"m": {"role": "user"}}, False),
    ("item falls back to attribute", "{{ m['items'] is defined }} {{ m.items is defined }}", {"m": {"role": "user"}},
     False),
    ("key shadowed by method", "{{ m.items is mapping }} {{ m['items'] }}", {"m": {"items": "mine"}}, False),
    ("dot number", "{{ l.0 }} {{ l.1.k }}", {"l": [5, {"k": "v"}]}, False),
    ("negative index", "{{ l[-1] }} {{ l[-3] }} [{{ l[5] }}] {{ 'abc'[1] }} {{ 'abc'[-1] }}", {"l": [1, 2, 3]}, False),
    ("slices", "{{ l[1:] }} {{ l[:2] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }} {{ l[1:-1] }} {{ 'héllo'[1:4] }} "
     "{{ 'abc'[::-1] }} {{ l[5:] }} {{ l[3:1:-1] }}", {"l": [1, 2, 3, 4, 5]}, False),
    ("none attribute is undefined", "[{{ n.x }}][{{ n['x'] }}] {{ n.x is defined }}", {"n": None}, False),

    # --- statements and scoping
    ("if elif else", "{% for x in [1, 2, 3] %}{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %},{% endfor %}",
     {}, False),
    ("set at top level", "{% set x = 5 %}{% if true %}{% set x = 6 %}{% endif %}{{ x }}", {}, False),
    ("set in loop does not leak", "{% set x = 0 %}{% for i in [1, 2, 3] %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}",
     {}, False),
    ("loop iteration scopes are fresh", "{% for i in [1, 2, 3] %}[{{ y }}]{% set y = i %}{% endfor %}|{{ y }}", {}, False),
    ("read outer before inner set", "{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = 5 %}{{ x }}{% endfor %}{{ x }}",
     {}, False),
    ("namespace carries state out", "{% set ns = namespace(count=0, seen=[]) %}{% for i in [1, 2, 3] %}"
     "{% set ns.count = ns.count + i %}{% set ns.seen = ns.seen + [i] %}{% endfor %}{{ ns.count }} {{ ns.seen }}",
     {}, False),
    ("namespace from dict", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns['a'] }}", {}, False),
    ("set tuple unpacking", "{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set c, d = 'xy' %}{{ c }}{{ d }}", {}, False),
    ("set block", "{% set body %}Hello {{ name }}!{% endset %}[{{ body }}]", {"name": "Ann"}, False),
    ("set block with filter", "{% set body | upper | trim %}  Hello {{ name }}!  {% endset %}[{{ body }}]",
     {"name": "Ann"}, False),
    ("with block", "{% set a = 1 %}{% with a = 2, b = a %}{{ a }}{{ b }}{% endwith %}{{ a }}", {}, False),
    ("set tuple literal", "{% set t = 1, 2 %}{{ t|length }}", {}, False),

    # --- loops
    ("loop variables", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
     "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", {}, False),
    ("loop previtem nextitem", "{% for x in [1, 2, 3] %}({{ loop.previtem }},{{ loop.nextitem }}){% endfor %}", {}, False),
    ("loop cycle", "{% for x in range(5) %}{{ loop.cycle('a', 'b') }}{% endfor %}", {}, False),
    ("loop changed", "{% for x in [1, 1, 2, 2, 1] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}", {}, False),
    ("loop depth", "{% for a in [1] %}{{ loop.depth }}{% for b in [1] %}{{ loop.depth }}{{ loop.depth0 }}{% endfor %}{% endfor %}",
     {}, False),
    ("for else", "{% for x in [] %}x{% else %}empty{% endfor %}{% for x in [1] %}x{% else %}empty{% endfor %}", {}, False),
    ("for filter", "{% for x in range(10) if x is odd %}{{ x }}{{ '/' ~ loop.length if loop.last }},{% endfor %}", {}, False),
    ("for over dict items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {"d": {"b": 1, "a": 2}}, False),
    ("for over dict", "{% for k in d %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": 2}}, False),
    ("for over items filter", "{% for k, v in d | items %}{{ k }}={{ v }};{% endfor %}", {"d": {"x": [1], "y": None}}, False),
    ("for over string", "{% for c in 'héy' %}[{{ c }}]{% endfor %}", {}, False),
    ("for over undefined", "{% for x in missing %}x{% else %}none{% endfor %}", {}, False),
    ("break and continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}"
     "{% endif %}{{ x }}{% endfor %}", {}, False),
    ("nested loop outer", "{% for a in [1, 2] %}{% set outer = loop %}{% for b in [1, 2] %}{{ outer.index }}{{ loop.index }} "
     "{% endfor %}{% endfor %}", {}, False),
    ("recursive loop", "{% for n in tree recursive %}{{ n.name }}{% if n.children %}({{ loop(n.children) }}){% endif %}"
     "{% endfor %}", {"tree": [{"name": "a", "children": [{"name": "b", "children": []}, {"name": "c"}]}, {"name": "d"}]},
     False),
    ("loop over messages", "{% for m in messages %}{{ m.role }}:{{ m['content'] }}\n{% endfor %}", {"messages": MESSAGES},
     False),

    # --- macros
    ("macro defaults", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} "
     "{{ greet('B', '?') }} {{ greet(punct='.', name='C') }}", {}, False),
    ("macro varargs kwargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}", {}, False),
    ("macro missing argument", "{% macro m(a, b) %}[{{ a }}][{{ b }}]{% endmacro %}{{ m(1) }}", {}, False),
    ("macro sees globals at call time", "{% macro m() %}{{ z }}{% endmacro %}{% set z = 5 %}{{ m() }}", {}, False),
    ("macro local scope", "{% set x = 1 %}{% macro m() %}{{ x }}{% set x = 2 %}{{ x }}{% endmacro %}{{ m() }}{{ x }}",
     {}, False),
    ("macro recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}"
     "{{ fact(5) }}", {}, False),
    ("call block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
     "{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}", {}, False),
    ("call block with args", "{% macro each(items) %}{% for i in items %}{{ caller(i, loop.index) }}{% endfor %}{% endmacro %}"
     "{% call(item, n) each(['a', 'b']) %}{{ n }}{{ item }};{% endcall %}", {}, False),
    ("macro output is a string", "{% macro m() %}x{% endmacro %}{{ m() is string }} {{ (m() ~ 'y')|length }}", {}, False),

    # --- filter, raw, comments, generation
    ("filter block", "{% filter upper %}hello {{ 'world' }}{% endfilter %}", {}, False),
    ("filter block chain", "{% filter trim|replace('a', 'o') %}  banana  {% endfilter %}|", {}, False),
    ("raw block", "{% raw %}{{ not evaluated }}{% if %}{% endraw %}", {}, False),
    ("comments", "a{# a comment #}b{#- trimmed -#}  c", {}, False),
    ("generation block", "{% generation %}{{ 'gen' }}{% set hidden = 1 %}{% endgeneration %}[{{ hidden }}]", {}, False),
    ("string literals", "{{ 'a\\nb' }}|{{ \"q'\" }}|{{ 'x' 'y' }}|{{ '\\u00e9\\x41\\t.' }}|{{ 'back\\\\slash' }}", {}, False),
    ("number literals", "{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1.5e3 }} {{ 2E-2 }} {{ 0 }} {{ 00 }}",
     {}, False),
    ("dict and list literals", "{{ {'a': [1, {'b': (1, 2)}]}['a'][1]['b'][1] }} {{ [] }} {{ {} }} {{ [1, 2,] }}", {}, False),
    ("print tag", "{% print 'a', 1 %}", {}, False),

    # --- whitespace control (transformers' trim_blocks + lstrip_blocks)
    ("trim and lstrip", "<ul>\n    {% for x in [1, 2] %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>\n", {}, False),
    ("lstrip only at line start", "a  {% if true %}b{% endif %}\n  {{ 'c' }}\n\t {# c #}\nd", {}, False),
    ("plus disables lstrip", "x\n    {%+ if true %}y{% endif +%}\nz", {}, False),
    ("minus strips", "a   \n  {%- if true -%}  \n  b  \n  {%- endif %}  c {{- ' d ' -}}  e", {}, False),
    ("trim after comment", "a\n{# note #}\nb\n  {#- x #}  \nc", {}, False),
    ("trailing newline dropped", "line\n", {}, False),
    ("only one trailing newline dropped", "line\n\n", {}, False),
    ("crlf newlines", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc", {}, False),
    ("raw with whitespace control", "a\n  {%- raw -%}  {{ x }}  {%- endraw -%}  \nb", {}, False),
    ("plain: no trimming", "<ul>\n    {% for x in [1, 2] %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>\n", {}, True),
    ("plain: minus strips", "a  \n {%- if true %}\n b {% endif -%}\n c", {}, True),
    ("plain: comments keep newline", "a\n{# c #}\nb", {}, True),

    # --- string methods
    ("strip family", "[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\\n\\t a \\u3000'.strip() }}]",
     {"s": "  pad  "}, False),
    ("split", "{{ 'a b  c'.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} "
     "{{ '  x  y '.split(none, 1) }} {{ ''.split() }} {{ ''.split(',') }}", {}, False),
    ("startswith endswith", "{{ s.startswith('<think>') }} {{ s.endswith('</think>') }} {{ s.startswith(('a', '<')) }} "
     "{{ s.endswith('think>', 0, 7) }}", {"s": "<think>hmm</think>"}, False),
    ("case methods", "{{ s.upper() }} {{ s.lower() }} {{ s.title() }} {{ s.capitalize() }} {{ s.swapcase() }}",
     {"s": "hELLo wORLD's 2nd"}, False),
    ("replace find count", "{{ s.replace('a', 'o') }} {{ s.replace('a', 'o', 1) }} {{ s.find('n') }} {{ s.find('z') }} "
     "{{ s.rfind('a') }} {{ s.count('a') }} {{ s.index('n') }}", {"s": "banana"}, False),
    ("join method", "{{ ', '.join(['a', 'b']) }} {{ ''.join('abc') }}", {}, False),
    ("format method", "{{ '<{}>'.format('x') }} {{ '{0}-{1}-{0}'.format(1, 2) }} {{ '{name}!'.format(name='N') }} "
     "{{ '{:>5}|{:<4}|{:^7}|{:05.2f}|{:,}'.format('r', 'l', 'c', 3.14159, 1234567) }} {{ '{{}}{}'.format(1) }}",
     {}, False),
    ("splitlines", "{{ 'a\\nb\\r\\nc\\n'.splitlines() }} {{ 'a\\nb'.splitlines(true) }}", {}, False),
    ("misc string methods", "{{ '42'.isdigit() }} {{ 'ab'.isalpha() }} {{ '5'.zfill(3) }} {{ 'ab'.ljust(4, '.') }} "
     "{{ 'ab'.rjust(4) }} {{ 'ab'.center(6, '*') }} {{ 'a=b=c'.partition('=') }} {{ 'pre_x'.removeprefix('pre_') }}",
     {}, False),
    ("percent format", "{{ '%s and %s' % ('a', 'b') }} {{ '%d%%' % 50 }} {{ '%05.1f' % 3.14159 }} {{ '%(x)s' % {'x': 1} }} "
     "{{ '%-4s|' % 'a' }} {{ '%r' % 'q' }}", {}, False),

    # --- dict and list methods
    ("dict methods", "{{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }} {{ d.get('a') }} {{ d.get('z') }} "
     "{{ d.get('z', 'dflt') }}", {"d": {"a": 1, "b": 2}}, False),
    ("list methods", "{{ l.index(2) }} {{ l.count(1) }}", {"l": [1, 2, 1]}, False),

    # --- filters
    ("trim filter", "[{{ '  x  '|trim }}][{{ 'xxyxx'|trim('x') }}][{{ missing|trim }}]", {}, False),
    ("length and count", "{{ 'héllo'|length }} {{ [1, 2]|count }} {{ {'a': 1}|length }} {{ missing|length }}", {}, False),
    ("default filter", "{{ missing|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|d('x') }} "
     "{{ none|d('x', boolean=true) }} {{ 0|default(5) }}", {}, False),
    ("join filter", "{{ [1, 2, 3]|join(', ') }} {{ ['a', 'b']|join }} {{ users|join(', ', attribute='name') }}",
     {"users": [{"name": "x"}, {"name": "y"}]}, False),
    ("replace filter", "{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 5|replace('5', 'five') }}", {},
     False),
    ("case filters", "{{ 'aBc'|lower }} {{ 'aBc'|upper }} {{ 'hello wORLD-foo (bar)'|title }} {{ 'hello World'|capitalize }}",
     {}, False),
    ("first last", "{{ [1, 2, 3]|first }} {{ [1, 2, 3]|last }} {{ 'abc'|first }} {{ 'abc'|last }} [{{ []|first }}]", {}, False),
    ("items filter", "{{ d|items|list }}", {"d": {"a": 1, "b": [2]}}, False),
    ("selectattr rejectattr", "{{ ms|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }} "
     "{{ ms|rejectattr('role', 'eq', 'user')|map(attribute='role')|list }} {{ ms|selectattr('content')|list|length }}",
     {"ms": MESSAGES}, False),
    ("select reject", "{{ range(10)|select('odd')|list }} {{ range(10)|reject('even')|list }} "
     "{{ [0, 1, '', 'a', none]|select|list }} {{ range(10)|select('divisibleby', 3)|list }} "
     "{{ [1, 5, 10]|select('gt', 3)|list }}", {}, False),
    ("map filter", "{{ [1, 2]|map('string')|list }} {{ ['a', 'b']|map('upper')|join }} "
     "{{ ms|map(attribute='role')|list }} {{ ms|map(attribute='nope', default='?')|list }} "
     "{{ [[1, 2], [3]]|map('length')|list }}", {"ms": MESSAGES}, False),
    ("list string int float", "{{ 'ab'|list }} {{ 5|string }} {{ '42'|int + 1 }} {{ '4.7'|int }} {{ 'x'|int }} "
     "{{ 'x'|int(7) }} {{ 3.9|int }} {{ '2.5'|float }} {{ 'x'|float }} {{ 2|float }} {{ ' 12 '|int }} {{ '0x1A'|int(0, 16) }}",
     {}, False),
    ("abs round", "{{ -3|abs }} {{ (-2.5)|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} "
     "{{ 2.1|round(0, 'ceil') }} {{ 2.9|round(method='floor') }} {{ 7|round }} {{ 1234.5|round(-2) }}", {}, False),
    ("indent", "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}|"
     "{{ 'a\\nb\\n'|indent('> ') }}", {}, False),
    ("escape safe", "{{ '<a href=\"x\">&\\'</a>'|e }} {{ '<b>'|safe }} {{ ('<b>'|safe)|e }} {{ '<x>'|escape|length }}", {},
     False),
    ("markup concatenation", "{{ '<a>'|safe + '<b>' }} {{ '<c>' + '<d>'|safe }} {{ '<e>'|safe ~ '<f>' }} "
     "{{ ('x'|safe + 'it\\'s') is escaped }}", {}, False),
    ("unique sort reverse", "{{ [3, 1, 3, 2]|unique|list }} {{ ['b', 'A', 'a']|unique|list }} {{ [3, 1, 2]|sort }} "
     "{{ [3, 1, 2]|sort(reverse=true) }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} "
     "{{ [1, 2, 3]|reverse|list }} {{ 'abc'|reverse }}", {}, False),
    ("sort by attribute", "{{ ms|sort(attribute='role')|map(attribute='role')|join(',') }} "
     "{{ people|sort(attribute='age,name')|map(attribute='name')|join(',') }}",
     {"ms": MESSAGES, "people": [{"name": "b", "age": 2}, {"name": "a", "age": 2}, {"name": "c", "age": 1}]}, False),
    ("dictsort", "{{ d|dictsort }} {{ d|dictsort(reverse=true) }} {{ d|dictsort(by='value') }}",
     {"d": {"b": 1, "a": 3, "C": 2}}, False),
    ("sum min max", "{{ [1, 2, 3]|sum }} {{ [1.5, 2]|sum }} {{ ps|sum(attribute='n') }} {{ [3, 1, 2]|min }} "
     "{{ [3, 1, 2]|max }} {{ ['b', 'A']|min }} {{ ps|max(attribute='n') }} [{{ []|max }}]",
     {"ps": [{"n": 1}, {"n": 5}]}, False),
    ("batch slice", "{{ range(5)|batch(2)|list }} {{ range(5)|batch(2, 'x')|list }} {{ range(5)|slice(2)|list }}", {},
     False),
    ("wordcount center truncate", "{{ 'one two, three'|wordcount }} [{{ 'ab'|center(6) }}] "
     "{{ 'the quick brown fox jumps'|truncate(12) }} {{ 'the quick brown fox jumps'|truncate(12, true) }} "
     "{{ 'short'|truncate(10) }}", {}, False),
    ("format filter", "{{ '%s-%s'|format('a', 1) }} {{ '%(k)s'|format(k='v') }}", {}, False),
    ("attr filter", "{{ d|attr('items') is defined }} {{ d|attr('a') is defined }}", {"d": {"a": 1}}, False),
    ("striptags", "{{ '<p>Hello  <b>world</b></p>\\n x'|striptags }}", {}, False),
    ("groupby", "{% for g in ps|groupby('k') %}{{ g[0] }}:{{ g[1]|map(attribute='v')|join }};{% endfor %}",
     {"ps": [{"k": "b", "v": 1}, {"k": "a", "v": 2}, {"k": "b", "v": 3}]}, False),

    # --- tojson (transformers' override)
    ("tojson default", "{{ d|tojson }}", {"d": {"b": [1, 2.0, None, True], "a": "é\"\\\n<>&'", "c": {}}}, False),
    ("tojson indent", "{{ d|tojson(indent=2) }}", {"d": {"b": [1, {"x": []}], "a": "s"}}, False),
    ("tojson indent positional and str", "{{ d|tojson(false, 4) }}|{{ d|tojson(indent='\\t') }}", {"d": {"a": [1]}}, False),
    ("tojson options", "{{ d|tojson(sort_keys=true) }} {{ d|tojson(separators=(',', ':')) }} {{ d|tojson(ensure_ascii=true) }}",
     {"d": {"b": "é🙂", "a": [1, 2]}}, False),
    ("tojson scalars", "{{ 'x'|tojson }} {{ 1.0|tojson }} {{ none|tojson }} {{ false|tojson }} {{ [1e20, -0.0]|tojson }}", {},
     False),
    ("tojson of markup", "{{ ('<x>'|safe)|tojson }}", {}, False),

    # --- tests
    ("type tests", "{{ 1 is number }} {{ 1.0 is number }} {{ true is number }} {{ 1 is integer }} {{ true is integer }} "
     "{{ 1.0 is float }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is sequence }} {{ 'a' is sequence }} "
     "{{ {} is sequence }} {{ 1 is sequence }} {{ [] is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} "
     "{{ none is iterable }} {{ missing is iterable }} {{ missing is sequence }}", {}, False),
    ("defined none boolean", "{{ x is defined }} {{ missing is defined }} {{ missing is undefined }} {{ n is none }} "
     "{{ n is not none }} {{ true is boolean }} {{ 1 is boolean }} {{ true is true }} {{ 1 is true }} {{ false is false }}",
     {"x": 0, "n": None}, False),
    ("number tests", "{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }}", {}, False),
    ("comparison tests", "{{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 2 is gt 1 }} "
     "{{ 2 is ge 2 }} {{ 2 is le 1 }} {{ 'a' is in 'abc' }} {{ 3 is in [1, 2] }}", {}, False),
    ("case and callable tests", "{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 'Abc' is lower }} {{ range is callable }} "
     "{{ 'x' is callable }} {{ none is sameas none }} {{ true is sameas true }} {{ 'x'|safe is escaped }} "
     "{{ 'upper' is filter }} {{ 'odd' is test }}", {}, False),
    ("tests in filters", "{{ [1, 'a', none, 2.0]|select('number')|list }} {{ [1, 'a', none]|reject('none')|list }} "
     "{{ [1, 'a']|select('string')|list }}", {}, False),

    # --- globals
    ("range", "{{ range(3)|list }} {{ range(1, 4)|list }} {{ range(10, 0, -3)|list }} {{ range(0)|list }}", {}, False),
    ("dict global", "{{ dict(a=1, b=2) }} {{ dict([['x', 1]]) }} {{ dict({'k': 'v'}, z=0) }}", {}, False),
    ("cycler joiner", "{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }}"
     "{% set j = joiner('|') %}{% for x in [1, 2, 3] %}{{ j() }}{{ x }}{% endfor %}", {}, False),
    ("strftime_now", "{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%B %d, %Y') }}|"
     "{{ strftime_now('%A %a %j %I%p %y %e') }}|{{ strftime_now('%-d %-m') }}|{{ strftime_now('%%') }}", {}, False),
    ("raise_exception", "{% if true %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
     "{% endif %}", {}, False),
    ("raise_exception with non-string", "{{ raise_exception(42) }}", {}, False),

    # --- edge cases
    ("power is left-associative", "{{ 2 ** 3 ** 2 }} {{ 2 ** 0.5 }} {{ (-8) // 3 }} {{ 7 % -3 }} {{ 7.5 % 2 }}", {}, False),
    ("not binds looser than in", "{{ not 1 in [1] }} {{ not 'a' == 'b' }} {{ not x is defined }}", {}, False),
    ("filters on undefined", "[{{ missing|upper }}][{{ missing|join(',') }}][{{ missing|first }}][{{ missing|items|list }}]"
     "[{{ missing|string }}][{{ missing|list }}][{{ missing|default }}]", {}, False),
    ("print namespace and macro-free objects", "{% set ns = namespace(a=1) %}{{ ns }} {{ ns.missing is defined }}", {}, False),
    ("namespace set block", "{% set ns = namespace() %}{% set ns.text %}in {{ 'block' }}{% endset %}{{ ns.text }}", {}, False),
    ("tuple values", "{{ (1, 2) }} {{ (1,) }} {{ () }} {{ (1, 2)|list }} {{ (1, 2) == [1, 2] }} {{ (1, 2) + (3,) }} "
     "{{ ('a', 'b')[1] }} {{ [(1, 2)]|first }}", {}, False),
    ("string escapes in literals", "{{ 'it\\'s' }} {{ \"say \\\"hi\\\"\" }} {{ '\\\\n' }}", {}, False),
    ("nested macros and caller in loop", "{% macro row(cells) %}{% for c in cells %}[{{ caller(c) }}]{% endfor %}{% endmacro %}"
     "{% for r in [[1, 2], [3]] %}{% call(c) row(r) %}{{ c * 10 }}{% endcall %};{% endfor %}", {}, False),
    ("macro call with caller it ignores", "{% macro m() %}x{% endmacro %}{% call m() %}y{% endcall %}", {}, False),
    ("default with attribute chains", "{{ m.a.b|default('none') }} {{ (m.x or {}).get('y', 'dflt') }}", {"m": {"a": {}}}, False),
    ("conditional filters", "{{ 'yes' if items|length > 1 else 'no' }} {{ items|selectattr('ok')|list|length }}",
     {"items": [{"ok": True}, {"ok": False}]}, False),
    ("string comparison and sorting", "{{ 'B' < 'a' }} {{ ['b', 'B', 'a']|sort(case_sensitive=true) }} {{ 'é' > 'z' }}", {},
     False),
    ("whitespace: minus on both sides", "A\n  {%- for i in [1, 2] -%}\n  <{{ i }}>\n  {%- endfor -%}\n  B", {}, False),
    ("whitespace: lstrip with tabs and comments", "x\n\t\t{% if true %}\n\t\t\tY\n\t\t{% endif %}\n  {# c #}  z\n",
     {}, False),
    ("whitespace: variable then block on one line", "{{ 'a' }}  {% if true %}b{% endif %}  \n  {% if true %}c{% endif %}",
     {}, False),
    ("whitespace: minus variable after trimmed block", "{% if true %}\n   {{- 'x' }}\n{% endif %}", {}, False),
    ("whitespace: raw with lstrip", "a\n    {% raw %}\n  {{ y }}\n    {% endraw %}\nb", {}, False),
    ("loop inside macro inside loop", "{% macro m(n) %}{% for i in range(n) %}{{ loop.index }}{% endfor %}{% endmacro %}"
     "{% for n in [1, 2, 3] %}{{ m(n) }}|{% endfor %}", {}, False),
    ("loop variable not visible after loop", "{% for x in [1] %}{% endfor %}[{{ x }}][{{ loop }}]", {}, False),
    ("set shadows loop var", "{% for x in [1, 2] %}{% set x = x * 10 %}{{ x }}{% endfor %}", {}, False),
    ("for target unpack from items with if", "{% for k, v in d.items() if v %}{{ k }}{% endfor %}",
     {"d": {"a": 1, "b": 0, "c": "x"}}, False),
    ("selectattr with tests and none", "{{ ms|selectattr('content', 'string')|list|length }} "
     "{{ ms|rejectattr('content', 'none')|map(attribute='role')|join(',') }}",
     {"ms": [{"role": "a", "content": "x"}, {"role": "b", "content": None}, {"role": "c", "content": ["p"]}]}, False),
    ("json roundtrip of tool", "{{ tool|tojson(indent=4) }}\n{{ tool.function.parameters.properties|items|list }}",
     {"tool": {"type": "function", "function": {"name": "f", "parameters": {"type": "object",
      "properties": {"x": {"type": "number", "description": "ünï"}}, "required": ["x"]}}}}, False),
    ("int and float printing", "{{ 3 / 1 }} {{ 2 ** 62 }} {{ 1e300 * 1e10 }} {{ -1e300 * 1e10 }} {{ 0.1 + 0.2 }}",
     {}, False),
    ("join of mixed values", "{{ [1, 'a', none, true, 1.5, [2]]|join('|') }}", {}, False),
    ("string methods on markup", "{{ ('<x> '|safe).strip() + '<y>' }} {{ ('a'|safe).upper() }}", {}, False),

    # --- errors jinja2 raises at render time (the Swift side must fail too)
    ("error: str plus list", "{{ 'x' + [1] }}", {}, False),
    ("error: iterate none", "{% for x in none %}{% endfor %}", {}, False),
    ("error: attribute of undefined", "{{ missing.attr }}", {}, False),
    ("error: call undefined method", "{{ [1].replace('a', 'b') }}", {}, False),
    ("error: add undefined", "{{ missing + 1 }}", {}, False),
    ("error: compare str int", "{{ 'a' < 1 }}", {}, False),
    ("error: division by zero", "{{ 1 / 0 }}", {}, False),
    ("error: tojson undefined", "{{ missing|tojson }}", {}, False),
    ("error: tojson generator", "{{ [1]|map('string')|tojson }}", {}, False),
    ("error: length of generator", "{{ [1]|select|length }}", {}, False),
    ("error: list append refused", "{% set l = [] %}{% set _ = l.append(1) %}", {}, False),
    ("error: dict update refused", "{% set d = {} %}{% set _ = d.update({'a': 1}) %}", {}, False),
    ("error: namespace underscore", "{% set ns = namespace() %}{% set ns._x = 1 %}", {}, False),
    ("error: set attribute on dict", "{% set d = {} %}{% set d.x = 1 %}", {}, False),
    ("error: unknown filter at runtime", "{% if x %}{{ 1|nosuchfilter }}{% endif %}", {"x": True}, False),
    ("unknown filter in untaken branch", "{% if false %}{{ 1|nosuchfilter }}{% endif %}ok", {}, False),
    ("error: macro too many args", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", {}, False),
    ("error: unpack mismatch", "{% set a, b = [1, 2, 3] %}", {}, False),
    ("error: inline if undefined used", "{{ (1 if false) + 1 }}", {}, False),

    # --- syntax errors (the line must match jinja2's)
    ("syntax: unknown filter at top level", "line one\n{{ x|nosuchfilter }}", {}, False),
    ("syntax: unclosed if", "{% if true %}\nyes\n", {}, False),
    ("syntax: unclosed for", "a\n{% for x in y %}\n{% if x %}{% endif %}", {}, False),
    ("syntax: mismatched end tag", "{% for x in y %}\n{% endif %}", {}, False),
    ("syntax: unknown tag", "a\nb\n{% frobnicate %}", {}, False),
    ("syntax: bad expression", "{{ 1 + }}", {}, False),
    ("syntax: unclosed paren", "{{ (1 + 2 }}", {}, False),
    ("syntax: unexpected char", "ok\n{{ a ! b }}", {}, False),
    ("syntax: unclosed comment", "a\n{# never closed", {}, False),
    ("syntax: unclosed variable", "{{ x ", {}, False),
    ("syntax: break outside loop", "{% break %}", {}, False),
    ("syntax: do tag not enabled", "{% do x %}", {}, False),
]


def fixture_path() -> Path:
    for tests in ("HoneKitTests", "JinjaTests"):
        if (REPO / "Tests" / tests).is_dir():
            return REPO / "Tests" / tests / "Fixtures" / "templates" / "jinja_language_cases.json"
    sys.exit("no Tests/HoneKitTests or Tests/JinjaTests folder under " + str(REPO))


def main() -> None:
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    out = []
    for name, template, context, plain in CASES:
        entry = {"name": name, "template": template, "context": context, "plain": plain}
        try:
            compiled = ctu._compile_jinja_template(template)
            if plain:
                env = compiled.environment.overlay(trim_blocks=False, lstrip_blocks=False)
                compiled = env.from_string(template)
            entry["output"] = compiled.render(**json.loads(json.dumps(context)))
        except jinja2.TemplateSyntaxError as e:
            entry["error"] = {"kind": type(e).__name__, "message": e.message, "line": e.lineno}
        except Exception as e:  # noqa: BLE001 - every failure is part of the fixture
            message = e.message if isinstance(e, jinja2.TemplateError) else str(e)
            entry["error"] = {"kind": type(e).__name__, "message": str(message)}
        out.append(entry)
    path = fixture_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"generator": "tools/oracle/make_jinja_language_fixtures.py",
           "versions": {"jinja2": jinja2.__version__}, "now": FIXED_NOW.isoformat(), "cases": out}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    errors = sum("error" in e for e in out)
    print(f"{path.relative_to(REPO)}: {len(out)} cases, {errors} expected errors")


if __name__ == "__main__":
    main()
