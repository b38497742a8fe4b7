"""The embedded demo: a real portrait and a driving clip derived from it, needing nothing outside the repo.

Source
    ``skimage.data.astronaut()`` (Eileen Collins, NASA portrait, public domain; 512×512 RGB, shipped with
    scikit-image) cropped to the face with :data:`ASTRONAUT_BOX` = ``(144, 41, 302, 199)``. That is the
    box :func:`datasets.crop.crop_array` computes on the image with its defaults (dlib HOG face box
    ``(179, 83, 267, 171)``, margin 0.4, shift_up 0.08); it is fixed here so the demo is identical on
    machines without dlib (a test checks that the crop still gives it). The 158 px square is resampled
    to 256×256 with cubic splines. :func:`demo_source` is frame 0 of the driving clip (zero motion).

Driving clip (:func:`demo_driving`, 25 fps, deterministic, any length)
    Each frame samples the astronaut image through an inverse warp defined in 256×256 crop pixels, at
    time ``τ = t / 25`` s:

    * head motion, a similarity transform about the face centre ``c = (128.3, 139.7)`` (the HOG box
      centre in crop pixels), with ``φ = 2πτ / 2 s`` (one cycle per 2 s, i.e. per 50 frames):
      roll ``θ = 8° · sin φ``; scale ``s = 1 + 0.05 · sin 2φ``; translation
      ``(dx, dy) = (8 px · sin φ, 4 px · sin 2φ)``. Forward: ``p' = c + s R(θ)(p − c) + (dx, dy)``;
    * "talking": the jaw drops by ``a(τ) · 6 px`` with ``a = sin²(3πτ)`` (3 openings per second). The
      vertical displacement is ``6 a · G(x) · H(y)``: ``G`` a Gaussian across the mouth (centre
      x = 128.3, σ = 30 px; the mouth corners are at x = 93 and 164), ``H`` a smoothstep from 0 at the
      upper inner lip (y = 166) to 1 at the lower inner lip (y = 176), 1 down to the chin (y = 222) and
      back to 0 at y = 250 (the neck stays); landmark positions from dlib's 68-point predictor. The lower
      lip and chin move down, the upper lip stays: the mouth opens. Inverted to first order (``y − d(y)``,
      exact enough as ``|d'| < 1``).

    The mouth is applied before the head motion (face coordinates). Every component is zero at
    ``t = 0``, so ``demo_driving()[0] == demo_source()`` exactly. The motion is smooth: between
    consecutive frames a pixel moves 1.5 px on average and at most 5.3 px (4.1 px on the face), within
    what FOMM-style models animate (roll ±8°, scale ±5 %, translation ≤ 8 px).

Examples from the shared set
    :func:`example_items` lists a few real images and clips of ``$FACELAB_DATA`` for the app's examples
    when that folder exists (internal research use only, see its README); nothing is copied.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.crop import crop_to_frame, frame_to_crop

__all__ = [
    "ASTRONAUT_BOX",
    "DEMO_SIZE",
    "DEMO_FPS",
    "demo_source",
    "demo_driving",
    "demo_upper_body",
    "demo_fps",
    "demo_motion",
    "ExampleItem",
    "example_items",
]

ASTRONAUT_BOX = (144, 41, 302, 199)  # x0, y0, x1, y1 in astronaut() pixels
DEMO_SIZE = 256
DEMO_FPS = 25.0

# motion parameters, crop pixels (see the module docstring)
_FACE_CENTER = (128.3, 139.7)
_ROLL_DEG = 8.0
_SCALE_AMP = 0.05
_SHIFT = (8.0, 4.0)
_HEAD_PERIOD_S = 2.0
_JAW_PX = 6.0
_SYLLABLES_PER_S = 3.0
_MOUTH_X, _MOUTH_SIGMA = 128.3, 30.0
_LIP_LINE = (166.0, 176.0)  # H ramps 0 -> 1
_CHIN = (222.0, 250.0)  # H ramps 1 -> 0 (chin at y = 222)
_HEAD_RADII = (105.0, 125.0)  # upper-body clip: ellipse around the face centre that moves with the head
_HEAD_FALLOFF = (0.85, 1.3)  # ... fully inside r < 0.85, static beyond r > 1.3 (neck, shoulders, background)


def demo_fps() -> float:
    """Frame rate of :func:`demo_driving` (25)."""
    return DEMO_FPS


def demo_motion(t: int) -> dict[str, float]:
    """Motion parameters of frame ``t``: roll (deg), scale, dx, dy (crop px), jaw opening ``a`` in [0, 1]."""
    tau = t / DEMO_FPS
    phi = 2 * np.pi * tau / _HEAD_PERIOD_S
    return {
        "roll_deg": _ROLL_DEG * float(np.sin(phi)),
        "scale": 1.0 + _SCALE_AMP * float(np.sin(2 * phi)),
        "dx": _SHIFT[0] * float(np.sin(phi)),
        "dy": _SHIFT[1] * float(np.sin(2 * phi)),
        "jaw": float(np.sin(np.pi * _SYLLABLES_PER_S * tau) ** 2),
    }


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    z = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return z * z * (3 - 2 * z)


@functools.lru_cache(maxsize=1)
def _astronaut_coeffs() -> np.ndarray:
    """Cubic-spline coefficients of the astronaut image, ``(3, 512, 512)`` float64 (computed once)."""
    from scipy import ndimage
    from skimage import data

    img = data.astronaut().astype(np.float64)
    return np.stack([ndimage.spline_filter(img[..., c], order=3) for c in range(3)])


def _inverse_motion(u: np.ndarray, v: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Where output point ``(u, v)`` (crop pixels) of frame ``t`` samples the astronaut, in crop pixels."""
    m = demo_motion(t)
    # inverse head motion: p = c + R(-θ)(p' - c - d) / s
    cx, cy = _FACE_CENTER
    th = np.deg2rad(m["roll_deg"])
    qx, qy = u - cx - m["dx"], v - cy - m["dy"]
    cos, sin = np.cos(th), np.sin(th)
    x = cx + (cos * qx + sin * qy) / m["scale"]
    y = cy + (-sin * qx + cos * qy) / m["scale"]
    # inverse jaw drop (first order): y_src = y - d(x, y)
    h = _smoothstep(y, *_LIP_LINE) * (1 - _smoothstep(y, *_CHIN))
    g = np.exp(-0.5 * ((x - _MOUTH_X) / _MOUTH_SIGMA) ** 2)
    return x, y - _JAW_PX * m["jaw"] * g * h


