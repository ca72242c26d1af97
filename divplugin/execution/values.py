"""A safe wire format for values that cross the sandbox boundary.

Outputs of untrusted code come back as JSON with tags for the types JSON lacks; nothing is
unpickled. Only exact builtin types survive: a subclass (an `int` whose `__eq__` always
says True, say) comes back as an :class:`Opaque` that equals nothing, so a candidate cannot
pass a check by returning a rigged object. The encoder is also used inside the sandbox, so
it imports nothing beyond the standard library.
"""

from __future__ import annotations

import json
import math

MAX_DEPTH = 64
MAX_ITEMS = 20_000_000
_BIG = 1 << 63
_MAPPINGS = ("Counter", "OrderedDict", "defaultdict")  # compare equal to dicts with their items


class Opaque:
    """Stands in for a value of a type the wire format does not carry; equals nothing."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<unserialisable {self.type_name}>"


class Digest:
    """A large value, carried as the SHA-256 of its canonical encoding; equal to an equal digest."""

    __slots__ = ("hexdigest", "size")

    def __init__(self, hexdigest: str, size: int):
        self.hexdigest, self.size = hexdigest, size

    def __eq__(self, other):
        return isinstance(other, Digest) and other.hexdigest == self.hexdigest

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self.hexdigest)

    def __repr__(self):
        return f"<value of {self.size} bytes, sha256 {self.hexdigest[:12]}>"


INLINE_MAX = 64 * 1024


def _canonical(enc):
    """`enc` with set members and dict items in a fixed order (equal values, equal text)."""
    if isinstance(enc, list):
        return [_canonical(v) for v in enc]
    if isinstance(enc, dict):
        ((tag, v),) = enc.items()
        if tag in ("S", "Z", "D"):
            items = [_canonical(i) for i in v]
            return {tag: sorted(items, key=lambda i: json.dumps(i, separators=(",", ":")))}
        if tag in ("T", "A"):
            return {tag: _canonical(v)}
    return enc


def compact(enc):
    """`enc` itself if its JSON is small, else a digest tag (keeps big outputs off the wire)."""
    text = json.dumps(enc, separators=(",", ":"))
    if len(text) <= INLINE_MAX:
        return enc
    import hashlib

    canon = json.dumps(_canonical(enc), separators=(",", ":"))
    return {"H": [hashlib.sha256(canon.encode()).hexdigest(), len(canon)]}


def repr_digest(value):
    """A digest tag of ``repr(value)``, for values past the item limit (equal plain values of
    the same construction have equal reprs)."""
    import hashlib

    text = repr(value)
    return {"H": ["repr:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), len(text)]}


class TooLarge(ValueError):
    """The value has more items (or deeper nesting) than the wire format carries."""


def _encode(x, depth: int, budget: list):
    budget[0] -= 1
    if budget[0] < 0:
        raise TooLarge(f"more than {MAX_ITEMS} items")
    t = type(x)
    if x is None or t is bool or t is str:
        return x
    if t is int:
        # hex is not subject to Python's limit on int-to-decimal conversion
        return x if -_BIG < x < _BIG else {"I": format(x, "x")}
    if t is float:
        if math.isfinite(x):
            return x
        return {"F": repr(x)}
    if depth >= MAX_DEPTH:
        raise TooLarge(f"nested deeper than {MAX_DEPTH}")
    if t is list:
        return [_encode(v, depth + 1, budget) for v in x]
    if t is tuple:
        return {"T": [_encode(v, depth + 1, budget) for v in x]}
    if t is dict or (t.__module__ == "collections" and t.__name__ in _MAPPINGS):
        return {"D": [[_encode(k, depth + 1, budget), _encode(v, depth + 1, budget)] for k, v in x.items()]}
    if t is set:
        return {"S": [_encode(v, depth + 1, budget) for v in x]}
    if t is frozenset:
        return {"Z": [_encode(v, depth + 1, budget) for v in x]}
    if t is complex:
        return {"C": [repr(x.real), repr(x.imag)]}
    if t is bytes:
        return {"B": x.hex()}
    if t is Digest:
        return {"H": [x.hexdigest, x.size]}
    mod = getattr(t, "__module__", "")
    if mod == "numpy" and hasattr(x, "item") and hasattr(x, "dtype"):
        if getattr(x, "ndim", 0) == 0:
            return _encode(x.item(), depth, budget)
        return {"A": _encode(x.tolist(), depth + 1, budget)}
    return {"X": f"{mod}.{t.__qualname__}" if mod else t.__qualname__}


def encode_obj(value, max_items: int = MAX_ITEMS):
    """The JSON-ready wire form of `value` (the inverse of `decode_obj`); raises TooLarge past
    ``max_items`` items."""
    return _encode(value, 0, [max_items])


def encode(value) -> str:
    """The JSON text of `value`; raises TooLarge for values past the size limits."""
    return json.dumps(encode_obj(value), ensure_ascii=True, separators=(",", ":"))


def _decode(x):
    if isinstance(x, list):
        return [_decode(v) for v in x]
    if not isinstance(x, dict):
        return x
    if len(x) != 1:
        raise ValueError("malformed value: a tag object must have one key")
    ((tag, v),) = x.items()
    if tag == "F":
        return float(v)
    if tag == "I":
        return int(v, 16)
    if tag == "T":
        return tuple(_decode(i) for i in v)
    if tag == "D":
        return {_decode(k): _decode(i) for k, i in v}
    if tag == "S":
        return {_decode(i) for i in v}
    if tag == "Z":
        return frozenset(_decode(i) for i in v)
    if tag == "C":
        return complex(float(v[0]), float(v[1]))
    if tag == "B":
        return bytes.fromhex(v)
    if tag == "A":
        import numpy as np

        return np.array(_decode(v))
    if tag == "X":
        return Opaque(str(v))
    if tag == "H":
        return Digest(str(v[0]), int(v[1]))
    raise ValueError(f"malformed value: unknown tag {tag!r}")


def decode(text: str):
    """The value that :func:`encode` wrote; never executes anything."""
    return _decode(json.loads(text))


def decode_obj(obj):
    """Like :func:`decode`, for an already parsed JSON structure."""
    return _decode(obj)
