"""Bytes <-> events, with errors that say what is wrong so a dead letter explains itself."""

from __future__ import annotations

import functools
import operator
import types
import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import annotated_types
import msgspec
import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError
from pydantic.fields import FieldInfo
from pydantic.types import AllowInfNan

from stormwatch_shared.events import SCHEMA_VERSION, _nearest_microsecond, _utc

M = TypeVar("M", bound=BaseModel)

MAX_MESSAGE_BYTES = 256 * 1024
"""Larger messages are refused: no mention needs this, and it protects the consumers."""


class DecodeError(ValueError):
    """A message that cannot become the expected event; the text is the dead-letter reason."""


def encode(event: BaseModel) -> bytes:
    # pydantic-core writes JSON directly: 7.5 us against 9.9 us for dump-then-orjson on a
    # scored mention, and the same bytes.
    return event.model_dump_json().encode()


def decode(raw: bytes, model: type[M]) -> M:
    """Validate straight from JSON; only a refused message takes the slow path that explains.

    Parsing and validating in pydantic-core cost 11.4 us per synthetic received mention
    against 17.4 us for ``orjson.loads`` plus ``model_validate`` (on the bench's dev-set
    payloads the difference was within noise). The schema version and event type are checked
    on the result, so a message is accepted by exactly the rules of :func:`_explain`.
    """
    _refuse_oversized(raw)
    try:
        event = model.model_validate_json(raw)
    except ValidationError:
        return _explain(raw, model)
    given = event.model_fields_set
    # A defaulted version or type is not a stated one: the message must say what it is.
    if (
        "schema_version" not in given
        or getattr(event, "schema_version", None) != SCHEMA_VERSION
        or (_has_type(model) and "type" not in given)
    ):
        return _explain(raw, model)
    return event


def _refuse_oversized(raw: bytes) -> None:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"message too large: {len(raw)} bytes > {MAX_MESSAGE_BYTES}")


@functools.cache
def _has_type(model: type[BaseModel]) -> bool:
    """Cached: ``model_fields`` is read through a deprecation shim in pydantic 2.11+, ~1 us
    per call and 1.3 % of the alerting service's CPU when it was read per message."""
    return "type" in model.model_fields


