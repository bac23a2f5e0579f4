"""KPL aggregation: many user records in one Kinesis record, in the format the KCL reads.

The format (amazon-kinesis-producer, ``aggregation-format.md``)::

    F3 89 9A C2 | protobuf AggregatedRecord | MD5 of the protobuf bytes (16 bytes)

    message AggregatedRecord {
      repeated string partition_key_table     = 1;
      repeated string explicit_hash_key_table = 2;
      repeated Record records                 = 3;
    }
    message Record {
      required uint64 partition_key_index     = 1;
      optional uint64 explicit_hash_key_index = 2;
      required bytes  data                    = 3;
      repeated Tag    tags                    = 4;
    }

Only varints and length-delimited fields occur, so the protobuf is written by hand here: the PyPI
package ``aws_kinesis_agg`` needs protobuf and puts its own directory at the front of
``sys.path`` when imported (docs/decisions/0005). The tests check both against each other.
A record that does not parse as an aggregate (no magic, bad digest, bad protobuf) is a plain
record, as the KCL treats it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = b"\xf3\x89\x9a\xc2"
DIGEST_BYTES = 16
_KEY_TAG = b"\x0a"  # field 1, length-delimited
_RECORD_TAG = b"\x1a"  # field 3, length-delimited
_INDEX_TAG = b"\x08"  # Record field 1, varint
_DATA_TAG = b"\x1a"  # Record field 3, length-delimited


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One record inside an aggregated record."""

    partition_key: str
    data: bytes
    explicit_hash_key: str | None = None


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


class Aggregate:
    """One aggregated record being filled; knows its exact size after every ``add``."""

    def __init__(self) -> None:
        self._keys: dict[str, int] = {}
        self._key_fields: list[bytes] = []
        self._record_fields: list[bytes] = []
        self._proto_bytes = 0
        self.partition_key = ""  # the Kinesis record's key: the first user record's

    def __len__(self) -> int:
        return len(self._record_fields)

    @property
    def size(self) -> int:
        """Bytes the aggregated record counts against Kinesis limits (data plus its key)."""
        key = len(self.partition_key.encode())
        return len(MAGIC) + self._proto_bytes + DIGEST_BYTES + key

    def cost(self, partition_key: str, data: bytes) -> int:
        """How much ``size`` grows if this user record is added."""
        key = partition_key.encode()
        index = self._keys.get(partition_key, len(self._keys))
        body = 1 + _varint_size(index) + 1 + _varint_size(len(data)) + len(data)
        grow = 1 + _varint_size(body) + body
        if partition_key not in self._keys:
            grow += 1 + _varint_size(len(key)) + len(key)
        return grow + (len(key) if not self._keys else 0)

    def add(self, partition_key: str, data: bytes) -> None:
        """Append a user record; its sub-sequence number is its index."""
        if partition_key not in self._keys:
            key = partition_key.encode()
            self._keys[partition_key] = len(self._keys)
            self._key_fields.append(_KEY_TAG + _varint(len(key)) + key)
            self._proto_bytes += len(self._key_fields[-1])
            self.partition_key = self.partition_key or partition_key
        index = self._keys[partition_key]
        body = _INDEX_TAG + _varint(index) + _DATA_TAG + _varint(len(data)) + data
        self._record_fields.append(_RECORD_TAG + _varint(len(body)) + body)
        self._proto_bytes += len(self._record_fields[-1])

    def to_bytes(self) -> bytes:
        """The aggregated record's data: magic, protobuf, MD5."""
        proto = b"".join(self._key_fields) + b"".join(self._record_fields)
        return MAGIC + proto + hashlib.md5(proto).digest()


def is_aggregated(data: bytes) -> bool:
    """True when ``data`` starts with the KPL magic and carries a matching MD5 digest."""
    if len(data) < len(MAGIC) + DIGEST_BYTES or not data.startswith(MAGIC):
        return False
    proto = data[len(MAGIC) : -DIGEST_BYTES]
    return hashlib.md5(proto).digest() == data[-DIGEST_BYTES:]


def deaggregate(data: bytes) -> list[UserRecord] | None:
    """The user records of an aggregated record, in order; ``None`` when it is a plain record."""
    if not is_aggregated(data):
        return None
    try:
        return _parse(memoryview(data)[len(MAGIC) : -DIGEST_BYTES])
    except (ValueError, IndexError, KeyError, UnicodeDecodeError):
        return None


def _parse(proto: memoryview) -> list[UserRecord]:
    keys: list[str] = []
    hash_keys: list[str] = []
    raw: list[memoryview] = []
    for number, value in _fields(proto):
        if number == 1:
            keys.append(bytes(_bytes(value)).decode())
        elif number == 2:
            hash_keys.append(bytes(_bytes(value)).decode())
        elif number == 3:
            raw.append(_bytes(value))
    records = []
    for body in raw:
        fields = dict(_fields(body))
        key_index, data = fields[1], _bytes(fields[3])
        hash_index = fields.get(2)
        if not isinstance(key_index, int) or not isinstance(hash_index, int | None):
            raise ValueError("index fields must be varints")
        hash_key = hash_keys[hash_index] if hash_index is not None else None
        records.append(UserRecord(keys[key_index], bytes(data), hash_key))
    return records


def _bytes(value: int | memoryview) -> memoryview:
    if not isinstance(value, memoryview):
        raise ValueError("expected a length-delimited field")
    return value


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """``(field number, value)`` of each field: an int for varints, a view for the rest."""
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            yield number, value
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated field")
            yield number, buf[pos : pos + length]
            pos += length
        elif wire in (1, 5):  # fixed 64 / 32 bits: not in the format, skipped
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
