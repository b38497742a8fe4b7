"""Head pose from 68 landmarks: sign conventions, invariances, the shared set's pose classes on real clips, and
the error against the MediaPipe reference (lab/evaluation/pose_reference.py) on real frames."""

from __future__ import annotations

import csv
import importlib.util
import os

import numpy as np
import pytest

from lab.codec.pose import (
    LARGE_YAW_DEG,
    MEAN_FACE_3D,
    MIRROR_68,
    PNP_POINTS,
    HeadPose,
    head_pose,
    landmark_yaw_roll,
    mirror_landmarks,
    pose_of_frames,
    rotation_matrix,
)
from lab.codec.synthetic_face import synthetic_landmarks
from lab.evaluation.pose_reference import compare, matrix_to_pose, reference_available

needs_dlib = pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="needs dlib (the face extra)")
SIZE = (256, 256)


def _eye_mid(lm: np.ndarray) -> np.ndarray:
    return (lm[39] + lm[42]) / 2


# ---------------------------------------------------------------------------------------------- synthetic


def test_mirror_table_is_an_involution_that_fixes_the_midline():
    assert sorted(MIRROR_68) == list(range(68))
    assert all(MIRROR_68[MIRROR_68[i]] == i for i in range(68))
    assert all(MIRROR_68[i] == i for i in (8, 27, 28, 29, 30, 33, 51, 57, 62, 66))
    # the 3-D model is mirror symmetric under the same table (X -> -X)
    for i in PNP_POINTS:
        x, y, z = MEAN_FACE_3D[i]
        assert MEAN_FACE_3D[MIRROR_68[i]] == pytest.approx((-x, y, z))


def test_synthetic_poses_show_the_documented_signs():
    """The generic face drawn at a pose moves the way the module docstring says each sign means."""
    front = synthetic_landmarks()
    right = synthetic_landmarks(yaw=30)
    assert right[30, 0] - _eye_mid(right)[0] > 10  # yaw > 0: the nose tip moves to the image right
    up, down = synthetic_landmarks(pitch=20), synthetic_landmarks(pitch=-20)
    nose_drop = [lm[30, 1] - _eye_mid(lm)[1] for lm in (up, front, down)]
    assert nose_drop[0] < nose_drop[1] < nose_drop[2]  # pitch > 0: the face tilts up, the nose tip rises
    cw = synthetic_landmarks(roll=20)
    assert cw[42:48, 1].mean() > cw[36:42, 1].mean() + 10  # roll > 0: clockwise, the image-right eye lower


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 0, 0), (-40, 0, 0), (0, 20, 0), (0, -25, 0), (0, 0, 30),
                                    (20, -10, 15), (-45, 10, -30)])
def test_pnp_recovers_the_pose_of_a_projected_model(angles):
    lm = synthetic_landmarks(*angles, image_size=SIZE)
    p = head_pose(lm, SIZE)
    assert (p.yaw, p.pitch, p.roll) == pytest.approx(angles, abs=0.05)
    assert p.error < 0.01


def test_landmark_estimate_follows_yaw_and_reads_roll_from_the_eye_line():
    yaws = [landmark_yaw_roll(synthetic_landmarks(yaw=y)).yaw for y in (-40, -20, 0, 20, 40)]
    assert np.all(np.diff(yaws) > 5) and abs(yaws[2]) < 0.5  # monotonic, zero when frontal
    assert np.sign(yaws[0]) == -1 and np.sign(yaws[-1]) == 1
    lm = synthetic_landmarks(roll=25)
    a, b = lm[36:42].mean(0), lm[42:48].mean(0)
    assert landmark_yaw_roll(lm).roll == pytest.approx(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])))
    assert np.isnan(landmark_yaw_roll(lm).pitch)


