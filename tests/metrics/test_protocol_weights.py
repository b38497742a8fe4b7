"""Protocol backends load from a temp ``$TORCH_HOME`` with random weights under the real file names.

This exercises the real loading code offline (face-alignment 1.5's own loaders for S3FD and 2DFAN4, LPIPS with
torchvision's AlexNet file, the OpenFace port's state_dict), and checks that a missing file gives an error
naming the file and the folder, without any download attempt.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from metrics import LPIPS, MetricCollection, aed, get_identity_backend, get_landmark_backend, lpips
from metrics.backends.face_alignment_backend import FAN_FILE, S3FD_FILE, FaceAlignmentBackend
from metrics.backends.lpips_alex import ALEXNET_FILE, load_lpips_alex
from metrics.backends.openface import OPENFACE_FILE, OpenFaceBackend
from metrics.backends.openface_net import OpenFaceNN4Small2


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Any attempt to download weights fails the test."""
    import torch.hub

    def refuse(url, *a, **k):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    try:
        import face_alignment.utils

        monkeypatch.setattr(face_alignment.utils, "download_url_to_file", refuse)
    except ImportError:  # pragma: no cover
        pass


def _s3fd_state(face_at_stride_128: bool) -> dict[str, torch.Tensor]:
    """Random S3FD weights whose heads are fixed: background everywhere, or a face at the coarsest anchors.

    Zero loc heads give boxes equal to the anchors; at stride 128 a 128x128 frame has a single anchor (a
    512 px box), so the detector returns exactly one face.
    """
    from face_alignment.detection.sfd.net_s3fd import s3fd

    sd = s3fd().state_dict()
    for k in sd:
        if "mbox_loc" in k or "mbox_conf" in k:
            sd[k] = torch.zeros_like(sd[k])
        if "mbox_conf.bias" in k:
            bias = torch.full_like(sd[k], 10.0)  # background logits (3 max-out channels for conv3_3)
            bias[-1] = -10.0  # face logit
            if face_at_stride_128 and k.startswith("conv7_2"):
                bias = torch.tensor([-10.0, 10.0])
            sd[k] = bias
    return sd


@pytest.fixture(scope="module")
def fa_files(tmp_path_factory):
    """Random 2DFAN4 and S3FD state_dicts, as face-alignment 1.5 loads them (plain state_dicts)."""
    pytest.importorskip("face_alignment")
    from face_alignment.models import FAN

    d = tmp_path_factory.mktemp("fa_weights")
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), d / FAN_FILE)
    torch.save(_s3fd_state(False), d / "s3fd_noface.pth")
    torch.save(_s3fd_state(True), d / "s3fd_face.pth")
    return d


def _frame(seed: int = 0, size: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (1, size, size, 3), dtype=np.uint8)


def test_face_alignment_backend_random_weights(weights_home, fa_files):
    os.symlink(fa_files / FAN_FILE, weights_home / FAN_FILE)
    os.symlink(fa_files / "s3fd_noface.pth", weights_home / S3FD_FILE)
    backend = get_landmark_backend("face-alignment")
    assert isinstance(backend, FaceAlignmentBackend) and backend.protocol
    assert backend.landmarks(_frame(size=128)) == [None]  # "no face" with these weights (128 px: faster)
    prov = backend.provenance()
    assert [w["file"] for w in prov["weights"]] == [S3FD_FILE, FAN_FILE]
    assert all(len(w["sha256"]) == 64 for w in prov["weights"])


@pytest.mark.slow  # FAN forward + numba compile of face-alignment's heatmap decoding: ~20 s here
def test_face_alignment_backend_random_weights_one_face(weights_home, fa_files):
    os.symlink(fa_files / FAN_FILE, weights_home / FAN_FILE)
    os.symlink(fa_files / "s3fd_face.pth", weights_home / S3FD_FILE)
    backend = FaceAlignmentBackend()
    (kp,) = backend.landmarks(_frame(size=128))
    assert kp.shape == (68, 2) and kp.dtype == np.float64 and np.isfinite(kp).all()


def test_face_alignment_missing_weights_named(weights_home):
    with pytest.raises(FileNotFoundError) as e:
        get_landmark_backend("face-alignment")
    msg = str(e.value)
    assert FAN_FILE in msg and str(weights_home) in msg and "--backend dlib" in msg
    (weights_home / FAN_FILE).write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=S3FD_FILE):
        FaceAlignmentBackend()


