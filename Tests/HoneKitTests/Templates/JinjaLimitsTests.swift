import Foundation
import Testing
@testable import HoneKit

/// What the fuzzers found in the Jinja interpreter: integer edges that trapped or spun, and runaway templates
/// (huge repetition, nested loops, doubling strings) that hung or exhausted memory. Python's answers where Python
/// has one; the sandbox-style limits otherwise.
struct JinjaLimitsTests {
    func render(_ source: String) throws -> String { try JinjaTemplate(source).render([:]) }

    @Test("integer edges follow Python instead of trapping or spinning")
    func integerEdges() throws {
        #expect(try render("{{ 2 ** 10 }} {{ 3 ** 0 }} {{ (-2) ** 3 }} {{ 1 ** 1000000000000000000 }} {{ (-1) ** 1000000000000000001 }}") == "1024 1 -8 1 -1")
        #expect(try render("{{ 7 % -1 }} {{ -7 // -1 }} {{ 7 // -2 }} {{ 7 % -2 }}") == "0 7 -4 -1")
        // Past 64 bits the result degrades to a float (Python would give the exact big integer).
        #expect(try render("{{ -(-9223372036854775807 - 1) }}") == "9.223372036854776e+18")
        #expect(try render("{{ (-9223372036854775807 - 1) // -1 }}") == "9.223372036854776e+18")
        #expect(try render("{{ 2 ** 64 }}") == "1.8446744073709552e+19")
    }

