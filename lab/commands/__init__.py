"""Subcommands of the ``facelab`` CLI (one module each; see :mod:`lab.cli`)."""
