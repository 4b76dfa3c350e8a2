"""The ``facecourse`` command line: ``doctor | pretrain-encoder | train | ablate | reconstruct | fit | now-eval``.

Each sub-command lives beside the code it drives and registers itself through an
``add_arguments(parser)`` / ``run(args) -> int`` pair; this module only dispatches, importing a
sub-command's module when that sub-command is used (so ``facecourse doctor`` starts fast).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module holding add_arguments/run, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("facecourse.doctor", "print versions, device, which data is present and what to do next"),
    "pretrain-encoder": ("facecourse.train.encoder", "pre-train the Chebyshev mesh autoencoder (3D-ID encoder)"),
    "now-eval": ("facecourse.now.cli", "evaluate predictions with the NoW protocol"),
    "train": ("facecourse.train.regressor", "train the image-to-FLAME regressor (configs/face_regressor/*.yaml)"),
    "ablate": ("facecourse.train.ablation", "the 3D-ID ablation: 2D / + vertices / + 3D-ID variants x seeds, NoW table"),
    "reconstruct": ("facecourse.reconstruct.regress", "photos -> meshes with a trained regressor (.obj, NoW-7 .npy, overlay)"),
    "fit": ("facecourse.reconstruct.cli", "fit FLAME to photos by analysis-by-synthesis (.obj, NoW-7 .npy, overlay)"),
}


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, object]:
    """Build the parser; only the chosen sub-command's module is imported."""
    parser = argparse.ArgumentParser(prog="facecourse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``facecourse`` console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, module = build_parser(argv)
    args = parser.parse_args(argv)
    if module is None:
        parser.print_help()
        return 2
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
