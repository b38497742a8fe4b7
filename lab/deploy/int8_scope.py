"""Which ops of the render graph stay float in int8: NNCF's accuracy-controlled search, run once and recorded.

NNCF's default post-training quantisation of the whole render graph costs ultralight several % of held-out L1
(``lab/models/ultralight/README.md``: +3.8 % for the render alone, +15 % with the encoder too). Most of that
loss sits in a handful of non-convolution ops of the dense motion (the 2×2 Jacobian products, the mask
arithmetic, an upsample), not in the convolutions that hold the time. :func:`search_scope` finds them with
``nncf.quantize_with_accuracy_control``: quantise everything, rank each quantised op by how much reverting it
to float restores, revert the best ones until the drop is within ``max_drop`` (or ``max_iterations`` ops have
been reverted). Validation metric: the L1 to the driving frame (negated: NNCF maximises) on the calibration
pairs, i.e. *training* frames only; the test split's cost is measured afterwards by
:func:`lab.deploy.quality.quality_cost`.

The search takes tens of minutes on 2 cores, so it is not part of ``wrap_animator``: ``scripts/int8_scope.py``
runs it and records, per model in :data:`SCOPE_FILE`, the reverted ops and the quantizers (QuantizeLinear /
DequantizeLinear nodes) whose removal reverted them; the weights it was found on are recorded beside them.
:func:`lab.deploy.quantize.quantized_graphs` quantises as the search began (plain ``nncf.quantize``, same
settings and calibration) and reverts those ops with NNCF's own revert (:func:`revert_scope`: the quantizers
removed, and a reverted convolution's float weights and uncorrected bias restored): the model the search ended
with. Passing the op names to ``nncf.quantize`` as an ``ignored_scope`` instead is *not* the same model — NNCF
then places the neighbouring quantizers differently — and measured worse: +3.65 % validation L1 against the
search's +1.88 % (ultralight v3). Node names are stable for a model's architecture and
:data:`~lab.deploy.export_cache.EXPORT_VERSION`; a recorded name the graph lacks is an error
(:func:`check_scope`).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import os
import time
from pathlib import Path

import numpy as np

__all__ = ["SCOPE_FILE", "recorded_scope", "record_scope", "search_scope", "check_scope", "revert_scope", "scoped_int8",
           "validate_scope"]

SCOPE_FILE = Path(__file__).resolve().parent / "int8_scope.json"


def recorded_scope(model: str, runtime: str = "onnxruntime", part: str = "render",
                   path: str | os.PathLike = SCOPE_FILE) -> dict[str, list[str]]:
    """``{"ignored": ops, "quantizers": nodes}``: the ops ``runtime``'s int8 returns to float in ``model``'s
    quantised ``part`` graph and the quantizers removed for them (both empty when none are recorded)."""
    p = Path(path)
    rec = json.loads(p.read_text()).get(model, {}).get(f"{part}/{runtime}", {}) if p.is_file() else {}
    return {"ignored": list(rec.get("ignored", [])), "quantizers": list(rec.get("quantizers", []))}


def record_scope(model: str, runtime: str, result: dict, part: str = "render",
                 path: str | os.PathLike = SCOPE_FILE) -> None:
    """Store :func:`search_scope`'s ``result`` for ``model``'s ``part`` in ``runtime`` (other entries kept)."""
    p = Path(path)
    data = json.loads(p.read_text()) if p.is_file() else {}
    data.setdefault(model, {})[f"{part}/{runtime}"] = result
    p.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def check_scope(model, names: list[str], where: str) -> None:
    """Raise ``ValueError`` when a recorded name is not a node of the (quantised) ONNX or OpenVINO graph: a scope
    found on another export or NNCF version."""
    nodes = {n.name for n in model.graph.node} if hasattr(model, "graph") else \
        {op.get_friendly_name() for op in model.get_ops()}
    missing = [n for n in names if n not in nodes]
    if missing:
        raise ValueError(f"the int8 scope recorded in {SCOPE_FILE.name} names ops that {where} does not have "
                         f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}): it was found on "
                         f"another export; rerun python scripts/int8_scope.py MODEL --runtime RUNTIME --record")


def search_scope(animator, paths: dict[str, Path], runtime: str = "onnxruntime", calibration=None,
                 max_drop: float = 0.012, ranking_subset_size: int = 12, max_iterations: int = 8,
                 threads: int | None = 1, progress=None) -> dict:
    """Run NNCF's accuracy-controlled quantisation of ``animator``'s render graph for ``runtime``; what it kept float.

    Args:
        animator: the fp32 PyTorch model the graphs were exported from.
        paths: :func:`lab.deploy.runtimes.exported_graphs` output.
        runtime: ``onnxruntime`` (NNCF's ONNX backend: QuantizeLinear/DequantizeLinear pairs) or ``openvino``
            (its OpenVINO backend: FakeQuantize nodes, validated as ``wrap_animator`` compiles int8). The two
            runtimes execute the same quantised graph differently (OpenVINO's low-precision transformations), so
            each has its own scope: ONNX Runtime's scope in OpenVINO cost ultralight v3 +4.6 % held-out L1
            against +0.8 % in ONNX Runtime.
        calibration: as :func:`lab.deploy.quantize.quantized_graphs` (default: training frames); these pairs
            are both the calibration and the validation set.
        max_drop: allowed relative rise of the validation L1 over the fp32 graph's.
        ranking_subset_size: pairs each op is ranked on.
        max_iterations: most ops reverted to float.
        threads: threads of the validation runs.
        progress: called with ``{"ignored", "quantizers", "settings"}`` as soon as the search ends, before the
            final validations (which rebuild the model and could fail).

    Returns:
        ``{"ignored": [op names, in the order reverted], "quantizers": [the quantizer nodes removed for them],
        "fp32_l1", "int8_l1" (all ops quantised), "scoped_l1" (those quantizers removed: what int8 mode runs),
        "pairs", "settings", "seconds", "weights"}``; the L1s are on the validation pairs.
    """
    import nncf

    from lab.deploy.export_cache import weights_hash

    t0 = time.perf_counter()
    model, feeds, items, validate = _validation(animator, paths, runtime, calibration, threads)
    fp32_l1 = -validate(model, items)[0]
    with _reverted_ops() as reverted:
        nncf.quantize_with_accuracy_control(
            model, nncf.Dataset(feeds), nncf.Dataset(items), validate, max_drop=max_drop,
            drop_type=nncf.DropType.RELATIVE, preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=len(feeds),
            fast_bias_correction=True,
            advanced_accuracy_restorer_parameters=nncf.AdvancedAccuracyRestorerParameters(
                max_num_iterations=max_iterations, ranking_subset_size=ranking_subset_size, num_ranking_workers=1))

    scope = {"ignored": reverted["operations"], "quantizers": reverted["quantizers"],
             "settings": {"max_drop": max_drop, "drop_type": "relative", "ranking_subset_size": ranking_subset_size,
                          "max_iterations": max_iterations, "nncf": nncf.__version__}}
    if progress is not None:  # the search's result first: what follows cannot lose it
        progress(scope)
    return {**scope, "fp32_l1": fp32_l1, **_scope_l1s(model, feeds, items, validate, scope), "runtime": runtime,
            "seconds": round(time.perf_counter() - t0, 1), "weights": f"{animator.name}-{weights_hash(animator)}"}


def validate_scope(animator, paths: dict[str, Path], runtime: str, scope: dict, calibration=None,
                   threads: int | None = 1) -> dict:
    """The validation L1s of :func:`search_scope` for a given ``scope``: ``{"fp32_l1", "int8_l1", "scoped_l1",
    "pairs"}`` (e.g. to finish a record whose search ended but whose validation did not)."""
    model, feeds, items, validate = _validation(animator, paths, runtime, calibration, threads)
    return {"fp32_l1": -validate(model, items)[0], **_scope_l1s(model, feeds, items, validate, scope)}


def _scope_l1s(model, feeds: list[dict], items: list, validate, scope: dict) -> dict:
    """``{"int8_l1", "scoped_l1", "pairs"}``: the validation L1 of every op int8 and of ``scope``'s ops float
    (what int8 mode runs), both from one quantisation."""
    q = quantize_plain(model, feeds, compress_weights=False)
    plain = _fold_weights(q.clone() if hasattr(q, "clone") else copy.deepcopy(q))  # = quantize_plain(model, feeds)
    scoped = _scoped(model, q, scope)
    return {"int8_l1": -validate(plain, items)[0], "scoped_l1": -validate(scoped, items)[0], "pairs": len(feeds)}


def _validation(animator, paths: dict[str, Path], runtime: str, calibration, threads: int | None):
    """(fp32 graph, calibration feeds, validation items, NNCF validation function) of the search."""
    from lab.deploy.quantize import calibration_pairs, load_float_graph, render_feeds

    pairs = calibration if isinstance(calibration, list) else calibration_pairs(calibration, animator.input_size)
    model = load_float_graph(paths["render"], runtime)
    feeds = render_feeds(animator, pairs, _input_names(model))
    targets = [np.ascontiguousarray(d.transpose(2, 0, 1)[None], dtype=np.float32) / 255 for _, d in pairs]
    items = list(zip(feeds, targets))  # validation items: (render inputs, the driving frame)
    run = _runner(runtime, threads)

    def validate(model, data):
        """NNCF's validation function: minus the mean L1 to the driving frame, and minus each pair's."""
        infer = run(model)
        per = [float(np.abs(infer(f) - t).mean()) for f, t in data]
        return -float(np.mean(per)), [-v for v in per]
    return model, feeds, items, validate


def _input_names(model) -> list[str]:
    if hasattr(model, "graph"):
        return [i.name for i in model.graph.input]
    return [p.get_any_name() for p in model.inputs]


def _runner(runtime: str, threads: int | None):
    """``run(model)(feed) -> output``: the model compiled as int8 mode runs it in ``runtime``."""
    if runtime == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads, opts.inter_op_num_threads = int(threads), 1

        def run(model):
            session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            out = session.get_outputs()[0].name
            return lambda feed: session.run([out], feed)[0]
        return run
    from lab.deploy.runtimes import _ov_config, _ov_core

    def run(model):  # NNCF's OpenVINO backend hands its validation function a model it compiled itself
        compiled = model if hasattr(model, "create_infer_request") else \
            _ov_core().compile_model(model, "CPU", _ov_config("int8", threads))
        return lambda feed: np.array(compiled(feed)[0])
    return run


def quantize_plain(model, feeds: list[dict], compress_weights: bool = True):
    """``nncf.quantize`` of ``model`` as int8 mode and the search's start do it (performance preset, fast bias
    correction, every calibration item used). ``compress_weights=False`` keeps the weights' quantizers (ONNX:
    QuantizeLinear of the float initializer; OpenVINO: FakeQuantize) instead of folding them into int8
    constants, as the accuracy-controlled search quantises before it reverts ops (:func:`revert_scope`)."""
    import nncf

    advanced = None
    if not compress_weights:
        advanced = nncf.AdvancedQuantizationParameters(backend_params={"compress_weights": False})
    return nncf.quantize(model, nncf.Dataset(feeds), subset_size=len(feeds),
                         preset=nncf.QuantizationPreset.PERFORMANCE, fast_bias_correction=True,
                         advanced_parameters=advanced)


def scoped_int8(model, feeds: list[dict], scope: dict):
    """``model`` (fp32, ONNX or OpenVINO) quantised as the search began, with ``scope``'s ops reverted as the
    search reverted them (:func:`revert_scope`): the model int8 mode runs. As in
    ``nncf.quantize_with_accuracy_control``, the weights keep their quantizers until the revert (a reverted
    convolution gets its float weights back) and are folded into int8 constants after it."""
    return _scoped(model, quantize_plain(model, feeds, compress_weights=False), scope)


def _scoped(model, q, scope: dict):
    """:func:`scoped_int8` of ``q``, ``model`` quantised with its weights' quantizers kept (``q`` itself is folded
    when the scope is empty; otherwise NNCF reverts a copy)."""
    return _fold_weights(revert_scope(model, q, scope.get("ignored", []), scope.get("quantizers", [])))


def _fold_weights(q):
    """``q`` with its weights' quantizers folded into int8 constants (in place), as ``nncf.quantize`` ends."""
    if hasattr(q, "graph"):
        from nncf.onnx.graph.passes import compress_quantize_weights_transformation
    else:
        from openvino._offline_transformations import compress_quantize_weights_transformation
    compress_quantize_weights_transformation(q)
    return q


