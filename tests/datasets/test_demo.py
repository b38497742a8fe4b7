"""datasets.demo: the embedded astronaut source and its synthetic driving clip."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from datasets.demo import (
    ASTRONAUT_BOX,
    demo_driving,
    demo_fps,
    demo_motion,
    demo_source,
    demo_upper_body,
    example_items,
)


@pytest.fixture(scope="module")
def driving() -> np.ndarray:
    return demo_driving()


def test_shapes_and_frame_zero(driving):
    src = demo_source()
    assert src.shape == (256, 256, 3) and src.dtype == np.uint8
    assert driving.shape == (50, 256, 256, 3) and driving.dtype == np.uint8
    assert np.array_equal(driving[0], src)
    assert demo_fps() == 25.0
    assert all(v == pytest.approx(1.0 if k == "scale" else 0.0) for k, v in demo_motion(0).items())


def test_deterministic_smooth_and_moving(driving):
    again = demo_driving(12)
    assert np.array_equal(again, driving[:12])
    again[:] = 0  # callers get a copy, not the cache
    assert demo_driving(12).any()
    diffs = [np.abs(driving[i + 1].astype(int) - driving[i]).mean() for i in range(49)]
    assert min(diffs) > 0.1 and max(diffs) < 15  # every frame moves, none jumps
    assert np.abs(driving[12].astype(int) - driving[0]).mean() > 10  # the head has turned
    roll = [demo_motion(t)["roll_deg"] for t in range(50)]
    assert max(roll) == pytest.approx(8, abs=0.1) and min(roll) == pytest.approx(-8, abs=0.1)
    with pytest.raises(ValueError):
        demo_driving(0)


@pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib (the face extra) is absent")
def test_fixed_box_is_what_the_crop_computes():
    from skimage import data

    from datasets.crop import crop_array

    assert crop_array(data.astronaut()).box == ASTRONAUT_BOX


def test_upper_body_moves_the_head_only():
    """Full-frame demo: frame 0 is the portrait, the head follows demo_driving, the body stays still."""
    from skimage import data

    from datasets.crop import crop_frame

    full = demo_upper_body(8)
    assert full.shape == (8, 512, 512, 3) and full.dtype == np.uint8
    inner = (slice(2, -2), slice(2, -2))
    assert np.array_equal(full[0][inner], data.astronaut()[inner])
    # inside the head ellipse the crop of frame t is the driving clip's frame t (same motion field)
    head = crop_frame(full[6], ASTRONAUT_BOX, 256)[70:200, 70:190].astype(int)
    drv = demo_driving(8)[:, 70:200, 70:190]
    err_same, err_still = np.abs(head - drv[6]).mean(), np.abs(head - drv[0]).mean()
    assert err_same < 2.0 and err_still > 4 * err_same
    # shoulders and the lower half of the frame do not move
    assert np.array_equal(full[6][330:], full[0][330:])


def test_no_examples_without_the_shared_set(tmp_path):
    assert example_items(tmp_path) == []


@pytest.mark.data
def test_example_items(data_root):
    items = example_items(data_root)
    assert len(items) >= 6 and all(it.path.exists() for it in items)
    assert {it.role for it in items} == {"source", "driving"}
