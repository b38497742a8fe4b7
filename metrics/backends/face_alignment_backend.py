"""Protocol landmark backend for AKD: face-alignment (S3FD detector + 4-stack 2D FAN), as pose-evaluation.

pose-evaluation (AliaksandrSiarohin/pose-evaluation ``extract.py --type face_pose``) builds
``face_alignment.FaceAlignment(LandmarksType._2D, flip_input=False)`` (face-alignment 1.0.0: S3FD, 2DFAN4)
and keeps ``get_landmarks(frame)[0]``: the **first** detected face's ``(68, 2)`` landmarks in pixel
coordinates of the uint8 RGB 256x256 frame.

Here the same networks run through face-alignment 1.5 (``LandmarksType.TWO_D``, ``flip_input=False``,
``face_detector='sfd'``, ``device='cpu'``, ``compile=False`` -- 1.5 otherwise spends minutes in
``torch.compile`` on CPU). Same weights (``2DFAN4-11f355bf06.pth.tar``, ``s3fd-619a316812.pth``) and the same
heatmap decoding (argmax with the quarter-pixel shift); landmarks are not bit-checked against 1.0.0.

Weights cannot be downloaded: both files must be in ``$TORCH_HOME/hub/checkpoints`` (face-alignment opens the
FAN file there itself, through ``load_file_from_url``, which would otherwise download it). They are checked
before face-alignment is called, and a missing one raises :class:`FileNotFoundError` naming it and the folder.
Both files are plain ``state_dict``\\ s (face-alignment 1.5 loads them with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from lab.core.weights import find_weight_file, hub_checkpoints_dir

__all__ = ["FaceAlignmentBackend", "FAN_FILE", "S3FD_FILE"]

FAN_FILE = "2DFAN4-11f355bf06.pth.tar"
S3FD_FILE = "s3fd-619a316812.pth"


class FaceAlignmentBackend:
    """face-alignment S3FD + 2DFAN4, first face, 68 landmarks (the pose-evaluation AKD convention).

    Args:
        device: torch device string for both networks (the caller's choice; ``"cpu"`` by default).

    Raises:
        FileNotFoundError: a weight file is missing from ``$TORCH_HOME/hub/checkpoints``.
    """

    name = "face-alignment"
    label = "face-alignment (S3FD + 2DFAN4, first face; pose-evaluation convention)"
    protocol = True

    def __init__(self, device: str = "cpu") -> None:
        folder = hub_checkpoints_dir()
        alt = "or use --backend dlib"
        self._fan_path = find_weight_file(FAN_FILE, "face-alignment weights", [folder], alternative=alt)
        self._s3fd_path = find_weight_file(S3FD_FILE, "face-alignment weights", [folder], alternative=alt)

        import face_alignment

        self.device = device
        self._fa = face_alignment.FaceAlignment(
            face_alignment.LandmarksType.TWO_D,
            flip_input=False,
            device=device,
            face_detector="sfd",
            face_detector_kwargs={"path_to_detector": str(self._s3fd_path)},
            compile=False,
        )

    def landmarks(self, frames: np.ndarray) -> list[np.ndarray | None]:
        """68 landmarks of the first detected face per frame.

        Args:
            frames: ``(N, H, W, 3)`` uint8 RGB.

        Returns:
            per frame a ``(68, 2)`` float64 array of ``(x, y)`` pixel coordinates, or ``None`` (no face).
        """
        out: list[np.ndarray | None] = []
        for f in frames:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="No faces were detected")
                res = self._fa.get_landmarks_from_image(np.ascontiguousarray(f))
            out.append(None if not res else np.asarray(res[0], np.float64)[:, :2])
        return out

    def provenance(self) -> dict[str, Any]:
        """Backend name, label, weight files with sha256, settings."""
        from metrics.provenance import backend_provenance

        return backend_provenance(
            self, [self._s3fd_path, self._fan_path],
            settings="LandmarksType.TWO_D, flip_input=False, face_detector=sfd, compile=False, first face",
            reference="AliaksandrSiarohin/pose-evaluation@1bc4cae extract.py face_pose (face-alignment 1.0.0)",
        )