def test_lpips_alex_random_trunk_matches_lpips_own_loading(weights_home):
    import lpips as lpips_pkg
    import torchvision

    torch.manual_seed(0)
    with torch.device("meta"):  # shapes only: random values are cheaper than torchvision's init of 61M weights
        shapes = {k: v.shape for k, v in torchvision.models.alexnet().state_dict().items()}
    torch.save({k: torch.randn(s) * 0.05 for k, s in shapes.items()}, weights_home / ALEXNET_FILE)
    net, prov = load_lpips_alex()
    assert [w["file"] for w in prov["weights"]] == [ALEXNET_FILE, "alex.pth"]
    # the reference: lpips builds its own trunk through torchvision, which finds the same file (no download)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision: `pretrained` is deprecated
        ref = lpips_pkg.LPIPS(net="alex", version="0.1", verbose=False).eval()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    ours = lpips(a, b, net=net, reduction="none")
    ta = torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255
    tb = torch.from_numpy(b).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = ref(ta, tb, normalize=True).flatten().double().numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5)
    assert lpips(a, a, net=net) == pytest.approx(0.0, abs=1e-7)
    m = LPIPS()  # default lookup finds the file in $TORCH_HOME/hub/checkpoints
    m.update(a, b)
    assert m.compute() == pytest.approx(ours.mean(), rel=1e-5)
    assert m.provenance()["weights"][0]["file"] == ALEXNET_FILE


def test_lpips_missing_weights_named(weights_home):
    with pytest.raises(FileNotFoundError) as e:
        load_lpips_alex()
    assert ALEXNET_FILE in str(e.value) and str(weights_home) in str(e.value)
    with pytest.raises(FileNotFoundError, match=ALEXNET_FILE):
        MetricCollection(["l1", "lpips"])


def _random_openface_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = OpenFaceNN4Small2()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial running statistics
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    # as the port's file: no num_batches_tracked (saved before torch 0.4.1), float tensors
    return {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


def test_openface_backend_random_weights(weights_home):
    state = _random_openface_state()
    facelab_dir = weights_home.parent.parent.parent / "facelab"
    facelab_dir.mkdir()
    torch.save(state, facelab_dir / OPENFACE_FILE)
    backend = get_identity_backend("openface")
    assert isinstance(backend, OpenFaceBackend) and backend.protocol
    torch.testing.assert_close(backend.net.layer25.weight, state["layer25.weight"])
    frames = np.concatenate([_frame(0), _frame(1)])
    emb = backend.embeddings(frames)
    assert len(emb) == 2 and emb[0].shape == (128,)
    np.testing.assert_allclose([np.linalg.norm(e) for e in emb], 1.0, atol=1e-5)
    assert aed(frames, frames, backend="openface") == 0.0
    assert aed(frames[:1], frames[1:], backend="openface") > 0
    assert backend.provenance()["weights"][0]["file"] == OPENFACE_FILE


def test_openface_explicit_path_and_prefixed_keys(tmp_path):
    state = {"module." + k: v for k, v in _random_openface_state().items()}  # DataParallel-saved
    p = tmp_path / "my_openface.pth"
    torch.save(state, p)
    emb = OpenFaceBackend(weights=p).embeddings(_frame())
    assert emb[0].shape == (128,)


def test_openface_wrong_file_is_refused(tmp_path):
    from lab.core.checkpoint import CheckpointError

    state = _random_openface_state()
    state.pop("layer25.weight")
    torch.save(state, tmp_path / OPENFACE_FILE)
    with pytest.raises(CheckpointError, match="layer25.weight"):
        OpenFaceBackend(weights=tmp_path / OPENFACE_FILE)


def test_openface_missing_weights_named(weights_home):
    with pytest.raises(FileNotFoundError) as e:
        get_identity_backend("openface")
    msg = str(e.value)
    assert OPENFACE_FILE in msg and str(weights_home) in msg and "--aed-backend dlib" in msg
    with pytest.raises(FileNotFoundError, match="not found at"):
        OpenFaceBackend(weights=weights_home / "nope.pth")


def test_offline_backend_works_without_protocol_weights(weights_home):
    backend = get_landmark_backend("dlib")
    assert backend.landmarks(np.zeros((1, 64, 64, 3), np.uint8)) == [None]
    assert get_identity_backend("dlib") is backend  # one instance shares detections between AKD and AED
    prov = backend.provenance()
    assert not prov["protocol"] and "not the FOMM/pose-evaluation convention" in prov["label"]
    assert {w["file"] for w in prov["weights"]} == {
        "shape_predictor_68_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat"}


def test_unknown_backend_name():
    with pytest.raises(ValueError, match=r"one of \('dlib', 'face-alignment'\)"):
        get_landmark_backend("mediapipe")