    @Test("runaway templates end in an error")
    func runaway() throws {
        for source in ["{{ 'ab' * 1000000000000 }}", "{{ [1] * 100000000 }}",
                       "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                       "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                       "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}"] {
            #expect(throws: JinjaError.self, "\(source)") { try render(source) }
        }
        #expect(try render("{{ 'ab' * 3 }}{{ ([0] * 4)|length }}") == "ababab4")
        // Strings under the per-string limit, made again and again: 90 MB built 100,000 times ran for hours.
        let rebuilt = "{% set s = 'a' * 9999999 %}{% for i in range(100000) %}{% set t = s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s %}{% endfor %}x"
        #expect(throws: JinjaError.self) { try render(rebuilt) }
        // 100 strings of 1 MB (100 MB in all) is still fine.
        #expect(try render("{% set ns = namespace(n=0) %}{% for i in range(100) %}{% set ns.n = ns.n + ('a' * 1000000 ~ i)|length %}{% endfor %}{{ ns.n }}")
                == "100000190")
    }

    @Test("widths, precisions and fill counts past the string limit are errors; ordinary ones match jinja2")
    func widths() throws {
        // The fuzzer's input: a 19-digit width (a 10^17-byte allocation).
        for source in ["{{ '%(k)3333333333333333333s'|format(k='v') }}", "{{ '%99999999999999999999999s' % 'v' }}",
                       "{{ '%.999999999f' % 1.5 }}", "{{ '%*d' % (999999999999, 1) }}",
                       "{{ '{:>999999999999}'.format('v') }}", "{{ '{:99999999999999999999999}'.format('v') }}",
                       "{{ '{:.99999999999999999999}f'.format(1.5) }}", "{{ 'v'|center(999999999999) }}",
                       "{{ 'v'.ljust(999999999999) }}", "{{ 'v'.rjust(999999999999) }}", "{{ 'v'.zfill(999999999999) }}",
                       "{{ 'v'|indent(999999999999, true) }}", "{{ ('a\n' * 1000)|indent(1000000) }}",
                       "{{ [[1, 2], 3]|tojson(indent=999999999999) }}", "{{ ([1] * 1000)|tojson(indent=1000000) }}",
                       "{{ [1]|batch(999999999999, 0)|list }}"] {
            #expect(throws: JinjaError.self, "\(source)") { try render(source) }
        }
        // jinja2's own output for the same templates.
        #expect(try render("[{{ '%5s|%-4d|%.2f|%.s|%.f' % ('ab', 7, 3.14159, 'xyz', 2.5) }}]") == "[   ab|7   |3.14||2]")
        #expect(try render("[{{ '{:>6}|{:^7}|{:08.3f}|{:,}'.format('ab', 'mid', 3.14159, 1234567) }}]")
                == "[    ab|  mid  |0003.142|1,234,567]")
        #expect(try render("[{{ 'ab'|center(6) }}|{{ 'x'.ljust(3, '.') }}|{{ '7'.zfill(3) }}|{{ 'a\nb'|indent(2) }}]")
                == "[  ab  |x..|007|a\n  b]")
        #expect(try render("{{ [1, [2]]|tojson(indent=1) }}") == "[\n 1,\n [\n  2\n ]\n]")
        #expect(try render("{{ [1, 2, 3]|batch(2, 0)|list }}") == "[[1, 2], [3, 0]]")
    }

    @Test("numbers at the edges of %d, %c and abs follow Python instead of trapping; quadratic replace and huge slices are errors")
    func numberEdges() throws {
        // Python's own output (a float past Int keeps every digit of its integer value).
        #expect(try render("{{ '%d|%d|%c%c|%d|%d' % (2.0 ** 70, -1e19, 65, 128512, -0.5, 2.9) }}")
                == "1180591620717411303424|-10000000000000000000|A\u{1F600}|0|2")
        #expect(try render("{{ '%d' % (-9223372036854775807 - 1) }}|{{ '{:x}'.format(-9223372036854775807 - 1) }}")
                == "-9223372036854775808|-8000000000000000")
        #expect(try render("{{ (-9223372036854775807 - 1)|abs }}") == "9.223372036854776e+18")
        #expect(try render("{{ ('a' * 3)|replace('', '-') }}|{{ 'aXbX'.replace('X', '--', 1) }}") == "-a-a-a-|a--bX")
        // round's precision at the edges (-2**63 trapped when negated; past 10^308 the scale was inf and gave nan).
        #expect(try render("{{ 1.5|round(-9223372036854775807) }}|{{ -1.5|round(-400) }}|{{ 1234.5|round(-2) }}|{{ 1.5|round(-9223372036854775807 - 1) }}|{{ 1e300|round(-300) }}")
                == "0.0|-0.0|1200.0|0.0|1e+300")
        #expect(try render("{{ 1.55|round(1, 'ceil') }}|{{ 155|round(-1, 'floor') }}") == "1.6|150.0")
        for source in ["{{ '%c' % 99999999999 }}", "{{ '{:c}'.format(99999999999) }}", "{{ '%c' % -1 }}",
                       "{{ '%d' % (1e300 * 1e300) }}", "{{ '%d' % (0 * (1e300 * 1e300)) }}", "{{ '%x' % 1e20 }}",
                       "{{ ('a' * 100000).replace('', 'b' * 100000) }}", "{{ ('a' * 1000)|replace('', 'b' * 1000000) }}",
                       "{{ ('a' * 100000)|replace('a', 'b' * 100000) }}", "{{ ([1] * 10)|slice(999999999999)|list|length }}",
                       "{{ 1.5|round(400, 'ceil') }}", "{{ 1.5|round(-400, 'floor') }}"] {
            #expect(throws: JinjaError.self, "\(source)") { try render(source) }
        }
    }

    @Test("objects that hold themselves or outlive their owner: Python's output instead of a stack overflow or a freed object")
    func selfReference() throws {
        // jinja2's own output for each (checked with the sandboxed environment).
        #expect(try render("{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns }}|{{ ns.x.x.x is sameas ns }}")
                == "<Namespace {'x': <Namespace {...}>}>|True")
        #expect(try render("{% set ns = namespace(x=1) %}{% set ns.y = [ns, {'k': ns}] %}{{ ns }}")
                == "<Namespace {'x': 1, 'y': [<Namespace {...}>, {'k': <Namespace {...}>}]}>")
        #expect(try render("{{ cycler(1, 2).next() }}|{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }}")
                == "1|abab")
        #expect(try render("{% set ns = namespace() %}{% for i in [1, 2] %}{% set ns.f = loop.cycle %}{% set ns.g = loop.changed %}{% endfor %}{{ ns.f('x', 'y') }}{{ ns.g(1) }}")
                == "yTrue")
    }

    /// The fuzzer's second input: `|int(2, true)` asked for base 1 (a trap in Int(_:radix:)). jinja2's output for each.
    @Test("int's base: 0 reads the prefix, outside 2…36 falls back as jinja2 does")
    func intBase() throws {
        #expect(try render("{{ 'a@\nb'|int(2, true) }}|{{ '0x1f'|int(0, 0) }}|{{ '0o17'|int(base=0) }}|{{ '0b101'|int(base=0) }}|{{ '017'|int(5, 0) }}|{{ '000'|int(base=0) }}|{{ '10'|int(base=0) }}")
                == "2|31|15|5|17|0|10")
        #expect(try render("{{ '--5'|int(7) }}|{{ '-+5'|int(7) }}|{{ ' -0x1F '|int(0, 16) }}|{{ '12'|int(0, 37) }}|{{ '12'|int(0, 1) }}|{{ 'z'|int(0, 36) }}|{{ '1_000'|int }}")
                == "7|7|-31|12|12|35|1000")
    }

    /// The fuzzer's third input: `'{-84}'.format(…)` read "-84" as a negative index into the arguments (out of bounds).
    @Test("format field names: only ASCII digits are an index, as in Python")
    func formatFieldNames() throws {
        #expect(throws: JinjaError.self) { try render("{{ '{-84}'.format(1) }}") }
        #expect(try render("{{ '{0[1]}|{1}|{x}|{0[-1]}|'.format([1, 2], 3, x=4) }}") == "2|3|4||")
    }

    @Test("truncate and range at Int's edges")
    func truncateAndRangeEdges() throws {
        #expect(try render("{{ 'abc'|truncate(9223372036854775807) }}|{{ 'abcdefghij'|truncate(5, leeway=0) }}") == "abc|ab...")
        #expect(try render("{{ range(100000)|length }}|{{ range(0, 200000, 2)|length }}|{{ range(10, 0, -3)|list }}")
                == "100000|100000|[10, 7, 4, 1]")
        for source in ["{{ 'a'|truncate(5, leeway=-1) }}", "{{ range(9223372036854775807)|length }}",
                       "{{ range(-9223372036854775807 - 1, 9223372036854775807)|length }}", "{{ range(100001)|length }}",
                       "{{ range(0, 200001, 2)|length }}"] {
            #expect(throws: JinjaError.self, "\(source)") { try render(source) }
        }
    }

    @Test("an empty sequence repeated any number of times is empty at once (a fuzzer's input spun for minutes)")
    func emptyRepetition() throws {
        #expect(try render("[{{ \"\" * 1000000020000 }}]") == "[]")
        #expect(try render("{{ ([] * 1000000000000)|length }} {{ (() * 1000000000000)|length }} {{ 1000000000000 * '' }}|") == "0 0 |")
        #expect(try render("[{{ 'ab' * 0 }}{{ 'ab' * -3 }}]{{ ([1, 2] * 0)|length }}") == "[]0")
    }

    @Test("a macro stored in the scope it closes over still works, and is released after rendering")
    func macroCycle() throws {
        #expect(try render("{% macro m(a) %}[{{ a }}]{% endmacro %}{{ m(1) }}{% set f = m %}{{ f(2) }}") == "[1][2]")
    }
}
