"""X2Face (Wiles, Koepke, Zisserman, ECCV 2018), compatible with the official code and checkpoint.

Official code: oawiles/X2Face @ cecfbfaa4c820293cbbb1978c3ddb247f67f3af8 (MIT). Importing this package
registers the ``x2face`` animator.

>>> from baselines.x2face import UnwrappedFaceWeightedAverage
>>> model = UnwrappedFaceWeightedAverage(output_num_channels=2, input_num_channels=3, inner_nc=128)
>>> sum(p.numel() for p in model.parameters())
64771840
"""

from baselines.x2face.animator import X2FaceAnimator, load_official_state_dict
from baselines.x2face.model import UnwrappedFaceWeightedAverage, identity_grid
from baselines.x2face.networks import Pix2PixNet, UNetBlock, UNetGenerator, driving_network, embedding_network
from baselines.x2face.objective import X2FaceGeneratorFullModel, x2face_objective

__all__ = [
    "UnwrappedFaceWeightedAverage",
    "X2FaceAnimator",
    "X2FaceGeneratorFullModel",
    "Pix2PixNet",
    "UNetBlock",
    "UNetGenerator",
    "driving_network",
    "embedding_network",
    "identity_grid",
    "load_official_state_dict",
    "x2face_objective",
]
