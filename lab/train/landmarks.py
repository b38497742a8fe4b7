"""Landmark targets for the keypoint encoder: 10 keypoints anchored to groups of dlib's 68 facial landmarks.

Why (measured, ``lab/models/ultralight/README.md``): trained on CPU with FOMM's unsupervised objective only,
ultralight's dense motion learned to route ~98.5 % of its mask to the identity motion within 1,000 steps
(mean flow 0.06 px): its keypoints, still meaningless, made every keypoint-driven warp worse than the
static source, so the decoder settled on ``static`` and the keypoints got no gradient from the image any
more. Anchoring each keypoint to a facial landmark group (an auxiliary L1 loss on the encoder's keypoint
values, ``loss_weights.keypoint_landmarks``) gives the keypoints a meaning from the first steps, so the
keypoint motions the dense motion mixes are the face's own motion. The Jacobians stay unsupervised
(equivariance), and the weight may be lowered or dropped once the keypoints have converged.

Targets are computed once per frame archive with the offline dlib backend (68 points, the detection run on
every ``detect_every``-th frame and its box reused in between: one face box per cropped clip moves little)
and cached beside it as ``<archive>.landmarks.npy`` (``(N, 68, 2)`` float32 pixel coordinates at the
archive's size, NaN where no face was found).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

__all__ = ["KEYPOINT_GROUPS", "MIRROR", "landmark_cache_path", "compute_landmarks", "load_or_compute_landmarks",
           "keypoint_targets"]

log = logging.getLogger(__name__)

#: the iBUG 68-point indices averaged into each of the 10 keypoint targets
KEYPOINT_GROUPS: tuple[tuple[int, ...], ...] = (
    tuple(range(17, 22)),  # 0 brow (image left)
    tuple(range(22, 27)),  # 1 brow (image right)
    tuple(range(36, 42)),  # 2 eye (image left)
    tuple(range(42, 48)),  # 3 eye (image right)
    (30, 31, 32, 33, 34, 35),  # 4 nose tip and base
    (48,),  # 5 mouth corner (image left)
    (54,),  # 6 mouth corner (image right)
    (50, 51, 52, 61, 62, 63),  # 7 upper lip
    (56, 57, 58, 65, 66, 67),  # 8 lower lip
    (7, 8, 9),  # 9 chin
)
#: target index of each keypoint after a horizontal flip of the frame (left and right groups swap)
MIRROR: tuple[int, ...] = (1, 0, 3, 2, 4, 6, 5, 7, 8, 9)


def landmark_cache_path(archive: str | os.PathLike) -> Path:
    return Path(str(archive) + ".landmarks.npy")


def compute_landmarks(frames: np.ndarray, offsets: np.ndarray, detect_every: int = 10) -> np.ndarray:
    """``(N, 68, 2)`` float32 dlib landmarks (pixels) of every frame; NaN where no face was found.

    The HOG detection runs on every ``detect_every``-th frame of each video (and wherever the last box found
    nothing); the 68-point predictor runs on every frame with the nearest earlier box.
    """
    import dlib
    import face_recognition_models as frm

    from datasets.face_detect import detect_faces, main_face

    predictor = dlib.shape_predictor(frm.pose_predictor_model_location())
    out = np.full((len(frames), 68, 2), np.nan, np.float32)
    for v in range(len(offsets) - 1):
        box = None
        for i in range(int(offsets[v]), int(offsets[v + 1])):
            f = np.ascontiguousarray(frames[i])
            if box is None or (i - offsets[v]) % detect_every == 0:
                found = main_face(detect_faces(f, upsample=1, detector="hog"))
                box = found if found is not None else box
            if box is None:
                continue
            rect = dlib.rectangle(round(box.x0), round(box.y0), round(box.x1) - 1, round(box.y1) - 1)
            shape = predictor(f, rect)
            out[i] = [[p.x, p.y] for p in shape.parts()]
    return out


def load_or_compute_landmarks(archive: str | os.PathLike, detect_every: int = 10) -> np.ndarray:
    """The cached landmarks of a ``.npz`` frame archive (computed and written on first use)."""
    cache = landmark_cache_path(archive)
    with np.load(archive, allow_pickle=False) as z:
        n, size = len(z["frames"]), z["frames"].shape[1:3]
        if cache.is_file():
            lm = np.load(cache, allow_pickle=False)
            if lm.shape == (n, 68, 2):
                return lm
            log.warning("%s does not match %s (%s vs %d frames): recomputing", cache, archive, lm.shape, n)
        log.info("computing dlib landmarks of %d frames of %s (once; cached in %s)", n, archive, cache)
        lm = compute_landmarks(z["frames"], z["offsets"], detect_every=detect_every)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, lm)
    os.replace(tmp, cache)
    found = np.isfinite(lm[:, 0, 0]).mean()
    log.info("landmarks found in %.1f %% of the frames of %s (%dx%d)", 100 * found, archive, size[1], size[0])
    return lm


def keypoint_targets(landmarks: np.ndarray, size: tuple[int, int], flip: bool = False) -> np.ndarray:
    """``(..., 68, 2)`` pixel landmarks of frames of ``size`` (H, W) → ``(..., 10, 2)`` targets in the keypoints'
    [-1, 1] convention (corners at ±1, :func:`baselines.fomm.blocks.make_coordinate_grid`); ``flip``: the frame
    was mirrored horizontally (x negated, left/right groups swapped)."""
    h, w = size
    groups = np.stack([landmarks[..., list(g), :].mean(axis=-2) for g in KEYPOINT_GROUPS], axis=-2)
    norm = np.empty_like(groups)
    norm[..., 0] = 2 * groups[..., 0] / (w - 1) - 1
    norm[..., 1] = 2 * groups[..., 1] / (h - 1) - 1
    if flip:
        norm[..., 0] = -norm[..., 0]
        norm = norm[..., list(MIRROR), :]
    return norm.astype(np.float32)


def pretrain_keypoints(kp_detector, dataset, steps: int, lr: float = 2e-3, batch_size: int = 16,
                       seed: int = 0, log_every: int = 100, between_steps=None) -> list[float]:
    """Fit the keypoint encoder alone to the landmark targets (L1, Adam with FOMM's betas) before the joint run.

    Measured (test-split frames at 128², batch 16, one thread): the encoder alone reaches L1 0.087 in 300 steps
    at lr 2e-4 and 0.029 at 2e-3 (about 0.2 s a step), while inside the joint objective at batch 4 its
    landmark L1 stayed at 0.37 over 200 steps: there the perceptual gradient reaching the keypoints through
    the warp dominates Adam's per-parameter scale. ``between_steps`` (no arguments) is called before each step
    (the run's pause switch). Returns the loss of every step.
    """
    import torch

    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(kp_detector.parameters(), lr=lr, betas=(0.5, 0.999))
    kp_detector.train()
    hist: list[float] = []
    for step in range(int(steps)):
        if between_steps is not None:
            between_steps()
        items = [dataset[int(i)] for i in rng.integers(0, len(dataset), batch_size)]
        x = torch.stack([it[k] for it in items for k in ("source", "driving")])
        y = torch.stack([it[f"kp_target_{k}"] for it in items for k in ("source", "driving")])
        ok = torch.isfinite(y).all(dim=-1).all(dim=-1)
        if not bool(ok.any()):
            continue
        loss = (kp_detector(x[ok])["value"] - y[ok]).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            log.info("keypoint pretraining step %d: landmark L1 %.4f", step + 1, np.mean(hist[-log_every:]))
    return hist
