"""The safe transform functions a mapping rule may chain.

Every transform is a small pydantic model: its ``fn`` names it and its other fields are
its arguments, validated when a tenant file is loaded (an unknown transform or a bad
argument is a load error naming the JSON path). Nothing in a tenant file is ever
evaluated as code: rules only pick registered transforms and give them data.

In a rule a step is written as its name (``"trim"``) or as an object
(``{"fn": "truncate", "length": 100}``). :data:`TRANSFORMS` is the registry.

At run time :meth:`Transform.apply` raises :class:`TransformError` for a value it cannot
handle; the mapper turns that into a per-record, per-field error.

Most transforms let an empty value through unchanged as ``None`` (Lightspeed writes
missing values as ``false`` or ``""``); ``default``, ``coalesce``, ``concat``,
``lookup``, ``split_street`` and ``to_bool`` look at empty values themselves.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from html.parser import HTMLParser
from typing import Any, ClassVar, Literal, Mapping, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import Annotated

from koppel.mapping.countries import country_code
from koppel.mapping.paths import check_path, get_path, is_empty

#: Settings tables a ``lookup`` may name (``settings.<table>`` in the tenant file).
TableName = Literal["payment_methods", "payment_terms", "countries", "tax_codes"]

MAX_REGEX_LENGTH = 200
MAX_REGEX_INPUT = 10_000


class TransformError(ValueError):
    """A transform could not handle a value (a run-time, per-field problem)."""


@dataclass
class TransformContext:
    """What a transform may read besides its input value."""

    record: Mapping[str, Any]
    root: Mapping[str, Any] | None = None
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def get(self, path: str) -> Any:
        """Read a dot path from the current record (``$.`` paths from the root)."""
        return get_path(self.record, path, self.root if self.root is not None else self.record)


def _path(value: str) -> str:
    return check_path(value)


Path = Annotated[str, BeforeValidator(_path)]


class Transform(BaseModel):
    """Base of all transforms; subclasses set ``fn`` and implement :meth:`run`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Whether :meth:`run` sees empty values (else they map to ``None`` untouched).
    handles_empty: ClassVar[bool] = False

    def apply(self, value: Any, ctx: TransformContext) -> Any:
        if not self.handles_empty and is_empty(value):
            return None
        return self.run(value, ctx)

    def run(self, value: Any, ctx: TransformContext) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


TRANSFORMS: dict[str, type[Transform]] = {}


def register(cls: type[Transform]) -> type[Transform]:
    """Add a transform class to :data:`TRANSFORMS` under its ``fn`` name."""
    name = cls.model_fields["fn"].default
    TRANSFORMS[name] = cls
    return cls


# ---------------------------------------------------------------- value helpers


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or isinstance(value, (dict, list, tuple)):
        raise TransformError(f"expected text, got {type(value).__name__}")
    return str(value)


