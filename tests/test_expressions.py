"""Table-driven tests of the expression translator (JUEL / FEEL / Python → Python)."""
import pytest

from engine.bpmn.expressions import (
    ExpressionError,
    translate_dmn_expression,
    translate_dmn_input_entry,
    translate_expression,
    translate_timer,
    translate_value,
)

TRANSLATED = [
    # JUEL (Camunda 7, Flowable, Activiti)
    ("${approved}", "approved"),
    ("  ${ approved }  ", "approved"),
    ("${!approved}", "not approved"),
    ("${not approved}", "not approved"),
    ("${amount > 1000 && !rejected}", "(amount > 1000) and (not rejected)"),
    ("${a || b and c}", "a or (b and c)"),
    ("${!a == b}", "(not a) == b"),  # JUEL precedence: ! binds tighter than ==
    ("${x eq 'y'}", "x == 'y'"),
    ("${x ne 1}", "x != 1"),
    ("${x lt 1 or x gt 9}", "(x < 1) or (x > 9)"),
    ("${x le 1 and x ge 0}", "(x <= 1) and (x >= 0)"),
    ("${x div 2 mod 3}", "(x / 2) % 3"),
    ("${empty list}", "list in (None, '', [], {})"),
    ("${not empty name}", "not (name in (None, '', [], {}))"),
    ("${invoice.amount >= 100.5}", "invoice['amount'] >= 100.5"),
    ("${order.items[0].sku == \"A-1\"}", "order['items'][0]['sku'] == 'A-1'"),
    ("${value == null}", "value == None"),
    ("${flag == true}", "flag == True"),
    ("${x ? 'yes' : 'no'}", "'yes' if x else 'no'"),
    ("${-x + 3 * (y - 1)}", "(-x) + (3 * (y - 1))"),
    ("${'it\\'s'}", "\"it's\""),
    # FEEL (Camunda 8)
    ("=approved", "approved"),
    ("= amount > 1000 and not(rejected)", "(amount > 1000) and (not (rejected))"),
    ("=status = \"open\"", "status == 'open'"),
    ("=x != null", "x != None"),
    ("=order.total <= 10", "order['total'] <= 10"),
    # Python (SpiffWorkflow, spiff-arena) passes through unchanged
    ("approved == True", "approved == True"),
    ("product_name in ['a', 'b']", "product_name in ['a', 'b']"),
    ("len(items) > 2", "len(items) > 2"),
]

REJECTED = [
    ("${execution.getVariable('approved')}", "another BPMN engine"),
    ("${approval.isApproved()}", "method calls"),
    ("${count(items) > 0}", "function calls"),
    ("#{approvalBean.approved}", "#{"),
    ("Approved: ${approved}", "embedded"),
    ("${a = 1}", "unexpected character"),
    ("${}", "empty"),
    ("${a +}", "incomplete"),
    ("${class}", "keyword"),
    ("=[1..5]", "range"),
    ("= some x in xs satisfies x > 1", "unsupported syntax"),
    ("=count(items)", "function calls"),
    ("Service Level == 'Premium'", "not a valid Python expression"),
    ("priority = 'Emergency'", "not a valid Python expression"),
    ("", "empty"),
]

TIMERS = [
    ("PT5M", "timeDuration", "'PT5M'"),
    (" P1D ", "timeDuration", "'P1D'"),
    ("P1Y2M3DT4H5M6S", "timeDuration", "'P1Y2M3DT4H5M6S'"),
    ('"PT5M"', "timeDuration", "'PT5M'"),
    ("'PT30S'", "timeDuration", "'PT30S'"),
    ("R3/PT1H", "timeCycle", "'R3/PT1H'"),
    ("R/PT10M", "timeCycle", "'R/PT10M'"),
    ("2026-01-01T10:00:00Z", "timeDate", "'2026-01-01T10:00:00Z'"),
    ("2026-01-01", "timeDate", "'2026-01-01'"),
    ("${reminderDuration}", "timeDuration", "reminderDuration"),
    ("=dueDate", "timeDate", "dueDate"),
    ('="PT15M"', "timeDuration", "'PT15M'"),
    ("timer_value", "timeDuration", "timer_value"),  # spiff style: a variable holding the ISO text
]