def test_rotating_the_image_about_the_principal_point_adds_to_roll_only():
    """An image rotation about the principal point is a camera roll: PnP's roll shifts by exactly that angle."""
    lm = synthetic_landmarks(yaw=25, pitch=-8, roll=5)
    lm[48:68, 1] += 2.0  # perturb the mouth so the fit is not exact (as with real landmarks)
    base = head_pose(lm, SIZE)
    c = np.array([(SIZE[1] - 1) / 2, (SIZE[0] - 1) / 2])
    for theta in (-30.0, 12.0, 40.0):
        t = np.radians(theta)
        r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        rot = (lm - c) @ r.T + c  # clockwise on screen for theta > 0 (y down)
        p = head_pose(rot, SIZE)
        assert p.roll - base.roll == pytest.approx(theta, abs=0.05)
        assert (p.yaw, p.pitch) == pytest.approx((base.yaw, base.pitch), abs=0.05)
        assert p.error == pytest.approx(base.error, abs=1e-3)
        assert landmark_yaw_roll(rot).roll - landmark_yaw_roll(lm).roll == pytest.approx(theta, abs=1e-6)
        assert landmark_yaw_roll(rot).yaw == pytest.approx(landmark_yaw_roll(lm).yaw, abs=1e-6)


def test_a_mirrored_face_negates_yaw_and_roll_and_keeps_pitch():
    lm = synthetic_landmarks(yaw=28, pitch=12, roll=-9)
    lm[17:27, 1] -= 3.0  # raised brows: not part of the model, and not symmetric to the fit
    p, m = head_pose(lm, SIZE), head_pose(mirror_landmarks(lm, SIZE[1]), SIZE)
    assert (m.yaw, m.pitch, m.roll) == pytest.approx((-p.yaw, p.pitch, -p.roll), abs=1e-4)
    a, b = landmark_yaw_roll(lm), landmark_yaw_roll(mirror_landmarks(lm, SIZE[1]))
    assert (b.yaw, b.roll) == pytest.approx((-a.yaw, -a.roll), abs=1e-9)


def test_bad_landmarks_are_refused():
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        head_pose(np.zeros((5, 2)), SIZE)
    bad = synthetic_landmarks()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        landmark_yaw_roll(bad)


def test_pose_of_frames_with_a_custom_backend_keeps_missing_faces():
    class Fake:
        def landmarks(self, frames):
            return [synthetic_landmarks(yaw=20, image_size=frames.shape[1:3]), None][: len(frames)]

    frames = np.zeros((2, 256, 256, 3), np.uint8)
    out = pose_of_frames(frames, backend=Fake())
    assert isinstance(out[0], HeadPose) and out[0].yaw == pytest.approx(20, abs=0.05)
    assert out[1] is None
    with pytest.raises(TypeError):
        pose_of_frames(frames, backend=object())


# ---------------------------------------------------------------------------------------------- real faces


@needs_dlib
def test_the_demo_portrait_is_frontal_and_its_synthetic_roll_is_read_back():
    """The demo clip rolls the astronaut by ``8° sin(2πt/2s)`` (datasets/demo.py): both estimators read that
    roll as the change from frame 0, within 1.5° (landmark noise), and the face stays frontal."""
    from datasets.demo import demo_driving, demo_motion

    frames = demo_driving(13)[[0, 6, 12]]
    lms = pose_of_frames(frames)
    assert all(p is not None for p in lms)
    assert abs(lms[0].yaw) < 10 and abs(lms[0].pitch) < 20
    from metrics.backends import get_landmark_backend

    raw = get_landmark_backend("dlib").landmarks(frames)
    for k, t in ((1, 6), (2, 12)):
        expected = demo_motion(t)["roll_deg"]
        assert lms[k].roll - lms[0].roll == pytest.approx(expected, abs=1.5)
        assert landmark_yaw_roll(raw[k]).roll - landmark_yaw_roll(raw[0]).roll == pytest.approx(expected, abs=1.5)


