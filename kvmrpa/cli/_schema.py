"""``kvmrpa schema``: print the JSON Schema of the native flow format.

The schema is the package data file ``kvmrpa/engine/flow.schema.json``, the same one
``kvmrpa validate`` checks against. ``--nodes`` adds the parameter schema of every
registered node type (generated from its ``param`` declarations).
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of the flow format")
    p.add_argument("--nodes", action="store_true",
                   help="also print each node type's parameter schema")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine import flow_schema

    schema = flow_schema()
    if not args.nodes:
        print(json.dumps(schema, indent=2, ensure_ascii=False))
        return 0
    from ..nodes import node_types

    nodes = {}
    for name, cls in node_types().items():
        try:
            props = {k: v for k, v in cls.param.schema().items() if k != "name"}
        except Exception as exc:  # a parameter type param cannot describe
            props = {"error": f"{type(exc).__name__}: {exc}"}
        nodes[name] = {"description": " ".join((cls.__doc__ or "").split()), "params": props}
    print(json.dumps({"flow": schema, "nodes": nodes}, indent=2, ensure_ascii=False, default=str))
    return 0
