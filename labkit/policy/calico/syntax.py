"""The Calico selector language: AST, tokenizer and parser (no cluster knowledge here).

The grammar follows Calico's own tokenizer and parser (libcalico-go
``lib/selector``, v3.33): ``k == 'v'``, ``k != 'v'``, ``has(k)``,
``k in {'a', 'b'}``, ``k not in {...}``, ``k contains 's'``,
``k starts with 's'``, ``k ends with 's'``, ``all()``, ``global()``, ``!``,
``&&``, ``||`` and parentheses. Precedence, highest first: match operators,
parentheses, ``!``, ``&&``, ``||``; so ``!a == 'x'`` is ``!(a == 'x')``.
Strings are quoted with ``'`` or ``"`` and have no escapes; whitespace is a
space or a tab (as upstream: a newline inside a selector is an error).

Label semantics, as upstream: ``!=`` and ``not in`` also match resources
that lack the label; every other match operator needs the label.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class SelectorError(ValueError):
    """A selector that Calico's parser rejects; ``position`` is a character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position + 1})")
        self.position = position


# -- AST ------------------------------------------------------------------------------------
class Node:
    """Base of the AST; every node is a frozen dataclass (hashable, usable as a cache key)."""

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        raise NotImplementedError


def _quote(value: str) -> str:
    return f"'{value}'" if '"' in value else f'"{value}"'


@dataclass(frozen=True)
class All(Node):
    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return True

    def __str__(self) -> str:
        return "all()"


@dataclass(frozen=True)
class Global(Node):
    """``global()``: non-namespaced resources; on labels alone it matches everything."""

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return True

    def __str__(self) -> str:
        return "global()"


@dataclass(frozen=True)
class Has(Node):
    key: str

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return self.key in labels

    def __str__(self) -> str:
        return f"has({self.key})"


@dataclass(frozen=True)
class Eq(Node):
    key: str
    value: str

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.key) == self.value

    def __str__(self) -> str:
        return f"{self.key} == {_quote(self.value)}"


@dataclass(frozen=True)
class Ne(Node):
    key: str
    value: str

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.key) != self.value

    def __str__(self) -> str:
        return f"{self.key} != {_quote(self.value)}"


@dataclass(frozen=True)
class In(Node):
    key: str
    values: frozenset[str]

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return self.key in labels and labels[self.key] in self.values

    def __str__(self) -> str:
        return f"{self.key} in {{{', '.join(_quote(v) for v in sorted(self.values))}}}"


@dataclass(frozen=True)
class NotIn(Node):
    key: str
    values: frozenset[str]

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return self.key not in labels or labels[self.key] not in self.values

    def __str__(self) -> str:
        return f"{self.key} not in {{{', '.join(_quote(v) for v in sorted(self.values))}}}"


STRING_TESTS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda have, want: want in have,
    "starts with": lambda have, want: have.startswith(want),
    "ends with": lambda have, want: have.endswith(want),
}


@dataclass(frozen=True)
class StringTest(Node):
    """``k contains 's'``, ``k starts with 's'``, ``k ends with 's'``."""

    key: str
    op: str  # a key of STRING_TESTS
    value: str

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return self.key in labels and STRING_TESTS[self.op](labels[self.key], self.value)

    def __str__(self) -> str:
        return f"{self.key} {self.op} {_quote(self.value)}"


@dataclass(frozen=True)
class Not(Node):
    operand: Node

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return not self.operand.evaluate(labels)

    def __str__(self) -> str:
        return f"!{self.operand}"


@dataclass(frozen=True)
class And(Node):
    operands: tuple[Node, ...]

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return all(o.evaluate(labels) for o in self.operands)

    def __str__(self) -> str:
        return "(" + " && ".join(str(o) for o in self.operands) + ")"


@dataclass(frozen=True)
class Or(Node):
    operands: tuple[Node, ...]

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return any(o.evaluate(labels) for o in self.operands)

    def __str__(self) -> str:
        return "(" + " || ".join(str(o) for o in self.operands) + ")"


# -- tokenizer --------------------------------------------------------------------------------
_WS = " \t"
_IDENT = re.compile(r"[a-zA-Z0-9_./-]+")