def _explain(raw: bytes, model: type[M]) -> M:
    """The checks in the order an operator reads them; raises ``DecodeError`` with the reason."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DecodeError(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DecodeError(
            f"unsupported schema_version {version!r} (this service reads {SCHEMA_VERSION})"
        )
    expected = model.model_fields.get("type")
    if expected is not None and data.get("type") != expected.default:
        raise DecodeError(f"unexpected event type {data.get('type')!r}, want {expected.default!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise DecodeError(f"schema violation: {errors}") from exc


class FastDecoder:
    """msgspec decoding of one event type for a hot consumer; pydantic for everything else.

    Why: validating a scored mention in pydantic took ~17 % of the alerting service's CPU in
    the pipeline bench (py-spy, 2026-12-02), msgspec decodes the same bytes 5x faster. The
    msgspec type is derived from the pydantic model (``_struct_for``), so the schema is
    written once, and it is never laxer: every constraint of the model is carried over, and
    the schema version and event type must be stated. A message it refuses takes
    :func:`decode`, which accepts it as pydantic would or raises ``DecodeError`` with the
    reason, so dead letters read as before.

    The result is a frozen msgspec ``Struct`` with the model's field names (or, after a
    refusal, the pydantic event itself): read its attributes, do not call pydantic methods
    on it. Its timestamps are plain ``datetime`` objects in UTC, equal to pydantic's.

    Timestamps are parsed by msgspec itself, in C: a Python hook per timestamp (a regex, a
    cache, ``fromisoformat``) was a third of this decoder's time (2026-12-03: 12.4 against
    6.4 us for a scored mention). msgspec and pydantic read every RFC 3339 spelling alike
    (``tests/unit/test_fast_decode.py``): more than six fractional digits are rounded on both
    paths (the models read such texts with msgspec, see ``events.UtcDatetime``), and an
    offset other than UTC, which pydantic converts and msgspec keeps, sends the message to
    the pydantic path (checked on the result).
    """

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        struct = _struct_for(model, top=True)
        self._decoder = msgspec.json.Decoder(struct)
        self._timestamps = _timestamps(struct)

    def fast(self, raw: bytes) -> Any | None:
        """The msgspec result, or None where the message needs the pydantic path."""
        try:
            event = self._decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        if event.schema_version != SCHEMA_VERSION or not self._timestamps.in_utc(event):
            return None
        return event

    def __call__(self, raw: bytes) -> Any:
        _refuse_oversized(raw)
        event = self.fast(raw)
        return event if event is not None else decode(raw, self.model)

    def struct(self, raw: bytes) -> Any:
        """Always the msgspec struct (what :class:`FastEncoder` takes as nested values): a
        message only pydantic accepts (a timestamp in another spelling, nanoseconds) is
        decoded by pydantic and its canonical JSON then by msgspec."""
        _refuse_oversized(raw)
        event = self.fast(raw)
        if event is not None:
            return event
        event = self.fast(encode(decode(raw, self.model)))
        if event is None:  # the mirror refuses what the model wrote: a bug, said plainly
            raise DecodeError(f"{self.model.__name__}: accepted by pydantic, not by msgspec")
        return event


class FastEncoder:
    """Validation and encoding of one event type from field values, in msgspec.

    Why: building the scored mention as a pydantic model and dumping it cost the sentiment
    service ~15 us per mention (2026-12-02, bench payloads), as much as decoding its input;
    validating the same fields into the msgspec mirror of the model and encoding that takes
    ~5.5 us. The mirror carries every constraint of the model (``_struct_for``), so a value
    the model would refuse (a NaN or out-of-range probability, an unknown label) is refused
    here too, as a ``ValueError`` naming the field; and the bytes are those pydantic writes
    (``tests/unit/test_fast_encode.py`` compares both). Nested values are read by attribute.
    Timestamps must be aware and in UTC (what :class:`FastDecoder` returns): pydantic would
    convert another offset to UTC, which a frozen struct cannot, so such a value is refused
    here (a ``ValueError`` naming the field) instead of being written in another spelling.
    """

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        self._struct = _struct_for(model, top=True)
        self._batch: Any = list[self._struct]  # type: ignore[name-defined]
        self._encoder = msgspec.json.Encoder()
        self._timestamps = _timestamps(self._struct)

    def validate(self, fields: dict[str, Any]) -> Any:
        """The validated event (a frozen msgspec struct; read its attributes)."""
        try:
            event = msgspec.convert(fields, self._struct, from_attributes=True)
        except msgspec.ValidationError as exc:
            raise ValueError(f"{self.model.__name__} schema violation: {exc}") from exc
        if not self._timestamps.in_utc(event):
            raise ValueError(f"{self.model.__name__}: {self._timestamps.refusal(event)}")
        return event

    def validate_many(self, fields: list[dict[str, Any]]) -> list[Any]:
        """``validate`` of a whole batch in one conversion (2.35 against 3.55 us per scored
        mention, 2026-12-03); a refusal names the first refused item's position, so callers
        that must know which ones go through ``validate`` one by one after it."""
        try:
            events: list[Any] = msgspec.convert(fields, self._batch, from_attributes=True)
        except msgspec.ValidationError as exc:
            raise ValueError(f"{self.model.__name__} schema violation: {exc}") from exc
        stamps = self._timestamps
        for i, event in enumerate(events):
            if not stamps.in_utc(event):
                raise ValueError(f"{self.model.__name__}: [{i}] {stamps.refusal(event)}")
        return events

    def encode(self, event: Any) -> bytes:
        return self._encoder.encode(event)


_TIMESTAMP = Annotated[datetime, msgspec.Meta(tz=True)]
"""The mirror of ``UtcDatetime``: aware, parsed and written by msgspec; UTC is checked on the
result (``_Timestamps``)."""


class _Timestamps:
    """The timestamps of a mirror struct, by attribute paths found once: the check that
    keeps msgspec's reading of them equal to pydantic's (see FastDecoder).

    Paths through optional nested structs stop at None.
    """

    def __init__(self, paths: list[tuple[str, ...]]) -> None:
        self.paths = [".".join(p) for p in paths]
        self._getters = [operator.attrgetter(p) for p in self.paths]

    def _values(self, obj: Any) -> Iterator[tuple[str, Any]]:
        """(path, value) of each timestamp that is there (not None, not in a None struct)."""
        for path, get in zip(self.paths, self._getters, strict=True):
            try:
                value = get(obj)
            except AttributeError:  # an optional nested struct that is None
                continue
            if value is not None:
                yield path, value

    def in_utc(self, event: Any) -> bool:
        """msgspec keeps a stated offset (``+01:00``), pydantic's ``_utc`` converts it.

        Spelled out instead of ``all()`` over ``_values``: 0.2 against 1-2 us per event."""
        for get in self._getters:
            try:
                value = get(event)
            except AttributeError:  # an optional nested struct that is None
                continue
            if value is not None and value.tzinfo is not UTC:
                return False
        return True

    def refusal(self, event: Any) -> str:
        for path, value in self._values(event):
            if value.tzinfo is not UTC:
                return f"{path}: timestamp must be in UTC, got offset {value.utcoffset()}"
        return "timestamps must be in UTC"


@functools.cache
def _timestamps(struct: Any) -> _Timestamps:
    return _Timestamps(list(_timestamp_paths(msgspec.inspect.type_info(struct), ())))


def _timestamp_paths(info: Any, at: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Attribute paths of the timestamps in a mirror struct (``msgspec.inspect`` types)."""
    mi = msgspec.inspect
    if isinstance(info, mi.DateTimeType):
        yield at
    elif isinstance(info, mi.StructType):
        for field in info.fields:
            yield from _timestamp_paths(field.type, (*at, field.name))
    elif isinstance(info, mi.UnionType):
        for member in info.types:
            yield from _timestamp_paths(member, at)
    elif isinstance(info, mi.Metadata):
        yield from _timestamp_paths(info.type, at)
    elif _holds_timestamp(info):
        raise TypeError(f"{'.'.join(at)}: timestamps inside containers are not mirrored")


