"""Translate the expression dialects found in BPMN files into the Python SpiffWorkflow evaluates.

SpiffWorkflow evaluates every condition, timer value and multi-instance expression as Python
against the task data. Models drawn for other engines carry other languages:

* Camunda 7 / Flowable / Activiti write JUEL: ``${amount > 1000 && !rejected}``;
* Camunda 8 (Zeebe) writes FEEL: ``= amount > 1000 and not(rejected)``;
* spiff-arena and SpiffWorkflow's own models write Python: ``amount > 1000 and not rejected``.

Left alone, a JUEL or FEEL expression loads fine and fails only when the gateway is reached
(trap 5 of the corpus). So every expression is translated at load time, or rejected with a
message that names what cannot be translated. The translator is a small tokenizer plus a
precedence-climbing parser that builds a tree and prints it back as parenthesised Python,
because the operator precedences differ (JUEL ``!a == b`` is ``(not a) == b``, Python's
``not a == b`` is ``not (a == b)``), which no text substitution can get right.

Only the common subset is translated: names, dotted and indexed access (printed as dictionary
subscripts, since task data is JSON), literals, comparison, boolean and arithmetic operators,
JUEL ``empty`` and the ternary ``?:``. Method and function calls (``execution.getVariable(…)``,
``count(list)``), ``#{…}`` bean expressions and FEEL ranges/filters are rejected.

Timer values get the same treatment plus one more rule (trap 6): an unquoted ISO 8601 value such
as ``PT5M`` is what Camunda writes, but is a Python name, so it becomes the string ``"PT5M"``.
"""
from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass


class ExpressionError(ValueError):
    """An expression that cannot be translated to Python; the message says why."""


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    kind: str  # "name", "number", "string", "op", "end"
    value: str
    position: int


_JUEL_OPERATORS = ("==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%",
                   "(", ")", "[", "]", ".", ",", "?", ":")
