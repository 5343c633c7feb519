"""moto's request parsing and DynamoDB response writing, at the cost of the data, not the model.

A speed patch (``codec``; ``benchmarks/results/SPEED_PATCHES.md``). moto parses every request and
writes every answer by walking the service's API model value by value. The parser here compiles,
once per shape, a function that makes the same conversions and visits only the keys a value
has; the writer writes a DynamoDB attribute value already in DynamoDB's JSON form as it is. Both
give exactly what moto's own code gives (tests/integration/test_moto_codec.py).
"""

import base64
import threading
from collections.abc import Callable
from typing import Any

from botocore.model import Shape
from moto.core.parse import UNDEFINED, JSONParser
from moto.core.serialize import BaseJSONSerializer

from emulator.moto_patches import Patch, Wrap, register

_Parse = Callable[[Any], Any]
_LOCK = threading.Lock()

_DYNAMODB = frozenset({"dynamodb", "dynamodbstreams"})
_ATTRIBUTE_VALUE = "AttributeValue"
_MEMBERS = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
"""DynamoDB's AttributeValue members, in the model's order (the order moto writes them in)."""
_KNOWN = frozenset(_MEMBERS)


def _identity(value: Any) -> Any:
    return value


def _to_float(value: Any) -> Any:
    return value if value is UNDEFINED else float(value)


def _to_int(value: Any) -> Any:
    return value if value is UNDEFINED else int(value)


class _Compiler:
    """The parse functions of one service's shapes, for one map type, blob and time parser."""

    def __init__(self, map_type: type, blob: _Parse, timestamp: _Parse) -> None:
        self._map_type, self._blob, self._timestamp = map_type, blob, timestamp
        self._by_name: dict[str, _Parse] = {}

    def of(self, shape: Shape) -> _Parse:
        """The function that parses a value of ``shape`` (shape names are unique in a model)."""
        found = self._by_name.get(shape.name)
        if found is None:
            slot: list[_Parse] = []  # a recursive shape reaches itself while compiling
            self._by_name[shape.name] = lambda value: slot[0](value)
            found = self._compile(shape)
            slot.append(found)
            self._by_name[shape.name] = found
        return found

    def _compile(self, shape: Shape) -> _Parse:
        kind = shape.type_name
        if kind == "structure":
            return _identity if shape.is_document_type else self._structure(shape)
        if kind == "list":
            member = self.of(shape.member)
            return lambda node: [member(item) for item in node]
        if kind == "map":
            return self._map(shape)
        if kind == "blob":
            return self._blob
        if kind == "timestamp":
            return self._timestamp
        if kind in ("float", "double"):
            return _to_float
        if kind in ("integer", "byte", "short", "long"):
            return _to_int
        return _identity

    def _structure(self, shape: Shape) -> _Parse:
        map_type = self._map_type
        members = [
            (name, member.serialization.get("name", name), self.of(member))
            for name, member in shape.members.items()
        ]
        by_key = {key: (name, parse) for name, key, parse in members}

        def structure(value: Any) -> Any:
            if value is None:
                return None
            parsed = map_type()
            if type(value) is dict and len(value) == 1:  # one key, so no order to keep
                for key, raw in value.items():
                    member = by_key.get(key)
                    if member is not None and raw is not None:
                        parsed[member[0]] = member[1](raw)
                return parsed
            for name, key, parse in members:
                raw = value.get(key)
                if raw is not None:
                    parsed[name] = parse(raw)
            return parsed

        return structure

    def _map(self, shape: Shape) -> _Parse:
        map_type = self._map_type
        key_of = self.of(shape.key)
        value_of = self.of(shape.value)

        def parse_map(value: Any) -> Any:
            parsed = map_type()
            for key, raw in value.items():
                parsed[key_of(key)] = value_of(raw)
            return parsed

        return parse_map


_compilers: dict[tuple[Any, ...], _Compiler] = {}


def _compiled_parse(original: Callable[..., Any]) -> Callable[..., Any]:
    def _parse_json_body(self: JSONParser, raw_body: Any, shape: Shape) -> Any:
        """JSONParser's body parse, through the shape's compiled function."""
        if type(self) is not JSONParser:
            return original(self, raw_body, shape)
        service = self.operation_model.service_model
        key = (service, self.MAP_TYPE, self._blob_parser, self._timestamp_parser)
        with _LOCK:  # compiling fills a shared table; running a compiled function does not
            compiler = _compilers.get(key)
            if compiler is None:
                compiler = _compilers[key] = _Compiler(*key[1:])
            parse = compiler.of(shape)
        return parse(self._parse_body_as_json(raw_body))  # type: ignore[no-untyped-call]

    return _parse_json_body


class _Unusual(Exception):
    """A value not in DynamoDB's JSON form of plain types: moto's own code writes it."""


def _base64(value: bytes | str) -> str:
    """ResponseSerializer._base64."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    return base64.b64encode(data).strip().decode("utf-8")


def _strings(values: Any) -> list[str]:
    if type(values) is not list or not all(type(v) is str for v in values):
        raise _Unusual
    return values


def _attribute_value(value: Any) -> dict[str, Any]:
    """One attribute value as moto's serializer writes it, or _Unusual."""
    if type(value) is not dict or not value.keys() <= _KNOWN:
        raise _Unusual  # other keys would make moto's picker try aliases
    written: dict[str, Any] = {}
    for name in _MEMBERS:
        member = value.get(name)
        if member is None:
            continue
        if name in ("S", "N"):
            if type(member) is not str:
                raise _Unusual
            written[name] = member
        elif name == "B":
            if not isinstance(member, bytes | str):
                raise _Unusual
            written[name] = _base64(member)
        elif name in ("SS", "NS"):
            written[name] = _strings(member)
        elif name == "BS":
            if type(member) is not list or not all(isinstance(b, bytes | str) for b in member):
                raise _Unusual
            written[name] = [_base64(b) for b in member]
        elif name == "M":
            written[name] = _attribute_map(member)
        elif name == "L":
            if type(member) is not list:
                raise _Unusual
            written[name] = [None if v is None else _attribute_value(v) for v in member]
        else:  # NULL, BOOL
            if type(member) is not bool:
                raise _Unusual
            written[name] = member
    return written


def _attribute_map(value: Any) -> dict[str, Any]:
    if type(value) is not dict or "" in value:
        raise _Unusual  # moto's writer drops an empty attribute name's level: left to it
    return {key: _attribute_value(v) for key, v in value.items() if v is not None}


def _direct_writer(original: Callable[..., None]) -> Callable[..., None]:
    def _serialize_type_map(
        self: BaseJSONSerializer, serialized: Any, value: Any, shape: Shape, key: str
    ) -> None:
        """BaseJSONSerializer's map writer, direct for a map of DynamoDB attribute values."""
        value_shape = shape.value
        if (
            value_shape.name == _ATTRIBUTE_VALUE
            and self.service_model.service_name in _DYNAMODB
            and "name" not in value_shape.serialization
            and not getattr(self._value_picker, "response_transformers", None)
        ):
            try:
                written = _attribute_map(value)
            except _Unusual:
                pass
            else:
                serialized[self.get_serialized_name(shape, key)] = written
                return
        original(self, serialized, value, shape, key)

    return _serialize_type_map


register(
    Patch(
        "codec",
        "speed",
        lambda: [
            (JSONParser, "_parse_json_body", Wrap(_compiled_parse)),
            (BaseJSONSerializer, "_serialize_type_map", Wrap(_direct_writer)),
        ],
        forget=_compilers.clear,
    )
)