def _holds_timestamp(info: Any) -> bool:
    mi = msgspec.inspect
    if isinstance(info, mi.DateTimeType):
        return True
    inner = [getattr(info, a, None) for a in ("item_type", "key_type", "value_type", "type")]
    inner += list(getattr(info, "item_types", ()))
    return any(_holds_timestamp(t) for t in inner if isinstance(t, mi.Type))


_CONSTRAINTS = {
    annotated_types.MinLen: "min_length",
    annotated_types.MaxLen: "max_length",
    annotated_types.Ge: "ge",
    annotated_types.Gt: "gt",
    annotated_types.Le: "le",
    annotated_types.Lt: "lt",
}
"""annotated-types constraint (as pydantic stores ``Field(max_length=...)``) -> msgspec Meta."""

_MIRRORED_CONFIG = frozenset({"frozen", "extra"})
"""Model config keys the mirror knows; any other (``strict``, ``str_strip_whitespace``, ...)
changes validation in ways it does not copy, so it refuses the model."""


@functools.cache
def _struct_for(model: type[BaseModel], *, top: bool = False) -> Any:
    """A msgspec ``Struct`` type with the fields, constraints and defaults of ``model``.

    Cached, so a nested model has one struct type wherever it occurs: ``FastEncoder`` then
    takes the mention a ``FastDecoder`` validated as it is (``msgspec.convert`` passes an
    instance of the very type through) instead of validating it a second time.

    Refuses (``TypeError``, at start) any field it cannot carry over exactly, so a schema
    change that this mirror would silently weaken stops the service instead.
    """
    if model.model_config.get("extra") != "forbid":
        raise TypeError(f"{model.__name__}: the fast decoder mirrors extra='forbid' models only")
    unknown = set(model.model_config) - _MIRRORED_CONFIG
    if unknown:
        raise TypeError(f"{model.__name__}: config {sorted(unknown)} is not mirrored")
    decorators = model.__pydantic_decorators__
    if decorators.field_validators or decorators.model_validators or decorators.validators:
        raise TypeError(f"{model.__name__}: validators in code are not mirrored")
    fields: list[tuple[str, Any, Any]] = []
    for name, info in model.model_fields.items():
        if info.alias is not None and info.alias != name:
            raise TypeError(f"{model.__name__}.{name}: aliases are not mirrored")
        meta: dict[str, Any] = {}
        tz = False
        for item in info.metadata:
            if isinstance(item, AfterValidator) and item.func is _utc:
                tz = True
                continue
            if isinstance(item, BeforeValidator) and item.func is _nearest_microsecond:
                continue  # msgspec's own reading of long fractions: nothing to mirror
            key = _CONSTRAINTS.get(type(item))
            if key is None:
                raise TypeError(f"{model.__name__}.{name}: cannot mirror {item!r}")
            meta[key] = getattr(item, key)
        kind = _mirror_type(info.annotation, f"{model.__name__}.{name}", tz=tz, meta=meta)
        if top and name in {"schema_version", "type"}:
            fields.append((name, kind, msgspec.NODEFAULT))  # must be stated, as in `decode`
        elif info.is_required():
            fields.append((name, kind, msgspec.NODEFAULT))
        elif info.default_factory is not None:
            factory = info.default_factory
            fields.append((name, kind, msgspec.field(default_factory=factory)))  # type: ignore[arg-type]
        else:
            fields.append((name, kind, info.default))
    return msgspec.defstruct(
        f"{model.__name__}Struct",
        [(n, k) if d is msgspec.NODEFAULT else (n, k, d) for n, k, d in fields],
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
    )


