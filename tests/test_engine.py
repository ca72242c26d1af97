"""The Markov algorithm interpreter, its text syntax and the paper's single-rule task."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from divplugin.markov import (
    MarkovAlgorithm,
    Rule,
    RuleSyntaxError,
    Status,
    StringTooLong,
    count_occurrences,
    format_rule,
    format_rules,
    parse_rule,
    parse_rules,
)

# The classic published test rulesets (Rosetta Code, "Execute a Markov algorithm").
ROSETTA = [
    (
        """# This rules file is extracted from Wikipedia:
# http://en.wikipedia.org/wiki/Markov_Algorithm
A -> apple
B -> bag
S -> shop
T -> the
the shop -> my brother
a never used -> .terminating rule
""",
        "I bought a B of As from T S.",
        "I bought a bag of apples from my brother.",
    ),
    (
        """# Slightly modified from the rules on Wikipedia
A -> apple
B -> bag
S -> .shop
T -> the
the shop -> my brother
a never used -> .terminating rule
""",
        "I bought a B of As from T S.",
        "I bought a bag of apples from T shop.",
    ),
    (
        """# BNF Syntax testing rules
A -> apple
WWWW -> with
Bgage -> ->.*
B -> bag
->.* -> money
W -> WW
S -> .shop
T -> the
the shop -> my brother
a never used -> .terminating rule
""",
        "I bought a B of As W my Bgage from T S.",
        "I bought a bag of apples with my money from T shop.",
    ),
    (
        """### Unary Multiplication Engine, for testing Markov Algorithm implementations
### By Donal Fellows.
# Unary addition engine
_+1 -> _1+
1+1 -> 11+
# Pass for converting from the splitting of multiplication into ordinary
# addition
1! -> !1
,! -> !+
_! -> _
# Unary multiplication by duplicating left side, right side times
1*1 -> x,@y
1x -> xX
X, -> 1,1
X1 -> 1X
_x -> _X
,x -> ,X
y1 -> 1y
y_ -> _
# Next phase of applying
1@1 -> x,@y
1@_ -> @_
,@_ -> !_
++ -> +
# Termination cleanup for addition
_1 -> 1
1+_ -> 1
_+_ -> 
""",
        "_1111*11111_",
        "11111111111111111111",
    ),
    (
        """# Turing machine: three-state busy beaver
