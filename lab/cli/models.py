"""``facelab models``: table of registered animators."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list registered animators",
        description="List the registered animators with their encoder/decoder parameter counts, what "
        "crosses the network per frame and their weights (trained: <file>, random init, none needed, or "
        "unavailable: <file>: <reason> when a weights file is found but refused).",
    )
    p.add_argument("--filter", default="", help="shell-style wildcard on the name, e.g. 'f*'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lab.core.animate import load_animator
    from lab.core.registry import list_animators

    rows, notes = [], []
    for name in list_animators(args.filter):
        la = load_animator(name, allow_unavailable=True)  # a refused weights file: listed, not fatal
        m = la.model
        rows.append((name, f"{m.encoder_params:,}", f"{m.decoder_params:,}", m.info.motion_description, la.weights,
                     m.info.description))
        if not la.available:
            notes.append(f"note: {name} {la.weights}; replace or remove {la.path}")
    header = ("name", "encoder params", "decoder params", "motion per frame", "weights", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  " + header[5]
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5])
    for n in notes:
        print(n)
    return 0