TIMERS_REJECTED = [
    ("", "timeDuration", "empty"),
    ("0 0/5 * * * ?", "timeCycle", "cron"),
    ("0 9 * * MON-FRI", "timeCycle", "cron"),
    ("P1D", "timeDate", "date/time"),
    ("2026-01-01T10:00:00Z", "timeDuration", "duration"),
    ("PT5M", "timeCycle", "repeating"),
    ("5", "timeDuration", "not an ISO 8601 string"),
    ("five minutes", "timeDuration", "neither ISO 8601"),
    ("${execution.getVariable('d')}", "timeDate", "another BPMN engine"),
]


@pytest.mark.parametrize("text, python", TRANSLATED)
def test_translates(text, python):
    assert translate_expression(text) == python


@pytest.mark.parametrize("text, python", TRANSLATED)
def test_translation_evaluates_like_the_source(text, python):
    # Every translation is valid Python that compiles as an expression.
    compile(python, "<test>", "eval")


@pytest.mark.parametrize("text, reason", REJECTED)
def test_rejects(text, reason):
    with pytest.raises(ExpressionError) as error:
        translate_expression(text)
    assert reason in str(error.value)


def test_juel_semantics_match_on_sample_data():
    data = {"a": False, "b": False, "items": [], "name": "", "zero": 0}
    assert eval(translate_expression("${!a == b}"), {}, data) is False  # (not False) == False
    assert eval(translate_expression("${empty items}"), {}, data) is True
    assert eval(translate_expression("${empty name}"), {}, data) is True
    assert eval(translate_expression("${empty zero}"), {}, data) is False  # JUEL: 0 is not empty


@pytest.mark.parametrize("text, kind, python", TIMERS)
def test_timer_values(text, kind, python):
    assert translate_timer(text, kind) == python


@pytest.mark.parametrize("text, kind, reason", TIMERS_REJECTED)
def test_timer_values_rejected(text, kind, reason):
    with pytest.raises(ExpressionError) as error:
        translate_timer(text, kind)
    assert reason in str(error.value)


@pytest.mark.parametrize("text, expected", [
    ("managers", ("managers", False)),
    ("${initiator}", ("initiator", True)),
    ("=assignee", ("assignee", True)),
    ("${starter.manager}", ("starter['manager']", True)),
])
def test_values(text, expected):
    assert translate_value(text) == expected


@pytest.mark.parametrize("entry, python", [
    ("[250..1000]", "250 <= ? <= 1000"),
    ("]250..1000[", "250 < ? < 1000"),
    ("(1..5]", "1 < ? <= 5"),
    ("< 250", "? < 250"),
    (">= 1000", "? >= 1000"),
    ('"Misc"', "? == 'Misc'"),
    ('"a","b"', "? in ('a', 'b',)"),
    ('not("x")', "not (? == 'x')"),
    ("true", "? == True"),
    ("-5", "? == -5"),
    ("-", "-"),
    ("", ""),
    # SpiffWorkflow's own forms pass through
    ('"PEANUTS" not in ?', '"PEANUTS" not in ?'),
    ("in [1, 2]", "in [1, 2]"),
    ('== "x"', '== "x"'),
])
def test_dmn_input_entries(entry, python):
    assert translate_dmn_input_entry(entry) == python


def test_dmn_input_entry_rejected():
    with pytest.raises(ExpressionError):
        translate_dmn_input_entry("[1..")


@pytest.mark.parametrize("text, python", [
    ('"accounting"', '"accounting"'),
    ("true", "True"),
    ("null", "None"),
    ("0.1", "0.1"),
    ("${amount * 2}", "amount * 2"),
])
def test_dmn_expressions(text, python):
    assert translate_dmn_expression(text) == python
