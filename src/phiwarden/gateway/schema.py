"""The request shapes of the three APIs (`data/shapes.toml`), compiled once into the types the parser
walks. The data file's header documents the type language."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, cast, get_args

from phiwarden.gateway.payloads import BinaryKind
from phiwarden.policy.gateway import Api

LeafKind = Literal[
    "text", "label", "fixed", "opaque", "int", "number", "bool", "json", "input", "args", "output",
    "payload", "url", "any",
]  # fmt: skip
# JSON types, as `Choice` tells alternatives apart.
JsonType = Literal["string", "integer", "number", "boolean", "array", "object"]
_ALL: tuple[JsonType, ...] = ("string", "integer", "number", "boolean", "array", "object")
_LEAF_TYPES: dict[str, tuple[JsonType, ...]] = {
    "int": ("integer",),
    "number": ("integer", "number"),
    "bool": ("boolean",),
    "json": _ALL,
    "input": _ALL,
    "any": _ALL,
}


@dataclass(frozen=True, slots=True)
class Leaf:
    kind: LeafKind
    binary: BinaryKind = "documents"  # of `payload(kind)`
    # The range of `int(LOW..HIGH)` and `number(LOW..HIGH)` (either side may be open).
    low: float | None = None
    high: float | None = None

    def within(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def bounds(self) -> str:
        """`from 0 to 20`, `of at least 1024`: for a message (never the value)."""
        if self.low is not None and self.high is not None:
            return f" from {_number(self.low)} to {_number(self.high)}"
        if self.low is not None:
            return f" of at least {_number(self.low)}"
        return f" of at most {_number(self.high)}" if self.high is not None else ""


@dataclass(frozen=True, slots=True)
class Enum:
    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Type


@dataclass(eq=False, slots=True)
class Shape:
    """An object: its keys and their types. `name` is how errors and `extra_fields` call it."""

    name: str
    fields: dict[str, Type] = field(default_factory=dict)
    # Key paths of a tool call's id, name and arguments (an empty name: the shape's tag).
    call: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None = None
    result: tuple[str, str] | None = None
    binary: BinaryKind | None = None


@dataclass(eq=False, slots=True)
class Union:
    """Objects told apart by the value of their `tag` key."""

    name: str
    what: str
    tag: str
    members: dict[str, Shape] = field(default_factory=dict)
    infer: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Choice:
    """One of several types, by the JSON type of the value (the first alternative listed wins)."""

    options: dict[JsonType, Type]


Type = Leaf | Enum | ListOf | Shape | Union | Choice


@dataclass(frozen=True, slots=True)
class ApiShapes:
    request: Shape
    count_tokens: Shape | None
    hint: tuple[str, ...]
    # Every shape by name: what an `extra_fields` entry "SHAPE.key" names.
    shapes: dict[str, Shape]


@functools.cache
def api_shapes(api: Api) -> ApiShapes:
    return _compiled()[api]


@functools.cache
def _compiled() -> dict[str, ApiShapes]:
    text = resources.files("phiwarden.gateway").joinpath("data", "shapes.toml").read_text("utf-8")
    return _compile(tomllib.loads(text))


def _compile(data: dict[str, Any]) -> dict[str, ApiShapes]:
    common = data.get("common", {})
    out: dict[str, ApiShapes] = {}
    for api in ("messages", "chat_completions", "responses"):
        tables = {**common, **data[api]}
        named: dict[str, Shape | Union] = {}
        for name, table in tables.items():
            if not isinstance(table, dict):
                continue
            if "@tag" in table:
                union = Union(name, table.get("@what", name.replace("_", " ")), table["@tag"])
                union.infer = tuple((key, tag) for key, tag in table.get("@infer", ()))
                for tag, member in table.items():
                    if isinstance(member, dict):
                        union.members[tag] = Shape(f"{name}.{tag}")
                named[name] = union
            else:
                named[name] = Shape(name)
        shapes: dict[str, Shape] = {}
        for name, table in tables.items():
            if not isinstance(table, dict):
                continue
            target = named[name]
            if isinstance(target, Union):
                for tag, member in target.members.items():
                    _fill(member, table[tag], named)
                    shapes[member.name] = member
            else:
                _fill(target, table, named)
                shapes[name] = target
        request = named["request"]
        counting = named.get("count_tokens")
        assert isinstance(request, Shape) and (counting is None or isinstance(counting, Shape))
        hint = data[api].get("@hint", "")
        out[api] = ApiShapes(request, counting, tuple(hint.split(".")) if hint else (), shapes)
    return out


def _fill(shape: Shape, table: dict[str, Any], named: dict[str, Shape | Union]) -> None:
    for key, value in table.items():
        if key == "@call":
            id_path, name_path, arguments_path = (tuple(p.split(".")) if p else () for p in value)
            shape.call = (id_path, name_path, arguments_path)
        elif key == "@result":
            shape.result = (value[0], value[1])
        elif key == "@binary":
            shape.binary = _binary_kind(value)
        elif key.startswith("@"):
            raise ValueError(f"shapes.toml: unknown directive {key!r} in {shape.name}")
        else:
            shape.fields[key] = parse_type(value, named)


def parse_type(text: str, named: dict[str, Shape | Union]) -> Type:
    alternatives = _split(text.strip())
    if len(alternatives) == 1:
        return _single(alternatives[0], named)
    options: dict[JsonType, Type] = {}
    for alternative in alternatives:
        parsed = _single(alternative, named)
        for json_type in json_types(parsed):
            options.setdefault(json_type, parsed)
    return Choice(options)


def json_types(parsed: Type) -> tuple[JsonType, ...]:
    if isinstance(parsed, Leaf):
        return _LEAF_TYPES.get(parsed.kind, ("string",))
    if isinstance(parsed, Enum):
        return ("string",)
    if isinstance(parsed, ListOf):
        return ("array",)
    if isinstance(parsed, Choice):
        return tuple(parsed.options)
    return ("object",)


def _single(text: str, named: dict[str, Shape | Union]) -> Type:
    if text.startswith("[") and text.endswith("]"):
        return ListOf(parse_type(text[1:-1], named))
    name, _, arguments = text.partition("(")
    arguments = arguments.removesuffix(")")
    if name == "enum":
        return Enum(frozenset(a.strip() for a in arguments.split(",")))
    if name == "payload":
        return Leaf("payload", _binary_kind(arguments.strip()))
    if name in ("int", "number") and arguments:
        low, dots, high = arguments.partition("..")
        if not dots:
            raise ValueError(f"shapes.toml: expected {name}(LOW..HIGH), got {text!r}")
        return Leaf(
            cast(LeafKind, name),
            low=float(low) if low.strip() else None,
            high=float(high) if high.strip() else None,
        )
    if name in get_args(LeafKind):
        return Leaf(cast(LeafKind, name))
    if name in named:
        return named[name]
    raise ValueError(f"shapes.toml: unknown type {text!r}")


def _split(text: str) -> list[str]:
    """`a|[b|c]|d` -> a, [b|c], d."""
    out, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == "|" and depth == 0:
            out.append(text[start:index].strip())
            start = index + 1
    out.append(text[start:].strip())
    return out


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def _binary_kind(value: str) -> BinaryKind:
    if value not in get_args(BinaryKind):
        raise ValueError(f"shapes.toml: unknown content kind {value!r}")
    return cast(BinaryKind, value)
