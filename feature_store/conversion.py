"""Record format conversion with the Glue table's schema, as Firehose does it (pure).

A Firehose delivery stream with record format conversion reads the columns of a Glue table
(GetTable) and writes each record's fields into them: a field the table lacks is dropped, a
column the record lacks is null, and a record whose value does not fit its column's type fails
on its own, with a reason, while the rest of the batch lands. ``convert`` does the same for
events: rows are ``producers.schema.to_row`` (``context`` as its JSON text), columns come from
``TableSchema.from_glue``.

Types: the primitive Hive types a Parquet lake of JSON events needs (``string``, ``varchar``,
``char``, ``boolean``, ``tinyint``, ``smallint``, ``int``, ``bigint``, ``float``, ``double``).
Others (``map<..>``, ``array<..>``, ``struct<..>``, ``decimal``, ``timestamp``, ...) are refused
when the schema is read, naming the column, rather than failing every record later.

Errors::

    UnsupportedColumn(StreamrecError)   the table has a column type we cannot write
    ConversionError (a value, not raised) .code TYPE_MISMATCH | OUT_OF_RANGE, .column, the reason
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from feature_store.transforms import Sequenced
from infra.errors import StreamrecError
from producers.schema import to_row

TYPE_MISMATCH = "TYPE_MISMATCH"  # the value's JSON type cannot become the column's type
OUT_OF_RANGE = "OUT_OF_RANGE"  # a number outside what the column's type holds

_INTEGERS: dict[str, tuple[pa.DataType, int]] = {
    "tinyint": (pa.int8(), 8),
    "smallint": (pa.int16(), 16),
    "int": (pa.int32(), 32),
    "integer": (pa.int32(), 32),
    "bigint": (pa.int64(), 64),
}
_FLOATS: dict[str, pa.DataType] = {"float": pa.float32(), "double": pa.float64()}
_STRINGS = ("string", "varchar", "char")
FLOAT32_MAX = 3.4028234663852886e38


class UnsupportedColumn(StreamrecError):
    """A Glue column whose type the lander cannot write."""

    def __init__(self, name: str, glue_type: str) -> None:
        super().__init__(
            f"column {name!r} has type {glue_type}, which the lander cannot write "
            "(supported: string, varchar, char, boolean, tinyint, smallint, int, bigint, "
            "float, double)"
        )
        self.column = name
        self.glue_type = glue_type


@dataclass(frozen=True)
class ConversionError:
    """Why one record does not fit the table: ``code`` and the column it failed on."""

    code: str
    column: str
    glue_type: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: column {self.column!r} ({self.glue_type}): {self.detail}"


@dataclass(frozen=True)
class Column:
    """One column of the table: its name, Glue type (lower case) and Arrow type."""

    name: str
    glue_type: str
    arrow_type: pa.DataType


@dataclass(frozen=True)
class TableSchema:
    """The columns of a Glue table, in table order (partition keys are not columns)."""

    columns: tuple[Column, ...]

    @classmethod
    def from_glue(cls, table: Mapping[str, Any]) -> TableSchema:
        """The schema of GetTable's ``Table``; raises ``UnsupportedColumn``."""
        columns = []
        for column in table["StorageDescriptor"]["Columns"]:
            name, glue_type = column["Name"], column["Type"].strip().lower()
            columns.append(Column(name, glue_type, _arrow_type(name, glue_type)))
        return cls(tuple(columns))

    @property
    def arrow(self) -> pa.Schema:
        """The Parquet files' schema: every column nullable, as Firehose writes them."""
        return pa.schema([pa.field(c.name, c.arrow_type, nullable=True) for c in self.columns])

    @property
    def glue_columns(self) -> tuple[tuple[str, str], ...]:
        """``(name, type)`` pairs, for the storage descriptor of a partition."""
        return tuple((c.name, c.glue_type) for c in self.columns)


@dataclass(frozen=True)
class Converted:
    """The outcome of a conversion: the rows that fit as a table, and the records that did not."""

    kept: list[Sequenced]  # in input order; row i of ``table`` is ``kept[i]``
    table: pa.Table
    failed: list[tuple[Sequenced, ConversionError]]


def convert(schema: TableSchema, records: Sequence[Sequenced]) -> Converted:
    """Each record's event as a row of ``schema``; a record with a misfit value is failed alone."""
    kept: list[Sequenced] = []
    rows: list[dict[str, Any]] = []
    failed: list[tuple[Sequenced, ConversionError]] = []
    for record in records:
        row, error = _convert_row(schema, to_row(record.event))
        if error is None:
            kept.append(record)
            rows.append(row)
        else:
            failed.append((record, error))
    return Converted(kept, pa.Table.from_pylist(rows, schema=schema.arrow), failed)


def _arrow_type(name: str, glue_type: str) -> pa.DataType:
    base = glue_type.split("(", 1)[0]  # varchar(64), char(8)
    if base in _STRINGS:
        return pa.string()
    if base == "boolean":
        return pa.bool_()
    if base in _INTEGERS:
        return _INTEGERS[base][0]
    if base in _FLOATS:
        return _FLOATS[base]
    raise UnsupportedColumn(name, glue_type)


def _convert_row(
    schema: TableSchema, row: Mapping[str, Any]
) -> tuple[dict[str, Any], ConversionError | None]:
    out: dict[str, Any] = {}
    for column in schema.columns:
        value = row.get(column.name)
        if value is None:
            out[column.name] = None
            continue
        converted = _convert_value(column, value)
        if isinstance(converted, ConversionError):
            return out, converted
        out[column.name] = converted
    return out, None


def _convert_value(column: Column, value: Any) -> Any:
    """The value as the column's type, or the error saying why it cannot be."""
    base = column.glue_type.split("(", 1)[0]

    def error(code: str, detail: str) -> ConversionError:
        return ConversionError(code, column.name, column.glue_type, detail)

    if base in _STRINGS:
        # Hive's JSON reading turns a JSON number or boolean into its text; so do we
        return value if isinstance(value, str) else json.dumps(value)
    if base == "boolean":
        if isinstance(value, bool):
            return value
        return error(TYPE_MISMATCH, f"{value!r} is not a boolean")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return error(TYPE_MISMATCH, f"{value!r} is not a number")
    if base in _INTEGERS:
        if isinstance(value, float) and not value.is_integer():
            return error(TYPE_MISMATCH, f"{value!r} is not an integer")
        bits = _INTEGERS[base][1]
        number = int(value)
        if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            return error(OUT_OF_RANGE, f"{number} does not fit {bits} bits")
        return number
    if base == "float" and math.isfinite(value) and abs(value) > FLOAT32_MAX:
        return error(OUT_OF_RANGE, f"{value!r} does not fit a 32-bit float")
    return float(value)
