"""The request shapes of the three APIs: which keys exist, where text sits, what is binary.

The shapes are data (`data/shapes.toml`, compiled by `schema.py`). Every object of a request is
walked against its shape: a key the shape does not know is refused with its location (fail closed: a
new field could carry text the gateway never read) unless the policy lists it in `[gateway]
extra_fields` ("field" at the top level, "SHAPE.field" inside an object, as the refusal names it).
Every string is inspected, except validated enumerations and base64 content; vendor-encrypted blobs
are inspected (and what their base64 decodes to, when that is text) but never rewritten; numbers,
booleans and enumerations are type-checked, within the bounds the API documents; user-defined
structures (tool inputs, schemas, metadata) are read whole as JSON text, keys and numbers included
(`jsonview.py`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from phiwarden.gateway.jsonview import JsonView, TooDeep
from phiwarden.gateway.payloads import data_url, is_base64, is_opaque, readable
from phiwarden.gateway.request import (
    Binary,
    ParsedRequest,
    Part,
    ShapeError,
    ToolCall,
    dumps,
    shown,
    unencodable,
)
from phiwarden.gateway.schema import (
    Choice,
    Enum,
    JsonType,
    Leaf,
    ListOf,
    Shape,
    Type,
    Union,
    api_shapes,
    json_types,
)
from phiwarden.policy.gateway import Api

MAX_DEPTH = 64
_ANY = Leaf("any")
# Leaves read as text: (frozen, identifiers may be renamed).
_TEXTS = {
    "text": (False, True), "any": (False, True), "label": (False, False), "url": (False, False),
    "fixed": (True, False),
}  # fmt: skip
_SCALARS: dict[str, tuple[tuple[type, ...], str]] = {
    "int": ((int,), "an integer"),
    "number": ((int, float), "a number"),
    "bool": ((bool,), "true or false"),
}
_JSON_TYPES: dict[type, JsonType] = {
    str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object",
}  # fmt: skip
_OPERATIONS = {
    "messages": "anthropic.messages.create",
    "chat_completions": "openai.chat.completions.create",
    "responses": "openai.responses.create",
}


def parse(api: Api, body: Any, extra_fields: Iterable[str], *, count_tokens: bool = False) -> ParsedRequest:
    if not isinstance(body, dict):
        raise ShapeError("", f"the request body must be a JSON object, got {_kind(body)}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ShapeError("model", "a model name is required")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ShapeError("stream", "expected true or false")
    shapes = api_shapes(api)
    request_shape = shapes.count_tokens if count_tokens and shapes.count_tokens else shapes.request
    operation = "anthropic.messages.count_tokens" if count_tokens else _OPERATIONS[api]
    request = ParsedRequest(api, operation, body, model, stream and not count_tokens)
    walker = _Walker(request, _extra(api, tuple(extra_fields)))
    walker.shape(request_shape, body, "", 0)
    hint = _at(body, shapes.hint) if shapes.hint else None
    if isinstance(hint, str) and hint:
        request.conversation_hint = hint
    request.opening = _opening(api, body, request.parts)
    return request


@functools.cache
def _extra(api: Api, entries: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """`extra_fields` as keys allowed per shape: "field" is a top-level field, "SHAPE.field" one inside
    the objects of that shape."""
    out: dict[str, set[str]] = {}
    for entry in entries:
        shape, _, key = entry.rpartition(".")
        for name in (shape,) if shape else ("request", "count_tokens"):
            out.setdefault(name, set()).add(key)
    return {name: frozenset(keys) for name, keys in out.items()}


class _Walker:
    __slots__ = ("extra", "parts", "request")

    def __init__(self, request: ParsedRequest, extra: dict[str, frozenset[str]]) -> None:
        self.request = request
        self.parts = request.parts
        self.extra = extra

    def walk(self, kind: Type, container: Any, key: Any, where: str, depth: int) -> None:
        value = container[key]
        if value is None:
            return
        cls = type(kind)
        if cls is Choice:
            option = kind.options.get(_JSON_TYPES.get(type(value), "object"))  # type: ignore[union-attr]
            if option is None:
                raise ShapeError(where, f"expected {_describe(kind)}, got {_kind(value)}")
            kind, cls = option, type(option)
        if cls is Leaf:
            self.leaf(kind, value, container, key, where)  # type: ignore[arg-type]
            return
        if depth > MAX_DEPTH:
            raise ShapeError(where, "nested too deeply")
        if cls is Union:
            self.union(kind, value, where, depth)  # type: ignore[arg-type]
        elif cls is ListOf:
            if type(value) is not list:
                raise ShapeError(where, f"expected a list, got {_kind(value)}")
            item = kind.item  # type: ignore[union-attr]
            if type(item) is Union:  # lists of blocks, parts, items: the common case, called directly
                for index, element in enumerate(value):
                    self.union(item, element, f"{where}[{index}]", depth + 1)
            else:
                for index in range(len(value)):
                    self.walk(item, value, index, f"{where}[{index}]", depth + 1)
        elif cls is Shape:
            self.shape(kind, value, where, depth)  # type: ignore[arg-type]
        elif type(value) is not str or value not in kind.values:  # type: ignore[union-attr]
            raise ShapeError(where, f"expected {_describe(kind)}")

    def shape(
        self, shape: Shape, value: Any, where: str, depth: int, *, tag_key: str = "", tag: str = ""
    ) -> None:
        if type(value) is not dict:
            raise ShapeError(where, f"expected an object, got {_kind(value)}")
        fields = shape.fields
        result = shape.result
        binaries = self.request.binaries
        before = len(binaries)
        prefix = f"{where}." if where else ""
        parts = self.parts
        for key, item in value.items():
            if item is None or key == tag_key:
                continue
            kind = fields.get(key)
            if kind is None:
                kind = self._extra(shape, key, where)
            if type(kind) is Leaf and result is None:
                # Strings, numbers and booleans inline: most of a request is made of them.
                flags = _TEXTS.get(kind.kind)
                if flags is not None and type(item) is str:
                    if item and (item[0] not in "dD" or not self._data_url(item, prefix + key)):
                        parts.append(Part(prefix + key, item, value, key, None, *flags))
                    continue
                scalar = _SCALARS.get(kind.kind)
                if scalar is not None:
                    # Checked, never read: no location unless one is wrong.
                    _scalar(kind, scalar, item, prefix + key)
                    continue
            if result is not None and key == result[1]:
                start = len(self.parts)
                self.walk(kind, value, key, prefix + key, depth + 1)
                found = self.request.tool_results.setdefault(_id(value.get(result[0])), [])
                found.extend(self.parts[start:])
            else:
                self.walk(kind, value, key, prefix + key, depth + 1)
        if shape.binary is not None:
            # One item of content, wherever in it its data sits.
            del binaries[before:]
            binaries.append(Binary(where, shape.binary))
        if shape.call is not None:
            call_id, name, arguments = shape.call
            self.request.tool_calls.append(
                ToolCall(
                    _id(_at(value, call_id)),
                    _id(_at(value, name)) if name else tag,
                    _at(value, arguments),
                    where,
                )
            )

    def _extra(self, shape: Shape, key: str, where: str) -> Type:
        allowed = self.extra.get(shape.name)
        if allowed is not None and key in allowed:
            return _ANY
        top = shape.name in ("request", "count_tokens")
        entry = shown(key) if top else f"{shape.name}.{shown(key)}"
        raise ShapeError(
            f"{where}.{shown(key)}" if where else shown(key),
            f"unknown field{'' if top else f' in {shape.name}'}: phiwarden forwards only what it "
            f"inspects. If this is a new API field, add {entry!r} to [gateway] extra_fields in "
            "phiwarden.toml",
        )

    def union(self, union: Union, value: Any, where: str, depth: int) -> None:
        if not isinstance(value, dict):
            raise ShapeError(where, f"expected {union.what} object, got {_kind(value)}")
        tag = value.get(union.tag)
        if tag is None:
            tag = next((member for key, member in union.infer if key in value), None)
        member = union.members.get(tag) if isinstance(tag, str) else None
        if member is None or not isinstance(tag, str):
            raise ShapeError(
                f"{where}.{union.tag}" if where else union.tag,
                f"unknown {union.what} {union.tag} {_shown(tag)}",
            )
        self.shape(member, value, where, depth, tag_key=union.tag, tag=tag)

    def leaf(self, leaf: Leaf, value: Any, container: Any, key: Any, where: str) -> None:
        kind = leaf.kind
        flags = _TEXTS.get(kind)
        if flags is not None:
            if type(value) is not str:
                if kind != "any":
                    raise ShapeError(where, f"expected a string, got {_kind(value)}")
                self.view(container, key, where, identifiers=False, classified=True)
            elif value and (value[0] not in "dD" or not self._data_url(value, where)):
                self.parts.append(Part(where, value, container, key, None, flags[0], flags[1]))
        elif kind in ("json", "input"):
            self.view(container, key, where, identifiers=kind == "input", classified=kind == "input")
        elif kind == "args":
            self.arguments(container, key, where)
        elif kind == "output":
            if type(value) is not str:
                raise ShapeError(where, f"expected a string, got {_kind(value)}")
            if not self._compact_json(container, key, where) and value:
                self.parts.append(Part(where, value, container, key, identifiers=True))
        elif kind in _SCALARS:
            _scalar(leaf, _SCALARS[kind], value, where)
        elif kind == "opaque":
            if type(value) is not str or not is_opaque(value):
                raise ShapeError(
                    where, "expected the vendor's encrypted data as it was received (base64, unchanged)"
                )
            # Scanned, never rewritten (the vendor checks it): a finding keeps the request restricted.
            # Its characters say nothing about the code around it, so they never classify it.
            parts = self.parts
            parts.append(Part(where, value, container, key, frozen=True, classified=False))
            decoded = readable(value)
            if decoded is not None:
                parts.append(Part(where, decoded, container, key, frozen=True, classified=False))
        elif type(value) is not str:  # payload
            raise ShapeError(where, f"expected base64 data or a data: URL, got {_kind(value)}")
        elif not self._data_url(value, where):
            if not is_base64(value):
                raise ShapeError(where, "expected base64 data or a base64 data: URL")
            self.request.binaries.append(Binary(where, leaf.binary))

    def _data_url(self, value: str, where: str) -> bool:
        """A base64 data: URL is content of its media type, never text."""
        found = data_url(value)
        if found is None:
            return False
        kind, valid = found
        if not valid:
            raise ShapeError(where, "a data: URL whose data is not valid base64")
        self.request.binaries.append(Binary(where, kind))
        return True

    def view(self, container: Any, key: Any, where: str, *, identifiers: bool, classified: bool) -> None:
        try:
            view = JsonView(container, key)
        except TooDeep:
            raise ShapeError(where, "nested too deeply") from None
        for kind in view.binaries:
            self.request.binaries.append(Binary(where, kind))
        if not view.empty:
            self.parts.append(
                Part(
                    where,
                    view.text,
                    container,
                    key,
                    identifiers=identifiers,
                    view=view,
                    classified=classified,
                )
            )

    def arguments(self, container: Any, key: Any, where: str) -> None:
        """A tool call's arguments as JSON text: held parsed while inspected, serialized again when the
        request leaves; text that is not JSON is inspected as text."""
        raw = container[key]
        if not isinstance(raw, str):
            raise ShapeError(where, f"expected JSON text in a string, got {_kind(raw)}")
        try:
            value = json.loads(raw, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            if raw:
                self.parts.append(Part(where, raw, container, key, identifiers=True))
            return
        if unencodable(value) is not None:
            raise ShapeError(where, "the arguments hold a lone UTF-16 surrogate, which is not text")
        container[key] = value
        self.request.json_texts.append((container, key))
        self.view(container, key, where, identifiers=True, classified=True)

    def _compact_json(self, container: Any, key: Any, where: str) -> bool:
        """A tool's output that is compact JSON (Codex's shell results) is read as a structure, so
        that its strings are read unescaped; only when writing it again gives the same text, so that
        what leaves is unchanged unless a value is replaced."""
        raw = container[key]
        if raw[:1] not in ("{", "[") or raw[-1:] not in ("}", "]"):
            return False
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            return False
        if dumps(value) != raw.encode("utf-8", "surrogatepass"):
            return False
        container[key] = value
        self.request.json_texts.append((container, key))
        self.view(container, key, where, identifiers=True, classified=True)
        return True


def _scalar(leaf: Leaf, scalar: tuple[tuple[type, ...], str], value: Any, where: str) -> None:
    """A number or boolean of the right type, within the range the API documents (a number out of
    it could be anything, an SSN's digits included; the message never shows it)."""
    if type(value) not in scalar[0]:
        raise ShapeError(where, f"expected {scalar[1]}, got {_kind(value)}")
    if (leaf.low is not None or leaf.high is not None) and not leaf.within(value):
        raise ShapeError(where, f"expected {scalar[1]}{leaf.bounds()}, as the API documents")


def _opening(api: Api, body: dict[str, Any], parts: list[Part]) -> str:
    """The system prompt and the first user message: what every turn of a chat repeats unchanged."""
    listed = "input" if api == "responses" else "messages"
    prefixes = ["system"] if api == "messages" else ["instructions"] if api == "responses" else []
    items = body.get(listed)
    if isinstance(items, str):
        prefixes.append(listed)
    elif isinstance(items, list):
        for index, item in enumerate(items):
            role = item.get("role")
            if role in ("system", "developer", "user") and item.get("type", "message") == "message":
                prefixes.append(f"{listed}[{index}]")
                if role == "user":
                    break
    starts = tuple(prefixes)
    return "\x00".join(p.text for p in parts if p.location.startswith(starts) and _under(p.location, starts))


def _under(location: str, prefixes: tuple[str, ...]) -> bool:
    """`messages[1].content` is under `messages[1]`; `messages[10]` is not."""
    return any(
        location.startswith(prefix) and location[len(prefix) : len(prefix) + 1] in ("", ".", "[")
        for prefix in prefixes
    )


def _at(value: Any, path: Iterable[str]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _id(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _describe(kind: Type) -> str:
    if isinstance(kind, Enum):
        return "one of " + ", ".join(repr(v) for v in sorted(kind.values))
    words = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false"}
    out: list[str] = []
    for json_type in json_types(kind):
        option = kind.options[json_type] if isinstance(kind, Choice) else kind
        if json_type == "array":
            out.append("a list")
        elif json_type == "object":
            out.append(f"{option.what} object" if isinstance(option, Union) else "an object")
        elif isinstance(option, Enum):
            out.append(_describe(option))
        elif json_type != "integer" or "number" not in json_types(kind):
            out.append(words[json_type])
    return " or ".join(dict.fromkeys(out))


def _shown(value: object) -> str:
    return repr(value) if value is None else repr(shown(value))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
