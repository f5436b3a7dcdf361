"""The expression parser: our own grammar, nothing else, hostile input refused."""

import pytest

from bot.engine import expr as E


@pytest.mark.parametrize("text,key", [
    ("pct_change(IWM, 5) >= 3 and change(DGS10, 5) >= 0.05",
     "((pct_change(IWM, 5) >= 3) and (change(DGS10, 5) >= 0.05))"),
    ("a + b * c", "(a + (b * c))"),
    ("(a + b) * c", "((a + b) * c)"),
    ("not a > 1 or b < 2", "((not (a > 1)) or (b < 2))"),
    ("-x * 2", "((- x) * 2)"),
    ("a - b - c", "((a - b) - c)"),
    ("fired(small-cap-trap, 10)", "fired(small-cap-trap, 10)"),
    ("fired(rule_2, 3) and x > 1e-3", "(fired(rule_2, 3) and (x > 0.001))"),
])
def test_precedence_and_canonical_form(text, key):
    assert E.parse(text).key() == key


@pytest.mark.parametrize("text,offset,words", [
    ("IWM.__class__", 3, "attribute access"),
    ("__import__(os)", 0, "'__'"),
    ("lambda x: x", 8, "':'"),
    ("import os", 0, "not part of rule expressions"),
    ("a = 3", 2, "use =="),
    ("1 < x < 3", 6, "chained comparisons"),
    ("IWM IWM", 4, "operator"),
    ("'IWM' > 3", 0, "strings"),
    ("x[0]", 1, "indexing"),
    ("(" * 60 + "1" + ")" * 60, None, "nested"),
    ("x + " * 300 + "x", None, "more than"),
    ("a" * 2001, 2000, "limit"),
    ("pct_change(IWM, 5", 17, "expected ')'"),
    ("", 0, "empty"),
    ("and x", 0, "needs a condition"),
    ("x >", 3, "ends too early"),
])
def test_hostile_or_broken_input_is_refused_with_a_position(text, offset, words):
    with pytest.raises(E.ExprError) as info:
        E.parse(text)
    assert words in info.value.message
    if offset is not None:
        assert info.value.offset == offset
