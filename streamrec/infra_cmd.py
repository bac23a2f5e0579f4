"""``streamrec infra render`` and ``streamrec infra diff``: wiring only.

render: the CloudFormation template of one environment (infra.cloudformation), as YAML.
diff:   what ``streamrec infra apply`` would change on the endpoints (infra.diff); exit status
        0 when nothing, 1 when something, 2 when the endpoint cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.cloudformation import render, to_yaml
from infra.diff import plan
from infra.environments import ENVIRONMENTS, environment
from infra.settings import Settings


def add_infra_commands(infra: Any) -> None:
    """Register ``render`` and ``diff`` under the ``infra`` subparsers."""
    render_parser = infra.add_parser(
        "render",
        help="write the CloudFormation template (YAML) of an environment",
        description="Write the CloudFormation template of dev, staging or prod, built from the "
        "resource definitions `streamrec infra apply` uses; names come from STREAMREC_*.",
    )
    render_parser.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    render_parser.add_argument("--out", type=Path, help="file to write (default: stdout)")
    render_parser.set_defaults(func=_render)
    diff_parser = infra.add_parser(
        "diff",
        help="show what `infra apply` would change (exit 1 if anything)",
        description="Compare the stream, tables (and TTL), bucket and Glue database/table "
        "with the definitions. + create, ~ update, ! differs (apply keeps what exists).",
    )
    diff_parser.add_argument(
        "--env",
        choices=list(ENVIRONMENTS),
        help="compare with that environment's shape (stream mode and shards, PITR) instead of "
        "apply's local one",
    )
    diff_parser.set_defaults(func=_diff)


def _render(args: argparse.Namespace, settings: Settings) -> int:
    template = render(settings, environment(args.env))
    text = to_yaml(template)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    args.out.write_text(text)
    count = len(template["Resources"])
    print(f"wrote {args.out}: {args.env}, {count} resources", file=sys.stderr)
    return 0


def _diff(args: argparse.Namespace, settings: Settings) -> int:
    try:
        changes = plan(settings, environment(args.env) if args.env else None)
    except (BotoCoreError, ClientError) as exc:
        print(f"streamrec infra diff: cannot read the resources: {exc}", file=sys.stderr)
        return 2
    for change in changes:
        print(change)
    print(f"{len(changes)} change(s)" if changes else "no changes")
    return 1 if changes else 0