_FEEL_OPERATORS = ("!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "(", ")", "[", "]", ".", ",")

# Word operators, mapped to the symbol the parser works with.
_JUEL_WORDS = {
    "and": "&&", "or": "||", "not": "!", "eq": "==", "ne": "!=", "lt": "<", "gt": ">",
    "le": "<=", "ge": ">=", "div": "/", "mod": "%", "empty": "empty",
}
_FEEL_WORDS = {"and": "&&", "or": "||", "not": "!"}
_LITERAL_WORDS = {"null": "None", "true": "True", "false": "False"}

_NUMBER = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def _tokenize(text: str, dialect: str) -> list[Token]:
    operators = _JUEL_OPERATORS if dialect == "juel" else _FEEL_OPERATORS
    words = _JUEL_WORDS if dialect == "juel" else _FEEL_WORDS
    quotes = "'\"" if dialect == "juel" else '"'
    tokens: list[Token] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
            continue
        if char in quotes:
            value, index = _read_string(text, index)
            tokens.append(Token("string", value, index))
            continue
        number = _NUMBER.match(text, index)
        after_dot = index > 0 and text[index - 1] == "."  # `1..5` is a range, not `1.` `.5`
        if number and (char.isdigit() or (char == "." and not after_dot and number.end() > index + 1)):
            tokens.append(Token("number", number.group(0), index))
            index = number.end()
            continue
        name = _NAME.match(text, index)
        if name:
            word = name.group(0)
            if word in words:
                tokens.append(Token("op", words[word], index))
            else:
                tokens.append(Token("name", word, index))
            index = name.end()
            continue
        for operator in operators:
            if text.startswith(operator, index):
                tokens.append(Token("op", operator, index))
                index += len(operator)
                break
        else:
            raise ExpressionError(f"unexpected character {char!r} at position {index + 1}")
    tokens.append(Token("end", "", len(text)))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    chars: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            chars.append(text[index + 1])
            index += 2
            continue
        if char == quote:
            return "".join(chars), index + 1
        chars.append(char)
        index += 1
    raise ExpressionError("unterminated string literal")


# --------------------------------------------------------------------------- parser

# Binary operators by precedence level (lowest first), and how each prints in Python.
_BINARY_LEVELS = (
    ("||",),
    ("&&",),
    ("==", "!=", "="),
    ("<", ">", "<=", ">="),
    ("+", "-"),
    ("*", "/", "%"),
)
_PYTHON_BINARY = {
    "||": "or", "&&": "and", "==": "==", "=": "==", "!=": "!=", "<": "<", ">": ">",
    "<=": "<=", ">=": ">=", "+": "+", "-": "-", "*": "*", "/": "/", "%": "%",
}
# Names that refer to engine objects of other BPMN engines; they do not exist in Phasegate.
_ENGINE_OBJECTS = {"execution", "authenticatedUserId", "camunda", "environment"}


class _Parser:
    """Precedence-climbing parser; every method returns Python source for what it parsed."""

    def __init__(self, tokens: list[Token], dialect: str):
        self.tokens = tokens
        self.index = 0
        self.dialect = dialect

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, value: str) -> bool:
        if self.current.kind == "op" and self.current.value == value:
            self.index += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            raise ExpressionError(f"expected {value!r} {self._where()}")

    def _where(self) -> str:
        token = self.current
        if token.kind == "end":
            return "at the end of the expression"
        return f"but found {token.value!r} at position {token.position + 1}"

    def parse(self) -> str:
        result = self.ternary()
        if self.current.kind != "end":
            raise ExpressionError(f"unsupported syntax: unexpected {self.current.value!r} "
                                  f"at position {self.current.position + 1}")
        return _strip_parens(result)

    def ternary(self) -> str:
        test = self.binary(0)
        if self.dialect == "juel" and self.accept("?"):
            when_true = self.ternary()
            self.expect(":")
            when_false = self.ternary()
            return f"({when_true} if {test} else {when_false})"
        return test

    def binary(self, level: int) -> str:
        if level == len(_BINARY_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.current.kind == "op" and self.current.value in _BINARY_LEVELS[level]:
            operator = self.take().value
            right = self.binary(level + 1)
            left = f"({left} {_PYTHON_BINARY[operator]} {right})"
        return left

    def unary(self) -> str:
        if self.accept("!"):
            return f"(not {self.unary()})"
        if self.accept("-"):
            return f"(-{self.unary()})"
        if self.accept("empty"):
            # JUEL `empty x`: true for null, "" and empty collections, but not for 0 or false.
            return f"({self.unary()} in (None, '', [], {{}}))"
        return self.postfix()

    def postfix(self) -> str:
        value, is_name = self.primary()
        while True:
            if self.accept("."):
                token = self.take()
                if token.kind != "name" and not (token.kind == "op" and token.value.isalpha()):
                    raise ExpressionError(f"expected a property name after '.' at position {token.position + 1}")
                if self.current.kind == "op" and self.current.value == "(":
                    raise ExpressionError(f"method calls are not supported: '{token.value}(…)'")
                value = f"{value}[{token.value!r}]"
            elif self.accept("["):
                if self.dialect == "feel":
                    raise ExpressionError("FEEL filters and list indexing are not supported")
                index = _strip_parens(self.ternary())
                self.expect("]")
                value = f"{value}[{index}]"
            elif self.current.kind == "op" and self.current.value == "(":
                what = value if is_name else "expression"
                raise ExpressionError(f"function calls are not supported: '{what}(…)'")
            else:
                return value
            is_name = False

    def primary(self) -> tuple[str, bool]:
        token = self.take()
        if token.kind == "number":
            return token.value, False
        if token.kind == "string":
            return repr(token.value), False
        if token.kind == "name":
            if token.value in _LITERAL_WORDS:
                return _LITERAL_WORDS[token.value], False
            return _python_name(token.value, self.dialect), True
        if token.kind == "op" and token.value == "(":
            inner = self.ternary()
            self.expect(")")
            return inner if inner.startswith("(") else f"({inner})", False
        if token.kind == "op" and token.value == "[":
            raise ExpressionError("list and range literals are not supported")
        if token.kind == "end":
            raise ExpressionError("the expression is incomplete")
        raise ExpressionError(f"unsupported syntax: unexpected {token.value!r} at position {token.position + 1}")


def _python_name(name: str, dialect: str) -> str:
    if name in _ENGINE_OBJECTS:
        raise ExpressionError(f"'{name}' is an object of another BPMN engine and does not exist in Phasegate")
    if "$" in name:
        raise ExpressionError(f"unsupported name {name!r}")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ExpressionError(f"unsupported keyword {name!r}")
    return name


def _strip_parens(source: str) -> str:
    """Drop one pair of parentheses that encloses the whole expression."""
    if not (source.startswith("(") and source.endswith(")")):
        return source
    depth = 0
    for position, char in enumerate(source):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0 and position != len(source) - 1:
                return source
    return source[1:-1]


# --------------------------------------------------------------------------- public API


def juel_to_python(body: str) -> str:
    """Translate the inside of a JUEL `${…}` expression."""
    return _translate(body, "juel")


def feel_to_python(body: str) -> str:
    """Translate a FEEL expression (the text after Camunda 8's leading `=`)."""
    return _translate(body, "feel")


def _translate(body: str, dialect: str) -> str:
    if not body.strip():
        raise ExpressionError("the expression is empty")
    python = _Parser(_tokenize(body, dialect), dialect).parse()
    check_python_expression(python)  # guards the translator itself
    return python


def check_python_expression(source: str) -> None:
    """Raise ExpressionError unless `source` compiles as a single Python expression."""
    try:
        compile(source, "<expression>", "eval")
    except SyntaxError as error:
        raise ExpressionError(f"not a valid Python expression ({error.msg})") from None
    except (ValueError, OverflowError) as error:
        raise ExpressionError(f"not a valid Python expression ({error})") from None


def check_python_script(source: str) -> None:
    """Raise ExpressionError unless `source` compiles as a Python script."""
    try:
        compile(source, "<script>", "exec")
    except SyntaxError as error:
        line = f" on line {error.lineno}" if error.lineno else ""
        raise ExpressionError(f"the script is not valid Python{line} ({error.msg})") from None
    except (ValueError, OverflowError) as error:
        raise ExpressionError(f"the script is not valid Python ({error})") from None


def dialect_of(text: str) -> str:
    """'juel', 'bean', 'feel', 'mixed' (text with an embedded ${…}) or 'python'."""
    stripped = text.strip()
    if stripped.startswith("#{"):
        return "bean"
    if stripped.startswith("${") and stripped.endswith("}") and stripped.count("${") == 1:
        return "juel"
    if "${" in stripped or "#{" in stripped:
        return "mixed"
    if stripped.startswith("=") and not stripped.startswith("=="):
        return "feel"
    return "python"


def translate_expression(text: str) -> str:
    """Any expression found in a model (condition, cardinality, …) as a Python expression."""
    stripped = (text or "").strip()
    if not stripped:
        raise ExpressionError("the expression is empty")
    dialect = dialect_of(stripped)
    if dialect == "bean":
        raise ExpressionError("#{…} (deferred/bean) expressions are not supported")
    if dialect == "mixed":
        raise ExpressionError("text with embedded ${…} expressions is not supported")
    if dialect == "juel":
        return juel_to_python(stripped[2:-1])
    if dialect == "feel":
        return feel_to_python(stripped[1:])
    check_python_expression(stripped)
    return stripped


def translate_value(text: str) -> tuple[str, bool]:
    """An attribute that is a literal or an expression (assignee, candidate groups).

    Returns (value, is_expression): ``"alice"`` → ("alice", False), ``"${initiator}"`` →
    ("initiator", True), ``"=owner"`` → ("owner", True).
    """
    stripped = (text or "").strip()
    dialect = dialect_of(stripped)
    if dialect in ("juel", "feel", "bean", "mixed"):
        return translate_expression(stripped), True
    return stripped, False


# --------------------------------------------------------------------------- timers

_ISO_DURATION = re.compile(
    r"^-?P(?=\d|T\d)(\d+(?:[.,]\d+)?Y)?(\d+(?:[.,]\d+)?M)?(\d+(?:[.,]\d+)?W)?(\d+(?:[.,]\d+)?D)?"
    r"(T(?=\d)(\d+(?:[.,]\d+)?H)?(\d+(?:[.,]\d+)?M)?(\d+(?:[.,]\d+)?S)?)?$",
    re.IGNORECASE,
)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_ISO_REPEAT = re.compile(r"^R\d*/\S+$", re.IGNORECASE)
_CRON = re.compile(r"^\S+(\s+\S+){4,6}$")

def looks_like_iso_timer(text: str) -> bool:
    value = text.strip()
    return bool(_ISO_DURATION.match(value) or _ISO_DATE.match(value) or _ISO_REPEAT.match(value))


def check_timer_literal(value: str, kind: str) -> None:
    """Raise ExpressionError unless `value` is an ISO 8601 value SpiffWorkflow accepts for `kind`."""
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

    value = value.strip()
    try:
        if kind == "timeDuration":
            if not _ISO_DURATION.match(value) or value.startswith("-"):
                raise ValueError
            TimerEventDefinition.parse_iso_duration(value)
        elif kind == "timeDate":
            if not _ISO_DATE.match(value):
                raise ValueError
            TimerEventDefinition.get_datetime(value)
        else:
            if not _ISO_REPEAT.match(value):
                raise ValueError
            TimerEventDefinition.parse_iso_recurring_interval(value)
    except Exception:
        expected = {
            "timeDuration": "an ISO 8601 duration such as PT5M or P1D",
            "timeDate": "an ISO 8601 date/time such as 2026-01-01T10:00:00Z",
            "timeCycle": "an ISO 8601 repeating interval such as R3/PT1H",
        }[kind]
        hint = " (cron expressions are not supported)" if _CRON.match(value) else ""
        raise ExpressionError(f"timer value {value!r} is not {expected}{hint}") from None


def translate_timer(text: str | None, kind: str) -> str:
    """A timer definition (`kind` is timeDate, timeDuration or timeCycle) as a Python expression.

    Unquoted ISO literals become string literals, ``${…}``/``=…`` are translated, Python string
    literals are checked, other Python expressions (evaluated at run time) must compile.
    """
    stripped = (text or "").strip()
    if not stripped:
        raise ExpressionError(f"the {kind} is empty")
    if looks_like_iso_timer(stripped):
        check_timer_literal(stripped, kind)
        return repr(stripped)
    dialect = dialect_of(stripped)
    if dialect == "python":
        if _CRON.match(stripped) and not _compiles(stripped):
            raise ExpressionError(f"timer value {stripped!r} looks like a cron expression; "
                                  "cron is not supported, use ISO 8601")
        try:
            check_python_expression(stripped)
        except ExpressionError:
            raise ExpressionError(f"timer value {stripped!r} is neither ISO 8601 nor a valid expression") from None
    python = translate_expression(stripped)
    try:
        literal = ast.literal_eval(python)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return python  # a real expression: its value is only known at run time
    if not isinstance(literal, str):
        raise ExpressionError(f"timer value {stripped!r} is not an ISO 8601 string")
    check_timer_literal(literal, kind)
    return repr(literal.strip())


def _compiles(source: str) -> bool:
    try:
        check_python_expression(source)
        return True
    except ExpressionError:
        return False


def is_identifier(source: str) -> bool:
    return source.isidentifier() and not keyword.iskeyword(source)


# --------------------------------------------------------------------------- DMN unary tests

# SpiffWorkflow's DMN engine evaluates an input entry against the input value either as
# `input == (entry)`, as `input entry` (`< 5`), or, when the entry contains `?`, with `?`
# replaced by the input value. Camunda's DMN tables are written in FEEL "unary tests"
# (`[250..1000]`, `"a","b"`, `not("x")`), which SpiffWorkflow would mis-read or fail on, so
# they are translated to the `?` form.


def feel_unary_tests_to_python(text: str) -> str:
    """FEEL unary tests as a Python expression over `?` (the input value).

    Raises ExpressionError when the text is not (the supported subset of) FEEL unary tests.
    """
    tokens = _tokenize(text, "feel")
    parser = _UnaryTestParser(tokens)
    python = parser.parse()
    check_python_expression(python.replace("?", "dmninputexpr"))
    return python


class _UnaryTestParser:
    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def is_op(self, value: str) -> bool:
        return self.current.kind == "op" and self.current.value == value

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self) -> str:
        if self.is_op("!"):  # `not` is tokenized as "!"
            self.take()
            if not self.is_op("("):
                raise ExpressionError("expected '(' after not")
            self.take()
            inner = self.tests()
            if not self.is_op(")"):
                raise ExpressionError("expected ')' to close not(…)")
            self.take()
            result = f"not ({inner})"
        else:
            result = self.tests()
        if self.current.kind != "end":
            raise ExpressionError(f"unexpected {self.current.value!r} in unary tests")
        return result

    def tests(self) -> str:
        tests = [self.test()]
        while self.is_op(","):
            self.take()
            tests.append(self.test())
        if len(tests) == 1:
            return tests[0]
        equalities = [t[len("? == "):] for t in tests if t.startswith("? == ")]
        if len(equalities) == len(tests):
            return f"? in ({', '.join(equalities)},)"
        return " or ".join(f"({t})" for t in tests)

    def test(self) -> str:
        for operator in ("<=", ">=", "<", ">"):
            if self.is_op(operator):
                self.take()
                return f"? {operator} {self.endpoint()}"
        if self.is_op("[") or self.is_op("(") or self.is_op("]"):
            return self.interval()
        return f"? == {self.endpoint()}"

    def interval(self) -> str:
        opening = self.take().value
        low = self.endpoint()
        for _ in range(2):
            if not self.is_op("."):
                raise ExpressionError("expected '..' in a range")
            self.take()
        high = self.endpoint()
        if not (self.is_op("]") or self.is_op(")") or self.is_op("[")):
            raise ExpressionError("expected ']' or ')' to close a range")
        closing = self.take().value
        low_op = "<=" if opening == "[" else "<"
        high_op = "<=" if closing == "]" else "<"
        return f"{low} {low_op} ? {high_op} {high}"

    def endpoint(self) -> str:
        negative = False
        if self.is_op("-"):
            self.take()
            negative = True
        token = self.take()
        if token.kind == "number":
            return f"-{token.value}" if negative else token.value
        if negative:
            raise ExpressionError("'-' must be followed by a number")
        if token.kind == "string":
            return repr(token.value)
        if token.kind == "name":
            if token.value in _LITERAL_WORDS:
                return _LITERAL_WORDS[token.value]
            parts = [_python_name(token.value, "feel")]
            while self.is_op(".") and self.tokens[self.index + 1].kind == "name":
                self.take()
                parts.append(repr(self.take().value))
            if self.is_op("("):
                raise ExpressionError(f"function calls are not supported: '{token.value}(…)'")
            return parts[0] + "".join(f"[{p}]" for p in parts[1:])
        raise ExpressionError(f"unexpected {token.value or 'end'!r} in unary tests")


