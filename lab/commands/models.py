"""``facelab models``: table of registered animators."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list registered animators",
        description="List the registered animators with their encoder/decoder parameter counts and what "
        "crosses the network per frame.",
    )
    p.add_argument("--filter", default="", help="shell-style wildcard on the name, e.g. 'f*'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lab.registry import create_animator, list_animators

    rows = []
    for name in list_animators(args.filter):
        m = create_animator(name)
        rows.append((name, f"{m.encoder_params:,}", f"{m.decoder_params:,}", m.info.motion_description,
                     m.info.description))
    header = ("name", "encoder params", "decoder params", "motion per frame", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  " + header[4]
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4])
    return 0