_NUMBER_RE = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def parse_decimal(value: Any, locale: str = "auto") -> Decimal:
    """Parse a number the way shops write it: ``12.50``, ``"12,50"``, ``"1.234,56"``.

    ``locale`` ``nl`` reads ``.`` as thousands and ``,`` as decimal separator, ``en``
    the reverse; ``auto`` takes the right-most of ``.``/``,`` as the decimal separator
    when both occur, and a lone separator as decimal unless it occurs more than once.
    """
    if isinstance(value, bool):
        raise TransformError(f"expected a number, got {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise TransformError(f"expected a number, got {type(value).__name__}")
    text = value.strip().replace("\u00a0", "").replace(" ", "").replace("€", "")
    if locale == "nl":
        text = text.replace(".", "").replace(",", ".")
    elif locale == "en":
        text = text.replace(",", "")
    else:
        if "," in text and "." in text:
            if text.rfind(",") > text.rfind("."):
                text = text.replace(".", "").replace(",", ".")
            else:
                text = text.replace(",", "")
        elif text.count(",") > 1:
            text = text.replace(",", "")
        elif text.count(".") > 1:
            text = text.replace(".", "")
        else:
            text = text.replace(",", ".")
    if not _NUMBER_RE.match(text):
        raise TransformError(f"not a number: {value!r}")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex guards this
        raise TransformError(f"not a number: {value!r}") from exc


def _tidy_decimal(number: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (``21.00`` → ``21``)."""
    if number == number.to_integral_value():
        return number.quantize(Decimal(1))
    return number.normalize()


_DATE_FORMATS = {"lightspeed": "%Y-%m-%d %H:%M:%S", "date": "%Y-%m-%d"}
_STRFTIME_RE = re.compile(r"%[aAbBdHImMpSyYzZjf%]")


def _check_strftime(value: str) -> str:
    if value in ("iso", "auto") or value in _DATE_FORMATS:
        return value
    if len(value) > 64 or "%" not in value:
        raise ValueError("must be 'iso', 'auto', 'lightspeed', 'date' or a strftime pattern")
    stripped = _STRFTIME_RE.sub("", value)
    if "%" in stripped:
        raise ValueError(f"unsupported directive in date format {value!r}")
    return value


DateFormat = Annotated[str, BeforeValidator(_check_strftime)]


def parse_datetime(value: Any, fmt: str = "auto") -> datetime:
    """Parse ISO 8601 (``2019-08-21T17:15:00+00:00``), Lightspeed filter format
    (``2019-08-21 17:15:00``), a plain date, or a given strftime pattern."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = _text(value).strip()
    if fmt in ("auto", "iso"):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            if fmt == "iso":
                raise TransformError(f"not an ISO 8601 date/time: {value!r}") from None
        for pattern in _DATE_FORMATS.values():
            try:
                return datetime.strptime(text, pattern)
            except ValueError:
                continue
        raise TransformError(f"not a date/time: {value!r}")
    try:
        return datetime.strptime(text, _DATE_FORMATS.get(fmt, fmt))
    except ValueError:
        raise TransformError(f"date/time {value!r} does not match format {fmt!r}") from None


def lookup_key(value: Any) -> str:
    """Normalise a lookup key: numbers lose trailing zeros (``21.0`` → ``21``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, Decimal)):
        return str(_tidy_decimal(parse_decimal(value)))
    text = str(value).strip()
    if _NUMBER_RE.match(text):
        return str(_tidy_decimal(Decimal(text)))
    return text


# ---------------------------------------------------------------- text


@register
class Trim(Transform):
    """Strip surrounding whitespace; ``collapse`` also squeezes inner runs to one space."""

    fn: Literal["trim"] = "trim"
    collapse: bool = False

    def run(self, value, ctx):
        text = _text(value).strip()
        if self.collapse:
            text = re.sub(r"\s+", " ", text)
        return text or None


@register
class Upper(Transform):
    """Upper-case text."""

    fn: Literal["upper"] = "upper"

    def run(self, value, ctx):
        return _text(value).upper()


@register
class Lower(Transform):
    """Lower-case text."""

    fn: Literal["lower"] = "lower"

    def run(self, value, ctx):
        return _text(value).lower()


@register
class Title(Transform):
    """Title-case text (``jan de VRIES`` → ``Jan De Vries``)."""

    fn: Literal["title"] = "title"

    def run(self, value, ctx):
        return _text(value).title()


@register
class Truncate(Transform):
    """Cut text to ``length`` characters (``suffix`` counted in, e.g. ``"…"``)."""

    fn: Literal["truncate"] = "truncate"
    length: int = Field(ge=1, le=100_000)
    suffix: str = Field(default="", max_length=10)

    @model_validator(mode="after")
    def _suffix_fits(self):
        if len(self.suffix) >= self.length:
            raise ValueError("suffix must be shorter than length")
        return self

    def run(self, value, ctx):
        text = _text(value)
        if len(text) <= self.length:
            return text
        return text[: self.length - len(self.suffix)].rstrip() + self.suffix


@register
class Replace(Transform):
    """Replace literal text ``old`` by ``new``."""

    fn: Literal["replace"] = "replace"
    old: str = Field(min_length=1, max_length=200)
    new: str = Field(default="", max_length=200)

    def run(self, value, ctx):
        return _text(value).replace(self.old, self.new)


_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]")
_BACKREF_IN_PATTERN = re.compile(r"\\[1-9]|\(\?P=")


@register
class RegexReplace(Transform):
    """Replace matches of a bounded regular expression.

    The pattern is limited to 200 characters and may not nest quantifiers (``(a+)+``)
    or use back-references — the shapes that make matching explode. The input is
    limited to 10,000 characters. ``replacement`` may refer to groups as ``\\1`` or
    ``\\g<name>``.
    """

    fn: Literal["regex_replace"] = "regex_replace"
    pattern: str = Field(min_length=1, max_length=MAX_REGEX_LENGTH)
    replacement: str = Field(default="", max_length=200)
    ignore_case: bool = False

    @model_validator(mode="after")
    def _check_pattern(self):
        if _NESTED_QUANTIFIER.search(self.pattern):
            raise ValueError("nested quantifiers such as '(a+)+' are not allowed")
        if _BACKREF_IN_PATTERN.search(self.pattern):
            raise ValueError("back-references are not allowed in the pattern")
        try:
            compiled = re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        for number in re.findall(r"\\(\d+)", self.replacement):
            if int(number) > compiled.groups:
                raise ValueError(f"replacement refers to group {number}, the pattern has {compiled.groups}")
        for name in re.findall(r"\\g<(\w+)>", self.replacement):
            if not (name.isdigit() and int(name) <= compiled.groups) and name not in compiled.groupindex:
                raise ValueError(f"replacement refers to unknown group {name!r}")
        return self

    def run(self, value, ctx):
        text = _text(value)
        if len(text) > MAX_REGEX_INPUT:
            raise TransformError(f"text longer than {MAX_REGEX_INPUT} characters for regex_replace")
        flags = re.IGNORECASE if self.ignore_case else 0
        return re.sub(self.pattern, self.replacement, text, flags=flags)


class _TextExtractor(HTMLParser):
    _BLOCK = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr"}
    _SKIP = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


@register
class StripHtml(Transform):
    """HTML (Lightspeed's long ``content``) to plain text: block tags become line
    breaks, entities are decoded, scripts and styles dropped, blank lines squeezed."""

    fn: Literal["strip_html"] = "strip_html"

    def run(self, value, ctx):
        parser = _TextExtractor()
        parser.feed(_text(value))
        parser.close()
        lines = [re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in "".join(parser.parts).split("\n")]
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
        return html.unescape(text) or None


@register
class Email(Transform):
    """Normalise an e-mail address (trimmed, lower case); an invalid one becomes
    ``None`` (``invalid: "error"`` reports it instead)."""

    fn: Literal["email"] = "email"
    invalid: Literal["null", "error"] = "null"

    _EMAIL_RE: ClassVar[re.Pattern] = re.compile(r"^[^@\s,;<>()\[\]\"]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$")

    def run(self, value, ctx):
        text = _text(value).strip().lower()
        if len(text) <= 254 and self._EMAIL_RE.match(text) and ".." not in text:
            return text
        if self.invalid == "error":
            raise TransformError("not a valid e-mail address")
        return None


# ---------------------------------------------------------------- numbers


@register
class ToDecimal(Transform):
    """Parse a number (``"12,50"``, ``"1.234,56"``, ``12.5``) into a ``Decimal``."""

    fn: Literal["to_decimal"] = "to_decimal"
    locale: Literal["auto", "nl", "en"] = "auto"

    def run(self, value, ctx):
        return parse_decimal(value, self.locale)


@register
class ToInt(Transform):
    """Parse a whole number; a fraction is an error."""

    fn: Literal["to_int"] = "to_int"

    def run(self, value, ctx):
        number = parse_decimal(value)
        if number != number.to_integral_value():
            raise TransformError(f"not a whole number: {value!r}")
        return int(number)


@register
class Round(Transform):
    """Round half-up to ``dp`` decimals (``2.345`` → ``2.35``)."""

    fn: Literal["round"] = "round"
    dp: int = Field(default=2, ge=0, le=8)

    def run(self, value, ctx):
        return parse_decimal(value).quantize(Decimal(1).scaleb(-self.dp), rounding=ROUND_HALF_UP)


def _positive_decimal(value: Any) -> Decimal:
    try:
        number = parse_decimal(value, "en")
    except TransformError as exc:
        raise ValueError(str(exc)) from None
    return number


DecimalArg = Annotated[Decimal, BeforeValidator(_positive_decimal)]


@register
class Multiply(Transform):
    """Multiply by ``factor`` (unit conversions: grams → kilograms is 0.001)."""

    fn: Literal["multiply"] = "multiply"
    factor: DecimalArg

    def run(self, value, ctx):
        return parse_decimal(value) * self.factor


@register
class Divide(Transform):
    """Divide by ``divisor`` (not zero)."""

    fn: Literal["divide"] = "divide"
    divisor: DecimalArg

    @field_validator("divisor")
    @classmethod
    def _not_zero(cls, divisor: Decimal) -> Decimal:
        if divisor == 0:
            raise ValueError("divisor must not be zero")
        return divisor

    def run(self, value, ctx):
        return parse_decimal(value) / self.divisor


@register
class ToPercent(Transform):
    """A VAT rate as a percentage: Lightspeed's ``taxRate`` is a fraction (``0.21`` →
    ``21``); ``from: "percent"`` keeps ``21``; ``auto`` scales values below 1."""

    fn: Literal["to_percent"] = "to_percent"
    source: Literal["fraction", "percent", "auto"] = Field(default="auto", alias="from")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def run(self, value, ctx):
        number = parse_decimal(value)
        if self.source == "fraction" or (self.source == "auto" and abs(number) < 1):
            number = number * 100
        return _tidy_decimal(number)


@register
class ToBool(Transform):
    """Read a flag: ``true``/``"enabled"``/``"indicator"``/``"yes"``/``"1"`` are true,
    anything empty (``false``, ``""``) or another word is false."""

    fn: Literal["to_bool"] = "to_bool"
    true_values: list[str] = Field(
        default_factory=lambda: ["true", "enabled", "indicator", "yes", "1", "on", "ja"], max_length=20
    )
    handles_empty: ClassVar[bool] = True

    def run(self, value, ctx):
        if isinstance(value, bool):
            return value
        if is_empty(value):
            return False
        return str(value).strip().lower() in {item.lower() for item in self.true_values}


# ---------------------------------------------------------------- dates


@register
class ParseDate(Transform):
    """Parse a date/time: ``format`` ``auto`` (ISO 8601, ``YYYY-MM-DD HH:MM:SS`` or a
    date), ``iso``, ``lightspeed``, ``date`` or a strftime pattern."""

    fn: Literal["parse_date"] = "parse_date"
    format: DateFormat = "auto"

    def run(self, value, ctx):
        return parse_datetime(value, self.format)


def _check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


TimeZoneName = Annotated[str, BeforeValidator(_check_timezone)]


@register
class FormatDate(Transform):
    """Format a date/time: ``iso``, ``date`` (``YYYY-MM-DD``), ``lightspeed``
    (``YYYY-MM-DD HH:MM:SS``) or a strftime pattern; ``tz`` converts first."""

    fn: Literal["format_date"] = "format_date"
    format: DateFormat = "iso"
    tz: TimeZoneName | None = None

    def run(self, value, ctx):
        moment = parse_datetime(value)
        if self.tz and moment.tzinfo is not None:
            moment = moment.astimezone(ZoneInfo(self.tz))
        if self.format in ("iso", "auto"):
            return moment.isoformat()
        return moment.strftime(_DATE_FORMATS.get(self.format, self.format))


@register
class ToDate(Transform):
    """The calendar date of a date/time; ``tz`` converts an aware time first (an order
    at 23:30 UTC is the next day in Amsterdam)."""

    fn: Literal["to_date"] = "to_date"
    tz: TimeZoneName | None = None

    def run(self, value, ctx):
        moment = parse_datetime(value)
        if self.tz and moment.tzinfo is not None:
            moment = moment.astimezone(ZoneInfo(self.tz))
        return moment.date()


# ---------------------------------------------------------------- choosing values


@register
class Default(Transform):
    """Use ``value`` when the input is empty (``None``, ``false``, ``""``)."""

    fn: Literal["default"] = "default"
    value: Any
    handles_empty: ClassVar[bool] = True

    def run(self, value, ctx):
        return self.value if is_empty(value) else value


@register
class Coalesce(Transform):
    """The first non-empty of: the input, the values at ``paths``, then ``values``."""

    fn: Literal["coalesce"] = "coalesce"
    paths: list[Path] = Field(default_factory=list, max_length=20)
    values: list[Any] = Field(default_factory=list, max_length=20)
    handles_empty: ClassVar[bool] = True

    @model_validator(mode="after")
    def _something(self):
        if not self.paths and not self.values:
            raise ValueError("coalesce needs 'paths' or 'values'")
        return self

    def run(self, value, ctx):
        if not is_empty(value):
            return value
        for path in self.paths:
            candidate = ctx.get(path)
            if not is_empty(candidate):
                return candidate
        for candidate in self.values:
            if not is_empty(candidate):
                return candidate
        return None


@register
class Concat(Transform):
    """Join the input and the values at ``paths`` with ``separator``, skipping empties
    (``firstname`` + ``middlename`` + ``lastname`` → ``"Jan de Vries"``)."""

    fn: Literal["concat"] = "concat"
    paths: list[Path] = Field(min_length=1, max_length=20)
    separator: str = Field(default=" ", max_length=10)
    include_value: bool = True
    handles_empty: ClassVar[bool] = True

    def run(self, value, ctx):
        candidates = ([value] if self.include_value else []) + [ctx.get(path) for path in self.paths]
        parts = [_text(item).strip() for item in candidates if not is_empty(item)]
        return self.separator.join(parts) or None


@register
class First(Transform):
    """The first non-empty element of a list."""

    fn: Literal["first"] = "first"

    def run(self, value, ctx):
        if not isinstance(value, (list, tuple)):
            return value
        return next((item for item in value if not is_empty(item)), None)


@register
class Join(Transform):
    """Join a list into text with ``separator``, skipping empty elements."""

    fn: Literal["join"] = "join"
    separator: str = Field(default=", ", max_length=10)

    def run(self, value, ctx):
        if not isinstance(value, (list, tuple)):
            return _text(value)
        return self.separator.join(_text(item).strip() for item in value if not is_empty(item)) or None


@register
class Lookup(Transform):
    """Translate a value through a table: an inline ``values`` dict or a named settings
    table (``payment_methods``, ``payment_terms``, ``countries``, ``tax_codes``).
    Numeric keys match by value (``0.21``/``"21.0"``/``21`` → ``"21"`` after
    ``to_percent``); text keys match exactly, then ignoring case. ``missing``:
    ``error`` (default), ``default`` (use ``default``) or ``keep`` (the input)."""

    fn: Literal["lookup"] = "lookup"
    table: TableName | None = None
    values: dict[str, Any] | None = None
    default: Any = None
    missing: Literal["error", "default", "keep"] = "error"
    handles_empty: ClassVar[bool] = True

    @model_validator(mode="after")
    def _one_source(self):
        if (self.table is None) == (self.values is None):
            raise ValueError("lookup needs exactly one of 'table' or 'values'")
        return self

    def run(self, value, ctx):
        if is_empty(value):
            return self.default
        table = self.values if self.values is not None else ctx.tables.get(self.table or "", {})
        key = lookup_key(value)
        normalised = {lookup_key(k): v for k, v in table.items()}
        if key in normalised:
            return normalised[key]
        folded = key.casefold()
        for candidate, result in normalised.items():
            if candidate.casefold() == folded:
                return result
        if self.missing == "keep":
            return value
        if self.missing == "default":
            return self.default
        where = f"settings.{self.table}" if self.table else "the lookup values"
        raise TransformError(f"no entry for {str(value)!r} in {where}")


@register
class Country(Transform):
    """A country as ISO 3166 alpha-2 (upper case) from a Lightspeed country object
    (``{"code": "nl", ...}``), an alpha-2/alpha-3 code or a name (English, Dutch,
    German, French); ``settings.countries`` entries take precedence."""

    fn: Literal["country"] = "country"

    def run(self, value, ctx):
        custom = ctx.tables.get("countries", {})
        if isinstance(value, dict):
            candidates = [value.get("code"), value.get("code3"), value.get("title")]
        else:
            candidates = [value]
        for candidate in candidates:
            if is_empty(candidate):
                continue
            text = str(candidate).strip()
            for key, code in custom.items():
                if key.casefold() == text.casefold():
                    return str(code).upper()
            code = country_code(text)
            if code:
                return code
        raise TransformError(f"unknown country {candidates[0] if len(candidates) == 1 else value!r}")


_STREET_RE = re.compile(
    r"^(?P<street>.+?)\s+(?P<number>\d{1,6})(?:\s*[-/]?\s*(?P<extension>[A-Za-z]{1,4}|\d{1,4}[A-Za-z]{0,2}))?$"
)


def split_street_line(line: str) -> tuple[str, str, str]:
    """Split ``"Hoofdstraat 12a"`` into ``("Hoofdstraat", "12", "a")``; a line without
    a house number comes back whole as the street."""
    text = re.sub(r"\s+", " ", line.strip())
    match = _STREET_RE.match(text)
    if not match:
        return text, "", ""
    return match["street"].rstrip(","), match["number"], match["extension"] or ""


def join_street(street: str, number: str, extension: str, separator: str = "auto") -> str:
    """``("Hoofdstraat", "12", "a")`` → ``"Hoofdstraat 12a"``; ``12`` + ``2`` →
    ``12-2``; with ``separator`` other than ``auto`` that text goes between."""
    house = number
    if extension:
        if separator == "auto":
            separator = "" if extension.isalpha() and len(extension) <= 2 else ("-" if extension[0].isdigit() else " ")
        house = f"{number}{separator}{extension}" if number else extension
    return " ".join(part for part in (street, house) if part)


@register
class SplitStreet(Transform):
    """Street, house number and extension, however the shop stored them.

    Lightspeed eCom splits ``addressBillingStreet``, ``…Number`` and ``…Extension``, but
    shops whose checkout does not split put everything in the street. Give the paths of
    the number and extension: when the number is empty the input is split
    (``"Hoofdstraat 12a"`` → street ``Hoofdstraat``, number ``12``, extension ``a``).
    ``part`` picks ``street``, ``number``, ``extension`` or ``line`` (the three joined).
    """

    fn: Literal["split_street"] = "split_street"
    part: Literal["street", "number", "extension", "line"] = "line"
    number: Path | None = None
    extension: Path | None = None
    extension_separator: str = Field(default="auto", max_length=5)
    handles_empty: ClassVar[bool] = True

    def run(self, value, ctx):
        street = "" if is_empty(value) else _text(value).strip()
        number = ctx.get(self.number) if self.number else None
        extension = ctx.get(self.extension) if self.extension else None
        if is_empty(number):
            street, number, parsed_extension = split_street_line(street)
            extension = parsed_extension if is_empty(extension) else _text(extension).strip()
        else:
            number = _text(number).strip()
            extension = "" if is_empty(extension) else _text(extension).strip()
        parts = {"street": street, "number": number, "extension": extension}
        if self.part == "line":
            return join_street(street, number, extension, self.extension_separator) or None
        return parts[self.part] or None


# ---------------------------------------------------------------- the step type


def _step_shorthand(value: Any) -> Any:
    """``"trim"`` → ``{"fn": "trim"}``; reject unknown names with the known list."""
    if isinstance(value, str):
        value = {"fn": value}
    if isinstance(value, dict):
        name = value.get("fn")
        if not isinstance(name, str) or name not in TRANSFORMS:
            raise PydanticCustomError(
                "unknown_transform",
                "unknown transform {name} (known: {known})",
                {"name": repr(name), "known": ", ".join(sorted(TRANSFORMS))},
            )
    return value


_StepObject = Annotated[Union[tuple(TRANSFORMS.values())], Field(discriminator="fn")]  # type: ignore[valid-type]
_StepName = Literal[tuple(TRANSFORMS)]  # type: ignore[valid-type]

#: One step of a rule's ``transforms``: a transform name or an object with ``fn``.
TransformStep = Annotated[
    _StepObject,
    BeforeValidator(_step_shorthand, json_schema_input_type=Union[_StepName, _StepObject]),
]


def run_chain(steps: list[Transform], value: Any, ctx: TransformContext) -> Any:
    """Apply ``steps`` in order; a :class:`TransformError` names the failing step."""
    for step in steps:
        try:
            value = step.apply(value, ctx)
        except TransformError as exc:
            raise TransformError(f"{step.fn}: {exc}") from None
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise TransformError(f"{step.fn}: {exc}") from None
    return value


__all__ = [
    "TRANSFORMS",
    "Transform",
    "TransformContext",
    "TransformError",
    "TransformStep",
    "join_street",
    "lookup_key",
    "parse_datetime",
    "parse_decimal",
    "run_chain",
    "split_street_line",
]
