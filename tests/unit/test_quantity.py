"""Resource quantities: parsing, exact values and the canonical spelling."""

from __future__ import annotations

import pytest

from kubi.api.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    ERR_FORMAT_WRONG,
    ERR_SUFFIX,
    canonical,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "shown", "fmt"),
    [
        ("100m", "100m", DECIMAL_SI),
        ("1000m", "1", DECIMAL_SI),
        ("1.5", "1500m", DECIMAL_SI),
        ("0.5", "500m", DECIMAL_SI),
        (".5", "500m", DECIMAL_SI),
        ("1k", "1k", DECIMAL_SI),
        ("1500", "1500", DECIMAL_SI),
        ("15000", "15k", DECIMAL_SI),
        ("1000000", "1M", DECIMAL_SI),
        ("0.0001", "100u", DECIMAL_SI),
        ("500Mi", "500Mi", BINARY_SI),
        ("1.5Gi", "1536Mi", BINARY_SI),
        ("0.5Mi", "512Ki", BINARY_SI),
        ("1.5Ki", "1536", BINARY_SI),
        ("1.1Ki", "1126400m", BINARY_SI),
        ("1024", "1024", DECIMAL_SI),
        ("2e3", "2e3", DECIMAL_EXPONENT),
        ("1E3", "1e3", DECIMAL_EXPONENT),
        ("1e-12", "1e-9", DECIMAL_EXPONENT),
        ("-100m", "-100m", DECIMAL_SI),
        ("0", "0", DECIMAL_SI),
        ("01", "1", DECIMAL_SI),
        (2, "2", DECIMAL_SI),
        (0.25, "250m", DECIMAL_SI),
    ],
)
def test_canonical_form(text: object, shown: str, fmt: str) -> None:
    q = parse_quantity(text)
    assert str(q) == shown
    assert q.format == fmt


@pytest.mark.parametrize(
    ("text", "milli", "value"),
    [
        ("100m", 100, 1),
        ("1", 1000, 1),
        ("1.5Gi", 1610612736000, 1610612736),
        ("1n", 1, 1),
        ("-1.5", -1500, -2),
    ],
)
def test_scaled_values_round_away_from_zero(text: str, milli: int, value: int) -> None:
    q = parse_quantity(text)
    assert q.milli_value() == milli
    assert q.value() == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ERR_FORMAT_WRONG),
        ("abc", ERR_FORMAT_WRONG),
        ("1x", ERR_FORMAT_WRONG),
        ("1.2.3", ERR_FORMAT_WRONG),
        ("1Kb", ERR_FORMAT_WRONG),
        ("1K", ERR_SUFFIX),
        ("e", ERR_SUFFIX),
        (True, ERR_FORMAT_WRONG),
    ],
)
def test_parse_errors(text: object, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_quantity(text)
    assert str(exc.value) == message


def test_error_text_is_upstreams() -> None:
    assert ERR_FORMAT_WRONG == (
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


def test_comparison_and_arithmetic() -> None:
    assert parse_quantity("1Gi") > parse_quantity("1G")
    assert parse_quantity("1000m") == parse_quantity("1")
    assert parse_quantity("500m") + parse_quantity("0.5") == parse_quantity("1")
    assert str(parse_quantity("0") + parse_quantity("1Mi")) == "1Mi"
    assert min([parse_quantity("2"), parse_quantity("100m")]) == parse_quantity("0.1")


def test_canonical_helper() -> None:
    assert canonical("2048Mi") == "2Gi"
    with pytest.raises(ValueError):
        canonical("lots")
