"""Full-resolution composition: the seam each method leaves, on the real astronaut portrait."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from datasets.crop import crop_frame
from datasets.demo import ASTRONAUT_BOX
from lab.codec.composition import Compositor, blend_mask, compose, compose_frames, seam_score


@pytest.fixture(scope="module")
def full():
    return data.astronaut()


def _brighter(crop: np.ndarray, by: int) -> np.ndarray:
    return np.clip(crop.astype(int) + by, 0, 255).astype(np.uint8)


def test_blend_mask_shape_edges_and_monotone():
    m = blend_mask(100, 80, feather=0.2)
    assert m.shape == (80, 100) and m.dtype == np.float32
    assert np.all(m[0] == 0) and np.all(m[-1] == 0) and np.all(m[:, 0] == 0) and np.all(m[:, -1] == 0)
    assert m[40, 50] == pytest.approx(1.0)
    row = m[40, :50]
    assert np.all(np.diff(row) >= 0)  # rises from the edge to the centre
    assert np.allclose(m, m[::-1, ::-1])  # symmetric
    with pytest.raises(ValueError):
        blend_mask(10, 10, feather=0.0)


@pytest.mark.parametrize("method", ["naive", "feather", "poisson"])
def test_unchanged_crop_gives_the_frame_back(full, method):
    crop = crop_frame(full, ASTRONAUT_BOX, 256)  # resampled down and up again: close, not exact
    out = compose(full, crop, ASTRONAUT_BOX, method=method)
    x0, y0, x1, y1 = ASTRONAUT_BOX
    assert out.shape == full.shape
    assert np.array_equal(out[:y0], full[:y0]) and np.array_equal(out[y1:], full[y1:])
    assert np.abs(out.astype(int) - full).mean() < 1.0


def test_feather_and_poisson_remove_the_seam_naive_leaves(full):
    crop = _brighter(crop_frame(full, ASTRONAUT_BOX, 256), 40)  # a head rendered 40 levels too bright
    natural = seam_score(full, ASTRONAUT_BOX)
    naive = seam_score(compose(full, crop, ASTRONAUT_BOX, "naive"), ASTRONAUT_BOX)
    feather = compose(full, crop, ASTRONAUT_BOX, "feather")
    poisson = seam_score(compose(full, crop, ASTRONAUT_BOX, "poisson"), ASTRONAUT_BOX)
    assert naive > natural + 25  # the step of the offset shows at the box edge
    # feather keeps the box's border pixels from the frame: exactly the frame's own seam
    assert seam_score(feather, ASTRONAUT_BOX) == pytest.approx(natural)
    assert poisson < natural + 0.25 * (naive - natural)
    # the head itself is the animated one (brighter), not the reference
    x0, y0, x1, y1 = ASTRONAUT_BOX
    centre = (slice(y0 + 50, y1 - 50), slice(x0 + 50, x1 - 50))
    assert feather[centre].astype(int).mean() > full[centre].astype(int).mean() + 30


def test_compose_frames_and_errors(full):
    crops = np.stack([crop_frame(full, ASTRONAUT_BOX, 64)] * 3)
    out = compose_frames(full, crops, ASTRONAUT_BOX)
    assert out.shape == (3, *full.shape)
    with pytest.raises(ValueError, match="unknown composition"):
        compose(full, crops[0], ASTRONAUT_BOX, method="blend")
    with pytest.raises(ValueError, match="not inside"):
        compose(full, crops[0], (400, 400, 600, 600))
    with pytest.raises(ValueError, match="whole frame"):
        seam_score(full, (0, 0, 512, 512))


@pytest.mark.parametrize("method", ["feather", "poisson", "naive"])
def test_compositor_equals_compose_bit_for_bit(full, method):
    """A call's compositor (mask and the frame's share computed once, buffer reused) gives compose's frames."""
    rng = np.random.default_rng(0)
    comp = Compositor(full, ASTRONAUT_BOX, method)
    for _ in range(3):  # the reused buffer carries nothing from one frame to the next
        crop = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        assert np.array_equal(comp(crop), compose(full, crop, ASTRONAUT_BOX, method))
    kept = full.copy()
    comp(crop)[:] = 0  # frames are new arrays: changing one changes neither the compositor nor the frame given
    assert np.array_equal(comp(crop), compose(kept, crop, ASTRONAUT_BOX, method)) and np.array_equal(full, kept)
    with pytest.raises(ValueError, match="unknown composition"):
        Compositor(full, ASTRONAUT_BOX, "blur")
    with pytest.raises(ValueError, match="not inside"):
        Compositor(full, (0, 0, 9999, 10), method)


def test_head_compositor_resizes_when_the_box_is_the_whole_frame(full):
    from lab.conference.server import compose_head, head_compositor

    crop = crop_frame(full, ASTRONAUT_BOX, 256)
    h, w = full.shape[:2]
    for box in ((0, 0, w, h), tuple(ASTRONAUT_BOX)):
        assert np.array_equal(head_compositor(full, box, "feather", 0.12)(crop),
                              compose_head(full, crop, box, "feather", 0.12))
