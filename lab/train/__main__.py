"""``python -m lab.train`` / ``torchrun --nproc_per_node K -m lab.train``: same arguments as ``facelab train``."""

import sys

from lab.cli.train import main_train

sys.exit(main_train())