LARGE = (  # pose_class large, 224/256 px; README notes: 00010 "held at about -40°", 00015 "held 3/4 view",
    "clips/Hangz-nju-cuhk+Talking-Face_PC-AVS/00010.mp4",  # nice_clip1 "yaw -17..-56", furious "30-44"
    "clips/Hangz-nju-cuhk+Talking-Face_PC-AVS/00015.mp4",
    "clips/FuxiVirtualHuman+styletalk/nice_clip1.mp4",
    "clips/FuxiVirtualHuman+styletalk/furious_talk1_clip2.mp4",
)
FRONTAL = (
    "clips/ali-vilab+dreamtalk/W009_front_neutral_level1_001.mp4",
    "clips/ali-vilab+dreamtalk/M030_front_neutral_level1_001.mp4",
    "clips/Hangz-nju-cuhk+Talking-Face_PC-AVS/681100216.mp4",
    "clips/FuxiVirtualHuman+styletalk/Obama_clip1.mp4",
    "clips/FuxiVirtualHuman+styletalk/KristiNoem.mp4",
)


def _clip_poses(root, rel):
    from datasets.video import open_media
    from metrics.backends import get_landmark_backend

    frames = np.stack(list(open_media(root / rel).iter_frames(0, 300, 10)))[:30]
    lms = [lm for lm in get_landmark_backend("dlib").landmarks(frames) if lm is not None]
    assert len(lms) >= 5, f"dlib found a face in only {len(lms)} frames of {rel}"
    pnp = np.array([head_pose(lm, frames.shape[1:3]).yaw for lm in lms])
    lmk = np.array([landmark_yaw_roll(lm).yaw for lm in lms])
    return pnp, lmk


@needs_dlib
@pytest.mark.data
def test_yaw_separates_the_shared_sets_large_and_frontal_clips(data_root):
    """Every 10th frame (<= 30) of 4 ``large`` and 5 ``frontal`` clips, 224/256 px.

    The set's classes come from MediaPipe: ``large`` = |yaw| p95 >= 35°, ``frontal`` = below the 20° of
    ``moderate``. dlib's landmarks under-read turned faces (0.6-0.8x here, lab/codec/pose.py), so the expectations
    are the classes' bounds scaled by that factor with room to spare: each large clip's p95 |yaw| above 20°,
    each frontal clip's below 15°, and the two groups at least 10° apart. Measured p95 (PnP / landmark-only):
    large 28.2-35.2° / 30.5-34.9°, frontal 2.0-4.4° / 1.9-5.3°; 50 % of the large clips' frames reach
    :data:`~lab.codec.pose.LARGE_YAW_DEG` (asserted > 20 %), no frontal frame does.
    The landmark-only estimate must separate them the same way and agree with PnP frame by frame
    (correlation > 0.9), and the sign must match the README's notes (nice_clip1 turned negative,
    furious_talk1_clip2 positive).
    """
    rows = {r["file"]: r for r in csv.DictReader(open(data_root / "MANIFEST.csv", newline=""))}
    assert all(rows[f]["pose_class"] == "large" for f in LARGE)
    assert all(rows[f]["pose_class"] == "frontal" for f in FRONTAL)
    p95 = {}
    all_pnp, all_lmk = [], []
    for rel in LARGE + FRONTAL:
        pnp, lmk = _clip_poses(data_root, rel)
        p95[rel] = (np.percentile(np.abs(pnp), 95), np.percentile(np.abs(lmk), 95), np.median(pnp))
        all_pnp.append(pnp)
        all_lmk.append(lmk)
    for k in (0, 1):  # PnP, then landmark-only
        large = [p95[f][k] for f in LARGE]
        frontal = [p95[f][k] for f in FRONTAL]
        assert min(large) > 20, (k, large)
        assert max(frontal) < 15, (k, frontal)
        assert min(large) - max(frontal) > 10, (k, large, frontal)
    assert p95[LARGE[2]][2] < -10 and p95[LARGE[3]][2] > 10
    assert np.corrcoef(np.concatenate(all_pnp), np.concatenate(all_lmk))[0, 1] > 0.9
    # the large-pose threshold sits between the groups: most large-clip frames reach it, no frontal frame does
    assert max(np.abs(p).max() for p in all_pnp[len(LARGE):]) < LARGE_YAW_DEG
    assert np.mean(np.concatenate([np.abs(p) >= LARGE_YAW_DEG for p in all_pnp[: len(LARGE)]])) > 0.2


