"""The label selector string grammar, tokenized and parsed as upstream does it.

A selector is requirements joined by commas: `key`, `!key`, `key=value`,
`key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key>1`,
`key<1`; whitespace between tokens is ignored and values may be empty
(`key=`, `key in (,a)`). Scanning first splits the text into tokens, then a
small recursive-descent parser walks them. The words `in` and `notin` are
operators only right after a key; in value position they are plain words. Every
error message is the text upstream produces, because clients show it verbatim.
"""

from __future__ import annotations

from enum import Enum, auto

from kubi.api.errors import go_quote
from kubi.api.selectors._labels import (
    DOES_NOT_EXIST,
    DOUBLE_EQUALS,
    EQUALS,
    EXISTS,
    GREATER_THAN,
    IN,
    LESS_THAN,
    NOT_EQUALS,
    NOT_IN,
    LabelSelector,
    Requirement,
    SelectorParseError,
    _qualified_name_errors,
    new_requirement,
)


class _Tok(Enum):
    END = auto()
    CLOSE = auto()
    COMMA = auto()
    BANG = auto()
    DOUBLE_EQUALS = auto()
    EQUALS = auto()
    GREATER = auto()
    IDENTIFIER = auto()
    IN = auto()
    LESS = auto()
    NOT_EQUALS = auto()
    NOT_IN = auto()
    OPEN = auto()


_LITERALS = {
    ")": _Tok.CLOSE,
    ",": _Tok.COMMA,
    "!": _Tok.BANG,
    "==": _Tok.DOUBLE_EQUALS,
    "=": _Tok.EQUALS,
    ">": _Tok.GREATER,
    "in": _Tok.IN,
    "<": _Tok.LESS,
    "!=": _Tok.NOT_EQUALS,
    "notin": _Tok.NOT_IN,
    "(": _Tok.OPEN,
}
_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")
_OPERATOR_OF = {
    _Tok.IN: IN,
    _Tok.EQUALS: EQUALS,
    _Tok.DOUBLE_EQUALS: DOUBLE_EQUALS,
    _Tok.GREATER: GREATER_THAN,
    _Tok.LESS: LESS_THAN,
    _Tok.NOT_IN: NOT_IN,
    _Tok.NOT_EQUALS: NOT_EQUALS,
}
_BINARY_NAMES = "in, notin, =, ==, !=, gt, lt"


def _scan(text: str) -> list[tuple[_Tok, str]]:
    """Split the selector into (token, literal) pairs, ending with END."""
    # Go reads bytes and treats a NUL as the end of input.
    text = text.split("\x00", 1)[0]
    tokens: list[tuple[_Tok, str]] = []
    pos, size = 0, len(text)
    while True:
        while pos < size and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= size:
            tokens.append((_Tok.END, ""))
            return tokens
        if text[pos] in _SPECIAL:
            # Longest run of symbols that still spells an operator (`!=`, `==`).
            end = pos + 1
            while end < size and text[end] in _SPECIAL and text[pos : end + 1] in _LITERALS:
                end += 1
            literal = text[pos:end]
            tokens.append((_LITERALS[literal], literal))
        else:
            end = pos
            while end < size and text[end] not in _SPECIAL and text[end] not in _WHITESPACE:
                end += 1
            literal = text[pos:end]
            tokens.append((_LITERALS.get(literal, _Tok.IDENTIFIER), literal))
        pos = end


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _scan(text)
        self.position = 0

    def peek(self, *, values: bool = True) -> tuple[_Tok, str]:
        return self._as_value(self.tokens[self.position], values)

    def take(self, *, values: bool = True) -> tuple[_Tok, str]:
        item = self.tokens[self.position]
        self.position += 1
        return self._as_value(item, values)

    @staticmethod
    def _as_value(item: tuple[_Tok, str], values: bool) -> tuple[_Tok, str]:
        if values and item[0] in (_Tok.IN, _Tok.NOT_IN):
            return _Tok.IDENTIFIER, item[1]
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, literal = self.peek()
            if tok == _Tok.END:
                return requirements
            if tok not in (_Tok.IDENTIFIER, _Tok.BANG):
                raise SelectorParseError(
                    f"found '{literal}', expected: !, identifier, or 'end of string'"
                )
            try:
                requirements.append(self.requirement())
            except SelectorParseError as exc:
                raise SelectorParseError(f"unable to parse requirement: {exc}") from None
            tok, literal = self.take()
            if tok == _Tok.END:
                return requirements
            if tok != _Tok.COMMA:
                raise SelectorParseError(f"found '{literal}', expected: ',' or 'end of string'")
            following, text = self.peek()
            if following not in (_Tok.IDENTIFIER, _Tok.BANG):
                raise SelectorParseError(f"found '{text}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        key, operator = self.key_and_inferred_operator()
        if operator in (EXISTS, DOES_NOT_EXIST):
            return new_requirement(key, operator, [])
        tok, literal = self.take(values=False)
        operator = _OPERATOR_OF.get(tok, "")
        if not operator:
            raise SelectorParseError(f"found '{literal}', expected: {_BINARY_NAMES}")
        values = self.value_set() if operator in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, operator, sorted(values))

    def key_and_inferred_operator(self) -> tuple[str, str]:
        operator = ""
        tok, literal = self.take()
        if tok == _Tok.BANG:
            operator = DOES_NOT_EXIST
            tok, literal = self.take()
        if tok != _Tok.IDENTIFIER:
            raise SelectorParseError(f"found '{literal}', expected: identifier")
        problems = _qualified_name_errors(literal)
        if problems:
            # Upstream validates the key here with no field path, hence `<nil>`.
            raise SelectorParseError(
                f"<nil>: Invalid value: {go_quote(literal)}: {'; '.join(problems)}"
            )
        if self.peek()[0] in (_Tok.END, _Tok.COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        return literal, operator

    def value_set(self) -> set[str]:
        tok, literal = self.take()
        if tok != _Tok.OPEN:
            raise SelectorParseError(f"found '{literal}' expected: '('")
        tok, literal = self.peek()
        if tok == _Tok.CLOSE:
            self.take()
            return {""}  # `in ()` is the set holding the empty value
        if tok not in (_Tok.IDENTIFIER, _Tok.COMMA):
            raise SelectorParseError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifier_list()
        if self.take()[0] != _Tok.CLOSE:
            # Upstream reports the token seen before the list, not after it.
            raise SelectorParseError(f"found '{literal}', expected: ')'")
        return values

    def identifier_list(self) -> set[str]:
        """Comma-separated, possibly empty values; an empty slot is the value ''."""
        values: set[str] = set()
        while True:
            tok, literal = self.take()
            if tok == _Tok.IDENTIFIER:
                values.add(literal)
                following, text = self.peek()
                if following == _Tok.CLOSE:
                    return values
                if following != _Tok.COMMA:
                    raise SelectorParseError(f"found '{text}', expected: ',' or ')'")
            elif tok == _Tok.COMMA:
                if not values:
                    values.add("")
                following = self.peek()[0]
                if following == _Tok.CLOSE:
                    values.add("")
                    return values
                if following == _Tok.COMMA:
                    self.take()
                    values.add("")
            else:
                raise SelectorParseError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.peek()[0] in (_Tok.END, _Tok.COMMA):
            return {""}
        tok, literal = self.take()
        if tok != _Tok.IDENTIFIER:
            raise SelectorParseError(f"found '{literal}', expected: identifier")
        return {literal}


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the label selector string grammar; raise SelectorParseError with upstream's text."""
    return LabelSelector(_Parser(text).parse())
