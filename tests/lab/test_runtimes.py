"""Inference runtimes (lab/deploy): errors name the choices, the export rewrites are exact, every runtime's fp32
output is PyTorch's within a measured tolerance, and the lossy modes stay within the quality cost they report.

Tolerances (fp32), measured with the trained ultralight on the embedded demo frames (default CPU capability,
2 threads; the ATEN_CPU_CAPABILITY=avx2 and OMP_NUM_THREADS=1 runs are still to be done): keypoints and
Jacobians differ from PyTorch by at most 5e-7 (ONNX Runtime and OpenVINO sum in another order); rendered frames
by at most 1.8e-5 (ORT) / 4.4e-5 (OpenVINO) with a mean of 4e-7 / 9e-7 — the output samples the source at the
flow, so a coordinate that moves by a few ulps moves a value by ulps × 127.5 px × the image gradient at a sharp
edge. The asserted bounds are 10-20x those (keypoints 1e-5; frames max 1e-3 as tests/lab/test_export.py,
mean 1e-5): far below any visible difference, far above float noise.
No test here is timed (speed is benchmarks/bench_runtimes.py's).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lab.core.registry import create_animator
from lab.deploy import runtimes
from lab.deploy.runtimes import RUNTIMES, available_runtimes, supported_precisions, wrap_animator


def test_runtime_names_and_availability():
    avail = available_runtimes()
    assert tuple(avail) == RUNTIMES and avail["torch"] is None
    for rt in RUNTIMES:
        assert set(supported_precisions(rt)) == {"fp32", "bf16", "int8"}
    assert supported_precisions("onnxruntime")["bf16"]  # a reason: ORT's CPU provider has no bf16 kernels


def test_bad_names_raise_with_the_choices(he_init_ultralight):
    with pytest.raises(ValueError, match="onnxruntime.*openvino"):
        wrap_animator(he_init_ultralight, "tensorrt")
    with pytest.raises(ValueError, match="fp32.*bf16.*int8"):
        wrap_animator(he_init_ultralight, "torch", "fp16")
    with pytest.raises(ValueError, match="no bf16 kernels"):
        wrap_animator(he_init_ultralight, "onnxruntime", "bf16")
    with pytest.raises(ValueError, match="int8 runs through"):
        wrap_animator(he_init_ultralight, "torch", "int8")


def test_missing_runtime_names_the_package(he_init_ultralight, monkeypatch):
    reasons = {**available_runtimes(), "openvino": "openvino is not installed (openvino): pip install openvino"}
    monkeypatch.setattr(runtimes, "available_runtimes", lambda: reasons)
    with pytest.raises(runtimes.RuntimeUnavailable, match="pip install openvino"):
        wrap_animator(he_init_ultralight, "openvino")


def test_antialias_resize_as_conv_is_exact():
    from lab.deploy.rewrites import ConvAntialiasResize

    x = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    want = F.interpolate(x, scale_factor=0.25, mode="bilinear", align_corners=False, antialias=True)
    got = ConvAntialiasResize(3, (256, 256), 0.25)(x)
    assert got.shape == want.shape and float((got - want).abs().max()) < 1e-6
    with pytest.raises(ValueError):
        ConvAntialiasResize(3, (255, 256), 0.25)


@pytest.mark.parametrize("name", ["ultralight", "fomm"])
def test_deploy_copy_computes_the_same_and_leaves_the_model_alone(name):
    from baselines.fomm.blocks import AntiAliasInterpolation2d
    from lab.deploy.rewrites import StridedAntiAlias, deploy_copy

    torch.manual_seed(0)
    model = create_animator(name).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    keys = list(model.state_dict())
    copy = deploy_copy(model)
    assert any(isinstance(m, StridedAntiAlias) for m in copy.modules())
    assert not any(isinstance(m, AntiAliasInterpolation2d) for m in copy.modules())
    assert list(model.state_dict()) == keys  # the model itself is untouched
    # in float64, so that only the rewrites' own constants differ (the resize kernel is stored in float32: 2e-7
    # here), not the summation order of float32 sums over 1,024 pixels (1e-5 on these large random weights)
    model, copy = model.double(), copy.double()
    g = torch.Generator().manual_seed(1)
    src = torch.rand(1, 3, 256, 256, generator=g, dtype=torch.float64)
    drv = torch.rand(2, 3, 256, 256, generator=g, dtype=torch.float64)
    with torch.no_grad():
        ms, md = model.extract_motion(src), model.extract_motion(drv)
        md2 = copy.extract_motion(drv)
        for k in md:
            assert float((md[k] - md2[k]).abs().max()) < 1e-6
        md["jacobian"] = md["jacobian"] + 0.3 * torch.randn(md["jacobian"].shape, generator=g,
                                                            dtype=torch.float64)  # a real 2x2 product
        want = model.render(model.encode_source(src), ms, md)
        got = copy.render(copy.encode_source(src), ms, md)
    assert float((want - got).abs().max()) < 1e-6


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The shipped trained ultralight (skips without it), with an export cache of this module's own."""
    from pathlib import Path

    from lab.core.animate import load_animator
    from lab.models.ultralight.model import WEIGHTS_FILE

    if not (Path(__file__).resolve().parents[2] / WEIGHTS_FILE).is_file():
        pytest.skip(f"{WEIGHTS_FILE} is not in this checkout")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACELAB_SHIPPED_WEIGHTS", "1")
        mp.setenv("FACELAB_WEIGHTS", "/nonexistent")
        mp.setenv("FACELAB_DEPLOY_CACHE", str(tmp_path_factory.mktemp("deploy")))
        la = load_animator("ultralight")
        assert la.weights.startswith("trained:"), la.weights
        yield la.model