# ---------------------------------------------------------------------------------------------- the reference


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 0, 0), (0, -20, 0), (0, 0, 25), (-35, 12, -18)])
def test_a_mediapipe_matrix_reads_in_this_modules_conventions(angles):
    """MediaPipe's matrix is in OpenGL axes (y up, z towards the viewer, for camera and face alike):
    ``C · R · C`` with ``C = diag(1, -1, -1)`` is the rotation :func:`rotation_matrix` writes for the same pose."""
    c = np.diag([1.0, -1.0, -1.0])
    m = np.eye(4)
    m[:3, :3] = c @ rotation_matrix(*angles) @ c
    m[:3, 3] = (0.5, -1.0, -40.0)  # in front of an OpenGL camera: z < 0
    p = matrix_to_pose(m)
    assert (p.yaw, p.pitch, p.roll) == pytest.approx(angles, abs=1e-9)
    with pytest.raises(ValueError, match="4x4"):
        matrix_to_pose(np.eye(2))


@pytest.fixture(scope="module")
def reference():
    """An open :class:`lab.evaluation.pose_reference.MediaPipePose`; skips when mediapipe
    (requirements-nodeps.txt, installed
    by ``make setup``) is absent, and fails instead under ``CI=true``, where setup always installs it."""
    ok, why = reference_available()
    if not ok:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the pose reference is not installed: {why} -- required under CI=true")
        pytest.skip(why)
    from lab.evaluation.pose_reference import MediaPipePose

    with MediaPipePose() as ref:
        yield ref


# 224/256 px frontal clips of several sources, with the faces that looked down (issue 12: spata_clip1,
# sad_emotion_clip1, the PC-AVS VoxCeleb crops 681600002 and 620900105) and the clips with the largest
# remaining per-clip pitch error (IP_LAP 129, trump_clip1, W011 surprised; 5-6° there: a generic face).
REFERENCE_FRONTAL = (
    "clips/FuxiVirtualHuman+styletalk/spata_clip1.mp4",
    "clips/FuxiVirtualHuman+styletalk/sad_emotion_clip1.mp4",
    "clips/Hangz-nju-cuhk+Talking-Face_PC-AVS/681600002/",
    "clips/Hangz-nju-cuhk+Talking-Face_PC-AVS/620900105.mp4",
    "clips/ali-vilab+dreamtalk/W011_front_surprised_level3_001.mp4",
    "clips/jixinya+EAMM/fear.mp4",
    "clips/wyhsirius+LIA/driving2.mp4",
    "clips/harlanhong+CVPR2022-DaGAN/driving.mp4",
    "clips/FuxiVirtualHuman+styletalk/KristiNoem.mp4",
    "clips/Weizhi-Zhong+IP_LAP/129.mp4",
    "clips/FuxiVirtualHuman+styletalk/trump_clip1.mp4",
    "clips/tanshuai0219+EDTalk/mouth_source.mp4",
)