def revert_scope(float_model, quantized, operations: list[str], quantizers: list[str]):
    """``quantized`` (``nncf.quantize`` of ``float_model``) with ``operations`` returned to float by removing
    ``quantizers`` — NNCF's own revert, as its accuracy restorer applies it: a reverted op with weights gets the
    float weights back, and an op with a bias the bias before NNCF's bias correction (read from
    ``float_model``). Names are NNCF graph node names, as :func:`search_scope` records them; a name the graph
    lacks raises (:func:`check_scope`)."""
    if not operations and not quantizers:
        return quantized
    from nncf.common.factory import build_graph
    from nncf.common.quantization.quantizer_removal import revert_operations_to_floating_point_precision
    from nncf.common.utils.backend import get_backend
    from nncf.quantization.advanced_parameters import RestoreMode
    from nncf.quantization.algorithms.accuracy_control.algorithm import QuantizationAccuracyRestorer, get_algo_backend

    check_scope(quantized, [*operations, *quantizers], "this quantised graph")
    backend = get_algo_backend(get_backend(float_model))
    graph = build_graph(quantized)
    QuantizationAccuracyRestorer._collect_original_biases_and_weights(build_graph(float_model), graph, float_model,
                                                                      backend)
    for node in graph.get_all_nodes():  # OpenVINO hands out read-only views of a model read from file; its
        for k, v in node.attributes.items():  # Constant() then refuses them ("array is not writeable")
            if k.startswith("original_") and isinstance(v, np.ndarray) and not v.flags.writeable:
                node.attributes[k] = v.copy()
    return revert_operations_to_floating_point_precision(
        [graph.get_node_by_name(n) for n in operations], [graph.get_node_by_name(n) for n in quantizers], quantized,
        graph, RestoreMode.ACTIVATIONS_AND_WEIGHTS, backend.get_op_with_weights_metatypes(),
        backend.is_node_with_weight, backend.get_weight_tensor_port_ids)


@contextlib.contextmanager
def _reverted_ops():
    """The ops NNCF's accuracy restorer leaves reverted to float and the quantizers it removed for them
    (``{"operations": [...], "quantizers": [...]}``, node names), filled in when it reports.

    NNCF returns only the model; its final report (``removed_groups``, each with the ``operations`` it
    reverted, after any step back) goes to the log. This catches that report, for NNCF 3.x."""
    from nncf.quantization.algorithms.accuracy_control.algorithm import QuantizationAccuracyRestorer as Restorer

    found: dict[str, list[str]] = {"operations": [], "quantizers": []}
    original = inspect.getattr_static(Restorer, "_print_report")

    def spy(report, *args, **kwargs):
        found["operations"] = [op.node_name for group in report.removed_groups for op in group.operations]
        found["quantizers"] = [q.node_name for group in report.removed_groups for q in group.quantizers]
        return original.__func__(report, *args, **kwargs)

    Restorer._print_report = staticmethod(spy)
    try:
        yield found
    finally:
        Restorer._print_report = original