@pytest.fixture(scope="module")
def real_frames(data_root):
    """Frames 0, 4, 8 of the first test clip of the shared data set, as (3, 3, 256, 256) floats."""
    from datasets.frames import iter_videos
    from lab.core.animate import to_tensor

    video = next(iter_videos(data_root, split="test", frame_shape=(256, 256, 3), max_frames_per_video=9))
    return to_tensor(video.frames[[0, 4, 8]])


def _outputs(model, frames):
    with torch.no_grad():
        src = frames[:1]
        state, ms = model.encode_source(src), model.extract_motion(src)
        md = model.extract_motion(frames[1:])
        return md, model.render(state, ms, md)


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_fp32_runtime_equals_pytorch_on_real_frames(trained, real_frames, runtime):
    if available_runtimes()[runtime]:
        pytest.skip(available_runtimes()[runtime])
    want_motion, want = _outputs(trained, real_frames)
    wrapped = wrap_animator(trained, runtime, "fp32", threads=2)
    assert wrapped.name == "ultralight" and wrapped.description == f"{runtime} fp32"
    got_motion, got = _outputs(wrapped, real_frames)
    for k in want_motion:
        assert float((got_motion[k] - want_motion[k]).abs().max()) < 1e-5, k
    diff = (got - want).abs()
    assert float(diff.max()) < 1e-3 and float(diff.mean()) < 1e-5
    assert float((want[0] - want[1]).abs().mean()) > 1e-3  # the frames differ: the check is not vacuous


@pytest.mark.slow
@pytest.mark.data
def test_lossy_modes_stay_within_their_reported_cost(trained, real_frames):
    """bf16 and int8 differ from fp32 PyTorch by at most twice the mean |difference| recorded with their quality
    cost (lab/deploy/quality.json, measured on 160 held-out frames by benchmarks/bench_runtimes.py --quality)."""
    from lab.deploy.quality import recorded_costs

    costs = recorded_costs(trained)
    if not costs:
        pytest.skip("no quality cost recorded for these weights")
    _, want = _outputs(trained, real_frames)
    checked = 0
    for (runtime, precision), cost in costs.items():
        if precision == "fp32" or supported_precisions(runtime)[precision]:
            continue
        _, got = _outputs(wrap_animator(trained, runtime, precision, threads=2), real_frames)
        err = float((got - want).abs().mean())
        assert err <= 2 * cost["l1_to_fp32"], (runtime, precision, err, cost)
        checked += 1
    assert checked


def test_efficiency_runtime_json(capsys):
    """``facelab efficiency --runtime ... --json``: one row per model, part, runtime and precision with its median."""
    import json

    from lab.cli import main

    assert main(["efficiency", "--models", "ultralight", "--reference", "ultralight", "--runtime", "torch",
                 "--precision", "fp32", "--json", "--min-run-time", "0.01"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["part"] for r in rows} == {"encoder", "render", "decoder"}
    for r in rows:
        assert r["model"] == "ultralight" and r["runtime"] == "torch" and r["precision"] == "fp32" and r["ms"] > 0
        assert r["x_vs_ref_same"] == pytest.approx(1.0)


def test_a_stale_int8_scope_is_refused_by_name():
    """An ignored op the graph does not have (a scope found on another export) is an error naming the script."""
    import onnx
    from onnx import helper

    from lab.deploy.int8_scope import check_scope

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="node_relu")], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    check_scope(model, ["node_relu"], "the test graph")
    with pytest.raises(ValueError, match="node_mul_8.*scripts/int8_scope.py"):
        check_scope(model, ["node_relu", "node_mul_8"], "the test graph")


