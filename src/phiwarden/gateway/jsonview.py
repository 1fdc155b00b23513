"""A user-defined structure (a tool call's input, a schema, metadata) as the detector reads it.

The structure is written as compact JSON text with its strings unescaped: every key, string and number is in
it, beside the keys that give a value its meaning (`{"name": "…", "mrn": 40981723}` is a name and a
record number, where the lone strings are not), and a multi-line string keeps its lines, as a CSV in a
tool's input does. Each key, string and number remembers where it sits, so that a value found in the
text is replaced in the structure itself: a key is renamed, a number becomes the replacement (a string
when the replacement is not a number), and the JSON that leaves is always valid.

Base64 payloads (data: URLs, `{"type": "base64", "data": …}` sources, MCP image content) are content of
their media type: they are reported, and stand in the text as a placeholder.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from phiwarden.gateway.payloads import BinaryKind, data_url, is_base64, media_kind
from phiwarden.transform.spans import Span, replace_spans

_KEY, _STRING, _NUMBER = 0, 1, 2
_PAYLOAD = '"[binary]"'
MAX_DEPTH = 100
_ESCAPES = {'"': '"', "/": "/", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


class TooDeep(ValueError):
    """Nested deeper than any request needs (and than recursion allows)."""


class JsonView:
    __slots__ = ("binaries", "container", "empty", "key", "text")

    def __init__(self, container: Any, key: Any) -> None:
        self.container = container
        self.key = key
        # The kinds of binary content met on the first reading.
        self.binaries: list[BinaryKind] = []
        try:
            dumped: str | None = orjson.dumps(container[key]).decode("utf-8")
        except orjson.JSONEncodeError:  # an integer beyond 64 bits
            dumped = None
        if dumped is None or "data" in dumped or "DATA" in dumped or "Data" in dumped:  # a payload?
            renderer = _Renderer(self.binaries)
            self.text = renderer.render(container, key)
            self.empty = renderer.count == 0
        else:  # the same text, built in C: an agent's tool definitions alone are ~80 KB every turn
            self.text = _unescaped(dumped)
            self.empty = '"' not in dumped and not any(digit in dumped for digit in "0123456789")

    def replace(
        self, spans: Sequence[Span], replacement: Callable[[str, str], str], *, values_only: bool = False
    ) -> str:
        """Replace the spans of `text` in the structure (`values_only`: in string values only, never
        keys or numbers); returns the new text."""
        renderer = _Renderer(None, track=True)
        if renderer.render(self.container, self.key) != self.text:
            raise ValueError("the structure changed since it was inspected")
        leaves = renderer.leaves
        starts = [leaf[0] for leaf in leaves]
        pieces: dict[int, list[Span]] = {}
        for span in spans:
            index = max(bisect.bisect_right(starts, span.start) - 1, 0)
            while index < len(leaves) and leaves[index][0] < span.end:
                start, end, _, _, role = leaves[index]
                low, high = max(span.start, start), min(span.end, end)
                if low < high and (role == _STRING or not values_only):
                    pieces.setdefault(index, []).append(Span(low - start, high - start, span.category))
                index += 1
        renames: dict[int, tuple[dict[str, Any], dict[str, str]]] = {}
        for index, found in pieces.items():
            start, end, holder, slot, role = leaves[index]
            old = self.text[start:end]
            new = replace_spans(old, found, replacement)
            if new == old:
                continue
            if role == _STRING:
                holder[slot] = new
            elif role == _NUMBER:
                holder[slot] = _number(new)
            else:
                renames.setdefault(id(holder), (holder, {}))[1][slot] = new
        for holder, names in renames.values():
            _rename(holder, names)
        self.text = _Renderer(None).render(self.container, self.key)
        return self.text


class _Renderer:
    __slots__ = ("binaries", "count", "leaves", "out", "position", "track")

    def __init__(self, binaries: list[BinaryKind] | None, *, track: bool = False) -> None:
        self.binaries = binaries
        self.track = track
        self.out: list[str] = []
        self.position = 0
        self.count = 0
        # (start, end, holder, slot, role) of each key, string and number, in text order.
        self.leaves: list[tuple[int, int, Any, Any, int]] = []

    def render(self, container: Any, key: Any) -> str:
        self._value(container, key, 0)
        return "".join(self.out)

    def _emit(self, text: str) -> None:
        self.out.append(text)
        self.position += len(text)

    def _leaf(self, text: str, holder: Any, slot: Any, role: int) -> None:
        self.count += 1
        if self.track:
            self.leaves.append((self.position, self.position + len(text), holder, slot, role))
        self._emit(text)

    def _value(self, holder: Any, slot: Any, depth: int) -> None:
        value = holder[slot]
        if isinstance(value, str):
            found = data_url(value)
            if found is not None and found[1]:
                self._binary(found[0])
                return
            self._emit('"')
            self._leaf(value, holder, slot, _STRING)
            self._emit('"')
        elif isinstance(value, dict):
            if depth >= MAX_DEPTH:
                raise TooDeep
            payload = _payload(value)
            self._emit("{")
            first = True
            for key in value:
                if not first:
                    self._emit(",")
                first = False
                self._emit('"')
                self._leaf(key, value, key, _KEY)
                self._emit('":')
                if key == "data" and payload is not None:
                    self._binary(payload)
                else:
                    self._value(value, key, depth + 1)
            self._emit("}")
        elif isinstance(value, list):
            if depth >= MAX_DEPTH:
                raise TooDeep
            self._emit("[")
            for index in range(len(value)):
                if index:
                    self._emit(",")
                self._value(value, index, depth + 1)
            self._emit("]")
        elif value is True or value is False or value is None:
            self._emit(json.dumps(value))
        else:  # int or float, written as orjson writes it
            try:
                number = orjson.dumps(value).decode("ascii")
            except orjson.JSONEncodeError:
                number = str(value)
            self._leaf(number, holder, slot, _NUMBER)

    def _binary(self, kind: BinaryKind) -> None:
        if self.binaries is not None:
            self.binaries.append(kind)
        self._emit(_PAYLOAD)


def _unescaped(dumped: str) -> str:
    """JSON text with its strings unescaped: what `_Renderer` writes. In JSON text every backslash
    starts an escape; one split in C finds them all (a replace per escape costs ~0.1 ms per 80 KB)."""
    if "\\" not in dumped:
        return dumped
    pieces = dumped.split("\\")
    out = [pieces[0]]
    literal = False  # the piece after an escaped backslash starts with text, not an escape code
    for piece in pieces[1:]:
        if literal:
            out.append(piece)
            literal = False
        elif not piece:  # "\\\\": a backslash
            out.append("\\")
            literal = True
        elif piece[0] == "u":
            out.append(chr(int(piece[1:5], 16)) + piece[5:])
        else:
            out.append(_ESCAPES[piece[0]] + piece[1:])
    return "".join(out)


def _payload(value: dict[str, Any]) -> BinaryKind | None:
    """The kind of a base64 source object: Anthropic's {"type": "base64", "media_type", "data"}, MCP's
    {"type": "image", "mimeType", "data"} and the like."""
    data = value.get("data")
    if not isinstance(data, str) or not data or not is_base64(data):
        return None
    media = value.get("media_type", value.get("mimeType", value.get("mime_type")))
    if value.get("type") == "base64" or isinstance(media, str):
        return media_kind(media)
    return None


def _number(text: str) -> Any:
    """A replaced number: a number again when the replacement is one, else the replacement text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float) and not isinstance(value, bool) else text


def _rename(holder: dict[str, Any], names: dict[str, str]) -> None:
    """Rename keys in place, in order; a new name already taken (two masked names) is numbered."""
    items = list(holder.items())
    taken = {key for key, _ in items if key not in names}
    holder.clear()
    for key, value in items:
        new = names.get(key, key)
        if key in names:
            candidate, number = new, 2
            while candidate in taken:
                candidate, number = f"{new} ({number})", number + 1
            taken.add(candidate)
            new = candidate
        holder[new] = value
