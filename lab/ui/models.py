"""The app's Models tab: the registered animators and their costs (Table 1)."""

from __future__ import annotations

from lab.ui.common import UserInputError, loaded_model

__all__ = ["models_table", "efficiency_rows"]


def models_table() -> list[list]:
    """``[name, encoder params, decoder params, motion per frame, weights, description]`` per animator."""
    from lab.core.registry import list_animators

    rows = []
    for name in list_animators():
        la = loaded_model(name, usable=False)
        m = la.model
        rows.append([name, m.encoder_params, m.decoder_params, m.info.motion_description, la.weights,
                     m.info.description])
    return rows


def efficiency_rows(models: list[str] | None, latency: bool = False) -> list[list]:
    """Table 1 rows for the chosen models: params, MACs, GFLOPs and, with ``latency``, CPU milliseconds per
    256×256 frame (about 2 s per part) and the speed-up against FOMM when it is among them.

    Returns:
        ``[model, part, params, GMACs, GFLOPs, latency ms, x faster than fomm]`` per part.
    """
    from lab.deploy.efficiency import animator_costs, efficiency_table

    if not models:
        raise UserInputError("tick at least one model")
    costs = []
    for name in models:
        costs += animator_costs(loaded_model(name, usable=False).model, latency=bool(latency), min_run_time=0.5)
    rows = []
    for r in efficiency_table(costs):
        ms, fast = r.get("latency_ms"), r.get("x_faster")
        rows.append([r["model"], r["part"], r["params"], round(r["macs"] / 1e9, 4), round(r["flops"] / 1e9, 3),
                     None if ms is None else round(ms, 2), None if fast is None else round(fast, 2)])
    return rows