@needs_dlib
@pytest.mark.data
@pytest.mark.slow
def test_pose_agrees_with_the_mediapipe_reference_on_frontal_clips(data_root, reference):
    """Every 10th frame (<= 12) of 12 frontal clips: mean absolute error per angle <= 5° against MediaPipe's
    facial transformation matrix, and no pitch bias left (mean signed error within ±4°).

    Measured (137 frames): MAE yaw 1.64°, pitch 3.32°, roll 0.88°, pitch bias -2.7°. The earlier model (nose tip
    10 mm too low, tilted 13°) read pitch 6.40° MAE, bias -6.3°, up to 16.7° off, and so failed this test.
    All 1452 sampled frames (every 10th, <= 30) of the set's 74 frontal clips: 2.03° / 3.05° / 0.65° (before:
    2.19 / 5.42 / 0.84)."""
    rows = {r["file"]: r for r in csv.DictReader(open(data_root / "MANIFEST.csv", newline=""))}
    assert all(rows[f]["pose_class"] == "frontal" for f in REFERENCE_FRONTAL)
    cmp = compare(REFERENCE_FRONTAL, data_root, step=10, max_frames=12, reference=reference)
    assert len(cmp.rows) >= 120, f"only {len(cmp.rows)} frames with a face on both sides; missing {cmp.missing}"
    mae, bias = cmp.mae(), cmp.bias()
    assert max(mae.values()) <= 5.0, cmp.table()
    assert abs(bias["pitch"]) <= 4.0, cmp.table()
    assert np.abs(cmp.errors()).max() < 15.0, cmp.table()  # no frame far off (before: 16.7° of pitch)


@needs_dlib
@pytest.mark.data
def test_the_reference_reads_the_large_clips_turned_the_documented_way(data_root, reference):
    """The reference's own signs: nice_clip1 is turned to the image left (README: yaw -17..-56°),
    furious_talk1_clip2 to the right (30-44°); and ours agrees within 8° on average there."""
    cmp = compare(LARGE[2:], data_root, step=10, max_frames=10, reference=reference)
    for clip, sign in zip(LARGE[2:], (-1, 1)):
        ref_yaw = np.array([r["ref_yaw"] for r in cmp.rows if r["clip"] == clip])
        assert len(ref_yaw) >= 8 and np.median(sign * ref_yaw) > 15, (clip, ref_yaw)
        assert cmp.mae(clip)["yaw"] < 8, cmp.table()


@needs_dlib
@pytest.mark.data
@pytest.mark.slow
def test_no_frame_of_a_frontal_clip_reads_as_a_large_pose(data_root):
    """Every 10th of the first 100 frames of every 224/256 px ``frontal`` clip of the set (issue 12: a head-down
    frontal clip read pitch -26..-34° and was flagged): no frame reaches a large-pose threshold
    (:data:`~lab.codec.pose.LARGE_YAW_DEG` ...), and pitch stays within ±27° (measured: -23..+18°; before: -30..+13°).
    Measured beyond the test, on every 2nd of the first 300 frames of the 68 frontal clips up to 1024 px: one frame
    flagged, by yaw (sad_emotion_clip1 #132, a dlib misfit: :data:`~lab.codec.pose.LARGE_YAW_DEG`); pitch -25..+28°."""
    from datasets.video import open_media
    from lab.codec.pose import LARGE_PITCH_DEG, LARGE_ROLL_DEG
    from lab.evaluation.pose_reference import clips_of_class
    from metrics.backends import get_landmark_backend

    clips = clips_of_class(data_root, "frontal", max_side=256)
    assert len(clips) >= 40
    be = get_landmark_backend("dlib")
    worst = {}
    for rel in clips:
        frames = np.stack(list(open_media(data_root / rel).iter_frames(0, 100, 10)))
        poses = [head_pose(lm, frames.shape[1:3]) for lm in be.landmarks(frames) if lm is not None]
        assert len(poses) >= 0.8 * len(frames), rel
        large = [p for p in poses if abs(p.yaw) >= LARGE_YAW_DEG or abs(p.pitch) >= LARGE_PITCH_DEG
                 or abs(p.roll) >= LARGE_ROLL_DEG]
        assert not large, (rel, large)
        worst[rel] = max(abs(p.pitch) for p in poses)
    assert max(worst.values()) < 27, sorted(worst.items(), key=lambda kv: -kv[1])[:3]