def _conv_graph(seed: int = 0):
    """A float ONNX graph x -> Conv(3→4) -> Relu -> Conv(4→2) -> y with random weights and biases."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.normal(size=s).astype(np.float32), n) for n, s in
             (("w1", (4, 3, 3, 3)), ("b1", (4,)), ("w2", (2, 4, 1, 1)), ("b2", (2,)))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2", "b2"], ["y"], name="conv2")]
    f = onnx.TensorProto.FLOAT
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", f, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", f, [1, 2, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_reverting_a_convolution_restores_its_float_weights_and_uncorrected_bias():
    """int8's revert of a recorded op is NNCF's own: the op's quantizers go, and a convolution gets its float
    weight and its bias before NNCF's bias correction back (the search on ultralight v4 reverted one)."""
    import numpy as np
    from onnx import numpy_helper

    from lab.deploy.int8_scope import quantize_plain, revert_scope, scoped_int8

    pytest.importorskip("nncf")
    model = _conv_graph()
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.normal(size=(1, 3, 8, 8)).astype(np.float32)} for _ in range(4)]
    q = quantize_plain(model, feeds, compress_weights=False)  # as the search quantises before it reverts
    qs = [n for n in q.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in ("r", "w2")]
    assert len(qs) == 2, "nncf did not quantise conv2's input and weight"
    dqs = [n for n in q.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in {x.output[0] for x in qs}]
    scope = {"ignored": ["conv2"], "quantizers": [n.name for n in qs + dqs]}
    out = scoped_int8(model, feeds, scope)
    inits = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}
    float_inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = {n.name: n for n in out.graph.node}
    made_by = {o: n for n in out.graph.node for o in n.output}
    conv2 = nodes["conv2"]
    assert conv2.input[0] == "r"
    np.testing.assert_array_equal(inits[conv2.input[1]], float_inits["w2"])
    np.testing.assert_array_equal(inits[conv2.input[2]], float_inits["b2"])
    w1 = made_by[nodes["conv1"].input[1]]  # the other convolution stays int8, its weights folded to int8
    assert w1.op_type == "DequantizeLinear" and inits[w1.input[0]].dtype == np.int8
    assert not [n for n in out.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in inits]
    with pytest.raises(ValueError, match="conv9"):
        revert_scope(model, q, ["conv9"], [])


def test_int8_quality_rows_of_another_recipe_are_not_reported(he_init_ultralight, tmp_path):
    """A quality row measured with another int8 recipe (other ops kept float) does not describe today's int8."""
    from lab.deploy.quality import record_costs, recorded_costs
    from lab.deploy.quantize import recipe_id

    rows = [{"runtime": "onnxruntime", "precision": "fp32", "l1_to_fp32": 0.0},
            {"runtime": "onnxruntime", "precision": "int8", "l1_to_fp32": 0.03, "recipe": "nncf-old"},
            {"runtime": "openvino", "precision": "int8", "l1_to_fp32": 0.01,
             "recipe": recipe_id("ultralight", "openvino")}]
    path = tmp_path / "quality.json"
    record_costs(he_init_ultralight, rows, {}, path)
    got = recorded_costs(he_init_ultralight, path)
    assert set(got) == {("onnxruntime", "fp32"), ("openvino", "int8")}


def _quantized_ops(model) -> set[str]:
    """Names of the ops of an ONNX graph whose inputs pass through a DequantizeLinear (the ops run in int8)."""
    made_by = {o: n for n in model.graph.node for o in n.output}
    return {n.name for n in model.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
            and any(i in made_by and made_by[i].op_type == "DequantizeLinear" for i in n.input)}


@pytest.mark.slow
@pytest.mark.data
def test_int8_quantises_the_render_only_and_keeps_the_recorded_ops_float(trained, real_frames):
    """int8 mode: the render graph's convolutions run int8 but those of lab/deploy/int8_scope.json, whose ops stay
    float, and the encoder is not quantised."""
    import json

    import numpy as np
    import onnx

    from lab.deploy.int8_scope import SCOPE_FILE
    from lab.deploy.quantize import quantized_graphs
    from lab.deploy.runtimes import exported_graphs

    keep = json.loads(SCOPE_FILE.read_text())["ultralight"]["render/onnxruntime"]["ignored"]
    assert keep, "lab/deploy/int8_scope.json records no ops for ultralight"
    frames = (real_frames.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    paths = exported_graphs(trained)
    q = quantized_graphs(trained, paths, calibration=[(frames[0], frames[1]), (frames[0], frames[2])])
    assert set(q) == {"render"}
    int8 = _quantized_ops(onnx.load(str(q["render"])))
    assert not int8 & set(keep)
    convs = {n.name for n in onnx.load(str(paths["render"]), load_external_data=False).graph.node
             if n.op_type == "Conv"}
    assert convs and convs - set(keep) <= int8  # every convolution the search did not revert runs int8
    if available_runtimes()["onnxruntime"] is None:
        wrapped = wrap_animator(trained, "onnxruntime", "int8", threads=2,
                                calibration=[(frames[0], frames[1]), (frames[0], frames[2])])
        assert wrapped.graph_files == {**paths, "render": q["render"]}
    if available_runtimes()["openvino"] is None:  # OpenVINO's own int8 graph: FakeQuantize, its own scope
        from lab.deploy.int8_scope import recorded_scope
        from lab.deploy.runtimes import _ov_core

        removed = set(recorded_scope("ultralight", "openvino")["quantizers"])
        assert removed, "lab/deploy/int8_scope.json records no OpenVINO scope for ultralight"
        qo = quantized_graphs(trained, paths, "openvino", calibration=[(frames[0], frames[1])])
        ops = _ov_core().read_model(str(qo["render"])).get_ops()
        assert not {op.get_friendly_name() for op in ops} & removed
        assert sum(op.get_type_name() == "FakeQuantize" for op in ops) > 50
