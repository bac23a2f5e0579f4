"""``streamrec sql "select ..."``: DuckDB over the Glue table of the lake, printed.

The query runs on ``feature_store.sql`` (the view is named like the Glue table). Output: an
aligned text table (default), ``--json`` (one JSON object per row, JSON Lines) or ``--csv``
(with a header). Exit status: 0, 1 for a query DuckDB refuses, 2 when the lake is not there.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Any, TextIO

import duckdb

from feature_store.sql import LakeUnavailable, QueryResult, connect, lake_dataset, run_query
from infra.clients import client, s3_filesystem
from infra.settings import Settings

FORMATS = ("table", "json", "csv")


def run_sql(
    settings: Settings,
    sql: str,
    output: str = "table",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``sql`` over the settings' Glue table and print the result; the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    database, table = settings.glue_database, settings.glue_events_table
    try:
        dataset = lake_dataset(client("glue", settings), s3_filesystem(settings), database, table)
        result = run_query(connect(dataset, database, table), sql)
    except LakeUnavailable as exc:
        print(f"streamrec sql: {exc}", file=err)
        return 2
    except duckdb.Error as exc:
        print(f"streamrec sql: {exc}", file=err)
        return 1
    {"table": write_table, "json": write_json, "csv": write_csv}[output](result, out)
    return 0


def write_table(result: QueryResult, out: TextIO) -> None:
    """Columns padded to their widest value, a rule under the header, then a row count."""
    cells = [[_text(v) for v in row] for row in result.rows]
    widths = [
        max([len(name)] + [len(row[i]) for row in cells]) for i, name in enumerate(result.columns)
    ]
    if result.columns:
        print("  ".join(n.ljust(w) for n, w in zip(result.columns, widths, strict=True)), file=out)
        print("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
    print(f"({len(cells)} row{'s' if len(cells) != 1 else ''})", file=out)


def write_json(result: QueryResult, out: TextIO) -> None:
    """One JSON object per row; values JSON cannot hold (dates, decimals) as their text."""
    for row in result.rows:
        print(json.dumps(dict(zip(result.columns, row, strict=True)), default=str), file=out)


def write_csv(result: QueryResult, out: TextIO) -> None:
    """A header, then the rows; NULL as an empty field."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows(["" if v is None else v for v in row] for row in result.rows)


def _text(value: Any) -> str:
    return "NULL" if value is None else str(value)
