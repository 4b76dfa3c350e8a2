"""``python -m facecourse COMMAND ...`` (and ``torchrun --nproc_per_node N -m facecourse train ...``): the
``facecourse`` command line (:mod:`facecourse.cli`)."""

from facecourse.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