def _mirror_type(annotation: Any, where: str, *, tz: bool = False, meta: dict[str, Any]) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _mirror_annotated(args, where, tz=tz, meta=meta)
    if origin in (types.UnionType, typing.Union):
        if len(args) != 2 or type(None) not in args:
            raise TypeError(f"{where}: only `X | None` unions are mirrored")
        (inner,) = (a for a in args if a is not type(None))
        return _mirror_type(inner, where, tz=tz, meta=meta) | None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if meta or tz:
            raise TypeError(f"{where}: constraints on a nested model are not mirrored")
        return _struct_for(annotation)
    if annotation is datetime:
        if not tz or meta:
            raise TypeError(f"{where}: only UtcDatetime is mirrored")
        return _TIMESTAMP
    if tz:
        raise TypeError(f"{where}: a UTC validator on a non-datetime")
    if annotation in (str, int, float, bool) or origin is Literal:
        base = annotation
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        base = tuple[_mirror_type(args[0], where, meta={}), ...]  # type: ignore[misc]
    elif origin is dict and len(args) == 2:
        key, value = (_mirror_type(a, where, meta={}) for a in args)
        base = dict[key, value]  # type: ignore[valid-type]
    else:
        raise TypeError(f"{where}: cannot mirror {annotation!r}")
    return Annotated[base, msgspec.Meta(**meta)] if meta else base


def _mirror_annotated(args: tuple[Any, ...], where: str, *, tz: bool, meta: dict[str, Any]) -> Any:
    """``Annotated[float, Field(ge=..., le=..., allow_inf_nan=False)]`` and the like.

    msgspec's JSON has no NaN or infinity tokens, and a bound on both sides refuses the
    infinities an overflowing literal (``1e999``) becomes; ``allow_inf_nan=False`` is
    therefore mirrored only together with both bounds.
    """
    base, *extras = args
    inner = dict(meta)
    finite = False
    for extra in extras:
        if isinstance(extra, FieldInfo):
            if not extra.is_required() or extra.alias is not None:
                raise TypeError(f"{where}: only constraints are mirrored from Field()")
            items: list[Any] = list(extra.metadata)
        else:
            items = [extra]
        for item in items:
            if isinstance(item, AllowInfNan):
                finite = finite or not item.allow_inf_nan
                continue
            key = _CONSTRAINTS.get(type(item))
            if key is None:
                raise TypeError(f"{where}: cannot mirror {item!r}")
            inner[key] = getattr(item, key)
    if finite and not ({"ge", "gt"} & inner.keys() and {"le", "lt"} & inner.keys()):
        raise TypeError(f"{where}: allow_inf_nan=False is mirrored only with both bounds")
    return _mirror_type(base, where, tz=tz, meta=inner)