@dataclass(frozen=True)
class _Tok:
    kind: str  # label string ( ) { } , == != ! && || in notin contains startswith endswith
    #            has all global eof
    value: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    simple = {"(": "(", ")": ")", "{": "{", "}": "}", ",": ","}
    while True:
        while i < n and text[i] in _WS:
            i += 1
        if i >= n:
            toks.append(_Tok("eof", "", i))
            return toks
        c = text[i]
        last = toks[-1].kind if toks else ""
        if c in simple:
            toks.append(_Tok(simple[c], c, i))
            i += 1
        elif c in "'\"":
            end = text.find(c, i + 1)
            if end < 0:
                raise SelectorError("unterminated string", i)
            toks.append(_Tok("string", text[i + 1:end], i))
            i = end + 1
        elif text.startswith("==", i):
            toks.append(_Tok("==", "==", i))
            i += 2
        elif c == "=":
            raise SelectorError("expected '==' (a single '=' is not an operator)", i)
        elif c == "!":
            if text.startswith("!=", i):
                toks.append(_Tok("!=", "!=", i))
                i += 2
            else:
                toks.append(_Tok("!", "!", i))
                i += 1
        elif c in "&|":
            if not text.startswith(c * 2, i):
                raise SelectorError(f"expected '{c * 2}'", i)
            toks.append(_Tok(c * 2, c * 2, i))
            i += 2
        elif last == "label":
            i = _operator_word(text, i, toks)
        elif text.startswith("has(", i):
            j = i + 4
            while j < n and text[j] in _WS:
                j += 1
            m = _IDENT.match(text, j)
            if not m:
                raise SelectorError("no label name in has( expression", j)
            j = m.end()
            while j < n and text[j] in _WS:
                j += 1
            if j >= n or text[j] != ")":
                raise SelectorError("no closing ')' after has(", j)
            toks.append(_Tok("has", m.group(), i))
            i = j + 1
        elif text.startswith("all(", i) or text.startswith("global(", i):
            word = "all" if text[i] == "a" else "global"
            j = i + len(word) + 1
            while j < n and text[j] in _WS:
                j += 1
            if j >= n or text[j] != ")":
                raise SelectorError(f"no closing ')' after {word}(", j)
            toks.append(_Tok(word, word, i))
            i = j + 1
        else:
            m = _IDENT.match(text, i)
            if not m:
                raise SelectorError(f"unexpected character {c!r}", i)
            toks.append(_Tok("label", m.group(), i))
            i = m.end()


def _operator_word(text: str, i: int, toks: list[_Tok]) -> int:
    """After a label only an operator word may follow: in, not in, contains, starts/ends with."""

    def skip_ws(j: int) -> int:
        while j < len(text) and text[j] in _WS:
            j += 1
        return j

    label = toks[-1].value
    for word, kind in (("contains", "contains"), ("in", "in")):
        if text.startswith(word, i):
            toks.append(_Tok(kind, word, i))
            return i + len(word)
    for first, kind in (("starts", "starts with"), ("ends", "ends with"), ("not", "not in")):
        if text.startswith(first, i):
            j = skip_ws(i + len(first))
            second = kind.split()[1]
            if text.startswith(second, j):
                toks.append(_Tok(kind, kind, i))
                return j + len(second)
            break
    raise SelectorError(f"unexpected characters after label {label!r}, expected an operator", i)


# -- parser -----------------------------------------------------------------------------------
#: How deeply parentheses may nest. Calico's parser (Go) has no fixed limit; labkit's is
#: recursive, so it stops here with a clear error instead of a RecursionError. Selectors
#: written by people nest a few levels.
MAX_NESTING = 128


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "eof":
            return All()  # the empty selector selects everything
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "eof":
            raise SelectorError(f"unexpected {_describe(tok)} after a complete expression "
                                "(join expressions with && or ||)", tok.pos)
        return node

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.peek().kind == "||":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.operation()]
        while self.peek().kind == "&&":
            self.take()
            parts.append(self.operation())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def operation(self) -> Node:
        negated = False
        while self.peek().kind == "!":
            self.take()
            negated = not negated
        node = self.atom()
        return Not(node) if negated else node

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind == "has":
            return Has(tok.value)
        if tok.kind == "all":
            return All()
        if tok.kind == "global":
            return Global()
        if tok.kind == "(":
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise SelectorError(f"parentheses nest more than {MAX_NESTING} levels deep "
                                    "(labkit's limit; flatten the expression)", tok.pos)
            node = self.or_expr()
            self.depth -= 1
            close = self.take()
            if close.kind != ")":
                raise SelectorError(f"expected ')' but found {_describe(close)}", close.pos)
            return node
        if tok.kind == "label":
            return self.comparison(tok.value)
        raise SelectorError(f"unexpected {_describe(tok)}", tok.pos)

    def comparison(self, key: str) -> Node:
        op = self.take()
        if op.kind in ("==", "!=", "contains", "starts with", "ends with"):
            value = self.take()
            if value.kind != "string":
                raise SelectorError(f"expected a quoted string after '{op.value}' but found "
                                    f"{_describe(value)}", value.pos)
            if op.kind == "==":
                return Eq(key, value.value)
            if op.kind == "!=":
                return Ne(key, value.value)
            return StringTest(key, op.kind, value.value)
        if op.kind in ("in", "not in"):
            brace = self.take()
            if brace.kind != "{":
                raise SelectorError(f"expected a set literal {{'a', 'b'}} after '{op.value}'",
                                    brace.pos)
            values: list[str] = []
            while self.peek().kind == "string":
                values.append(self.take().value)
                if self.peek().kind != ",":
                    break
                self.take()
            close = self.take()
            if close.kind != "}":
                raise SelectorError(f"expected '}}' but found {_describe(close)}", close.pos)
            return (In if op.kind == "in" else NotIn)(key, frozenset(values))
        raise SelectorError(f"expected an operator (==, !=, in, not in, ...) after label {key!r}"
                            f" but found {_describe(op)}", op.pos)


def _describe(tok: _Tok) -> str:
    if tok.kind == "eof":
        return "end of the selector"
    if tok.kind == "string":
        return f"string {tok.value!r}"
    if tok.kind == "label":
        return f"label {tok.value!r}"
    return f"{tok.value!r}"


def parse_node(text: str) -> Node:
    """Parse a selector into its AST; raise :class:`SelectorError` when Calico would reject it."""
    return _Parser(text).parse()