def _sample(src: np.ndarray) -> np.ndarray:
    """Sample the astronaut at ``(..., 2)`` (x, y) full-image pixels (cubic splines) → uint8 RGB."""
    from scipy import ndimage

    coords = [src[..., 1], src[..., 0]]
    coeffs = _astronaut_coeffs()
    out = np.stack([ndimage.map_coordinates(coeffs[c], coords, order=3, mode="nearest", prefilter=False)
                    for c in range(3)], -1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _render(t: int) -> np.ndarray:
    v, u = np.mgrid[0:DEMO_SIZE, 0:DEMO_SIZE].astype(np.float64)
    x, y = _inverse_motion(u, v, t)
    return _sample(crop_to_frame(np.stack([x, y], -1), ASTRONAUT_BOX, DEMO_SIZE))


def _head_weight(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """1 on the head, 0 on the body and background, smooth in between (crop pixels)."""
    cx, cy = _FACE_CENTER
    r = np.hypot((u - cx) / _HEAD_RADII[0], (v - cy) / _HEAD_RADII[1])
    return 1 - _smoothstep(r, *_HEAD_FALLOFF)


def _render_upper_body(t: int) -> np.ndarray:
    from skimage import data

    h, w = data.astronaut().shape[:2]
    y_full, x_full = np.mgrid[0:h, 0:w].astype(np.float64)
    p = np.stack([x_full, y_full], -1)
    q = frame_to_crop(p, ASTRONAUT_BOX, DEMO_SIZE)
    x, y = _inverse_motion(q[..., 0], q[..., 1], t)
    moved = crop_to_frame(np.stack([x, y], -1), ASTRONAUT_BOX, DEMO_SIZE)
    wgt = _head_weight(q[..., 0], q[..., 1])[..., None]
    return _sample(p + wgt * (moved - p))


@functools.lru_cache(maxsize=2)
def _driving(num_frames: int) -> np.ndarray:
    frames = np.stack([_render(t) for t in range(num_frames)])
    frames.flags.writeable = False
    return frames


def demo_source() -> np.ndarray:
    """The astronaut's face, ``(256, 256, 3)`` uint8 RGB (= frame 0 of :func:`demo_driving`)."""
    return _render(0)


def demo_driving(num_frames: int = 50) -> np.ndarray:
    """The synthetic talking-head clip derived from the source (module docstring), 25 fps.

    Args:
        num_frames: length; the motion is a function of time, so a longer clip continues it.

    Returns:
        ``(num_frames, 256, 256, 3)`` uint8 RGB.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return _driving(int(num_frames)).copy()  # cached: rendering takes ~50 ms a frame


@functools.lru_cache(maxsize=2)
def _upper_body(num_frames: int) -> np.ndarray:
    frames = np.stack([_render_upper_body(t) for t in range(num_frames)])
    frames.flags.writeable = False
    return frames


def demo_upper_body(num_frames: int = 50) -> np.ndarray:
    """The full 512×512 astronaut portrait with the head moving as in :func:`demo_driving`, 25 fps.

    The conference pipeline's demo input: an upper-body camera frame, not a face crop. The head (an
    ellipse of radii 105 × 125 crop px around the face centre) follows the driving clip's motion; the
    weight of that motion falls smoothly to 0 from 0.85 to 1.3 ellipse radii, so the neck bends, and the
    shoulders, the flag and the background stay still. Frame 0 is ``skimage.data.astronaut()`` (exactly,
    except within 2 px of the image border, where the spline's boundary rule differs). Cropping it with
    :data:`ASTRONAUT_BOX` gives :func:`demo_driving` inside the head ellipse.

    Args:
        num_frames: length.

    Returns:
        ``(num_frames, 512, 512, 3)`` uint8 RGB.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return _upper_body(int(num_frames)).copy()  # cached: ~0.2 s a frame


# ---------------------------------------------------------------------------------------------- examples


@dataclass(frozen=True)
class ExampleItem:
    """A real example from the shared set.

    Attributes:
        label: short human label.
        path: absolute path of the image or clip.
        kind: ``"image"`` or ``"clip"``.
        role: ``"source"`` (an image to animate) or ``"driving"`` (a clip).
    """

    label: str
    path: Path
    kind: str
    role: str


_EXAMPLES = (
    ("Obama (styletalk)", "images/FuxiVirtualHuman+styletalk/Obama_clip1.png", "source"),
    ("Obama talking (styletalk)", "clips/FuxiVirtualHuman+styletalk/Obama_clip1.mp4", "driving"),
    ("DPE source", "clips/OpenTalker+DPE/s.mp4", "driving"),
    ("DPE driving", "clips/OpenTalker+DPE/d.mp4", "driving"),
    ("MEAD W009 (dreamtalk)", "clips/ali-vilab+dreamtalk/W009_front_neutral_level1_001.mp4", "driving"),
    ("Einstein (avatarify)", "images/alievk+avatarify-python/einstein.jpg", "source"),
    ("Monroe (LIA)", "images/wyhsirius+LIA/monroe.png", "source"),
    ("Large pose (PC-AVS 00002)", "clips/Hangz-nju-cuhk+Talking-Face_PC-AVS/00002.mp4", "driving"),
    ("Uncropped 1080p (EAMM M030)", "clips/jixinya+EAMM/M030_sad_3_001.mp4", "driving"),
)


def example_items(root: str | Path | None = None) -> list[ExampleItem]:
    """A few real images and clips of the shared set for the app's examples (empty when it is absent).

    Args:
        root: the shared data folder (default :func:`datasets.shared.shared_data_root`).
    """
    from datasets.shared import shared_data_root

    base = Path(root) if root is not None else shared_data_root()
    if not (base / "MANIFEST.csv").is_file():
        return []
    out = []
    for label, rel, role in _EXAMPLES:
        p = base / rel
        if p.exists():
            out.append(ExampleItem(label, p, "image" if rel.startswith("images/") else "clip", role))
    return out