#
# state A, symbol 0 => write 1, move right, new state B
A0 -> 1B
# state A, symbol 1 => write 1, move left, new state C
0A1 -> C01
1A1 -> C11
# state B, symbol 0 => write 1, move left, new state A
0B0 -> A01
1B0 -> A11
# state B, symbol 1 => write 1, move right, new state B
B1 -> 1B
# state C, symbol 0 => write 1, move left, new state B
0C0 -> B01
1C0 -> B11
# state C, symbol 1 => write 1, move left, halt
0C1 -> H01
1C1 -> H11
""",
        "000000A000000",
        "00011H1111000",
    ),
]


def apply_once(lhs: str, rhs: str, s: str) -> str:
    """The paper's task, as a reference: the leftmost occurrence of ``lhs`` replaced by ``rhs``
    once; ``s`` unchanged (a no-op) when ``lhs`` does not occur."""
    return s.replace(lhs, rhs, 1)


@pytest.mark.parametrize(
    "rules, text, expected", ROSETTA, ids=["wiki", "wiki-stop", "bnf", "unary-mult", "busy-beaver"]
)
def test_rosetta_rulesets(rules, text, expected):
    assert MarkovAlgorithm.from_text(rules, syntax="rosetta").run(text).output == expected


def test_rosetta_terminating_rule_stops_the_run():
    res = MarkovAlgorithm.from_text(ROSETTA[1][0], syntax="rosetta").run(ROSETTA[1][1])
    assert res.status is Status.TERMINATED
    res = MarkovAlgorithm.from_text(ROSETTA[0][0], syntax="rosetta").run(ROSETTA[0][1])
    assert res.status is Status.HALTED


def test_paper_appendix_a_sequence_then_reverse():
    """App. A of Only-IF: five rule schemas over U={a,b} turn abb into abbbba."""
    ab = "ab"
    rules = [Rule(f"α{x}", f"{x}αβ{x}") for x in ab]
    rules += [Rule(f"β{x}{y}", f"{y}β{x}") for x in ab for y in ab]
    rules += [Rule(f"αβ{x}", f"{x}α") for x in ab]
    rules += [Rule("α", "", terminating=True), Rule("", "α")]
    algo = MarkovAlgorithm(rules)
    for s in ["abb", "a", "ba", "abab"]:
        res = algo.run(s)
        assert res.status is Status.TERMINATED
        assert res.output == s + s[::-1]


@pytest.mark.parametrize(
    "lhs, rhs, s, expected",
    [
        ("aa", "bac", "caaba", "cbacba"),
        ("iss", "art", "mississippi", "martissippi"),
        ("iss", "art", "canada", "canada"),
        ("ss", "tr", "mississipi", "mitrissipi"),
    ],
)
def test_paper_single_rule_examples(lhs, rhs, s, expected):
    assert apply_once(lhs, rhs, s) == expected
    # the single-rule task is one step of a one-rule Markov algorithm
    assert MarkovAlgorithm([Rule(lhs, rhs)]).run(s, max_steps=1).output == expected


def test_statuses_and_step_limit():
    grow = MarkovAlgorithm([Rule("", "a")])
    res = grow.run("", max_steps=5)
    assert (res.output, res.status, res.steps) == ("aaaaa", Status.STEP_LIMIT, 5)
    swap = MarkovAlgorithm([Rule("ab", "ba")])
    res = swap.run("aabb", max_steps=100)
    assert (res.output, res.status, res.steps) == ("bbaa", Status.HALTED, 4)
    # exactly enough steps: halted, not step_limit
    assert swap.run("aabb", max_steps=4).status is Status.HALTED
    assert swap.run("aabb", max_steps=3).status is Status.STEP_LIMIT
    assert MarkovAlgorithm([]).run("xyz").status is Status.HALTED
    with pytest.raises(StringTooLong, match="max_len=3"):
        grow.run("", max_steps=10, max_len=3)
    with pytest.raises(ValueError, match="max_steps"):
        grow.run("", max_steps=-1)


def test_first_rule_wins_then_leftmost():
    algo = MarkovAlgorithm([Rule("b", "X"), Rule("a", "Y")])
    assert algo.step("aab") == (0, "aaX")
    assert MarkovAlgorithm([Rule("a", "Y")]).step("bab") == (0, "bYb")


def test_trace_records_each_step():
    res = MarkovAlgorithm.from_text("ab -> ba").run("aab", trace=True)
    assert res.trace == [(0, "aba"), (0, "baa")]


def test_text_syntax_examples():
    rules = parse_rules("a -> b\n# comment\n\nab ->. c\n-> x\nq ->\n->.\n")
    assert rules == [Rule("a", "b"), Rule("ab", "c", True), Rule("", "x"), Rule("q", ""), Rule("", "", True)]
    assert format_rules(rules) == "a -> b\nab ->. c\n-> x\nq ->\n->."


@pytest.mark.parametrize(
    "line, problem",
    [
        ("a b", "exactly one '->'"),
        ("a -> b -> c", "exactly one '->'"),
        ("a-> b", "white space before"),
        ("a ->b", "white space after '->'"),
        ("a ->.b", "white space after '->.'"),
    ],
)
def test_malformed_rules_are_named(line, problem):
    with pytest.raises(RuleSyntaxError, match=problem):
        parse_rules(f"x -> y\n{line}\n")
    with pytest.raises(RuleSyntaxError, match="line 2"):
        parse_rules(f"x -> y\n{line}\n")


def test_unrepresentable_rules_refuse_to_format():
    with pytest.raises(RuleSyntaxError, match="arrow"):
        format_rule(Rule("a->", "b"))
    with pytest.raises(RuleSyntaxError, match="white space"):
        format_rule(Rule(" a", "b"))
    with pytest.raises(RuleSyntaxError, match="comment"):
        format_rule(Rule("#a", "b"))
    with pytest.raises(RuleSyntaxError, match="line break"):
        Rule("a\nb", "c")
    with pytest.raises(ValueError, match="unknown rule syntax"):
        parse_rule("a -> b", syntax="nope")


side = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Zl", "Zp", "Cc"), blacklist_characters="\r\n\x85"),
        max_size=8,
    )
    .map(str.strip)
    .filter(lambda s: "->" not in s)
)


@given(st.lists(st.tuples(side, side, st.booleans()), max_size=8))
def test_parse_format_round_trip(triples):
    rules = [Rule(a, b, t) for a, b, t in triples if not a.startswith("#")]
    assert parse_rules(format_rules(rules)) == rules


@given(
    st.text(alphabet="ab", max_size=12),
    st.text(alphabet="ab", min_size=1, max_size=3),
    st.text(alphabet="abc", max_size=3),
)
def test_apply_once_matches_interpreter_and_counts(s, lhs, rhs):
    out = apply_once(lhs, rhs, s)
    res = MarkovAlgorithm([Rule(lhs, rhs)]).run(s, max_steps=1)
    assert res.output == out
    assert res.steps == (1 if lhs in s else 0)
    # overlapping occurrence count agrees with a brute-force scan
    assert count_occurrences(s, lhs) == sum(s.startswith(lhs, i) for i in range(len(s)))