def translate_dmn_input_entry(text: str | None) -> str | None:
    """A DMN input entry in the form SpiffWorkflow's DMN engine evaluates (None: matches anything)."""
    stripped = (text or "").strip()
    if stripped in ("", "-"):
        return text
    if "?" in stripped:  # already SpiffWorkflow's placeholder form
        check_python_expression(re.sub(r"\?", "dmninputexpr", stripped))
        return stripped
    try:
        return feel_unary_tests_to_python(stripped)
    except ExpressionError:
        pass
    for candidate in (f"(dmninputexpr) == ({stripped})", f"dmninputexpr {stripped}"):
        try:
            check_python_expression(candidate)
            return stripped
        except ExpressionError:
            continue
    raise ExpressionError("neither FEEL unary tests nor a Python test")


def translate_dmn_expression(text: str | None) -> str | None:
    """A DMN input expression or output entry as Python (FEEL/JUEL/Python accepted)."""
    stripped = (text or "").strip()
    if not stripped:
        return text
    if stripped in _LITERAL_WORDS:
        return _LITERAL_WORDS[stripped]
    if dialect_of(stripped) != "python":
        return translate_expression(stripped)
    try:
        check_python_expression(stripped)
        return stripped
    except ExpressionError:
        return feel_to_python(stripped)
