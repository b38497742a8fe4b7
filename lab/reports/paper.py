"""The paper's published numbers, in one place: Table 1 (efficiency) and Table 2 (reconstruction on VoxCeleb).

Lu Jianguo, Zheng Qingfang, "Ultra-Lightweight Face Animation Method for Ultra-Low Bitrate Video Conferencing",
ZTE Communications 2023, 21(1): 64-71 (``../shared/spec/paper.md``). Shown beside our numbers for reference
only: they were measured on another (incomplete) copy of VoxCeleb, on an unknown device.
"""

from __future__ import annotations

__all__ = ["PAPER_TABLE1", "PAPER_TABLE2", "PAPER_NAMES", "PAPER_NOTE", "PAPER_CLAIM", "paper_table2_rows"]

#: Table 1: (model, part) → (params, "FLOPs" (MACs, see paper.md), time in ms); the device is unknown
PAPER_TABLE1: dict[tuple[str, str], tuple[float, float, float]] = {
    ("fomm", "encoder"): (14.21e6, 1.280e9, 55.54),
    ("ultralight", "encoder"): (0.16e6, 14.62e6, 0.60),
    ("fomm", "decoder"): (45.56e6, 120.70e9, 299.10),
    ("ultralight", "decoder"): (16.16e6, 31.42e9, 81.77),
}

#: Table 2, "reconstruction quality on VoxCeleb" (the protocol's face-alignment / OpenFace backends)
PAPER_TABLE2: dict[str, dict[str, float]] = {
    "X2Face": {"l1": 0.078, "akd": 7.69, "aed": 0.405},
    "Monkey-Net": {"l1": 0.049, "akd": 1.89, "aed": 0.199},
    "FOMM": {"l1": 0.041, "akd": 1.27, "aed": 0.134},
    "Ours": {"l1": 0.043, "akd": 1.37, "aed": 0.147},
}
#: registry name → the paper's row name
PAPER_NAMES = {"x2face": "X2Face", "monkey_net": "Monkey-Net", "fomm": "FOMM", "ultralight": "Ours"}
PAPER_NOTE = "paper, VoxCeleb, not comparable"
#: the paper's claim: ours within ~5 % of FOMM on L1, ~8 % on AKD, ~10 % on AED (lower is better)
PAPER_CLAIM = {"l1": 0.05, "akd": 0.08, "aed": 0.10}


def paper_table2_rows() -> list[list[str]]:
    """Table 2 as printed (``method, L1, AKD, AED``), plus the row ``Ours ÷ FOMM``."""
    ours, fomm = PAPER_TABLE2["Ours"], PAPER_TABLE2["FOMM"]
    rows = [[k, *(f"{v[m]:.4f}" if m != "akd" else f"{v[m]:.2f}" for m in ("l1", "akd", "aed"))]
            for k, v in PAPER_TABLE2.items()]
    rows.append(["Ours ÷ FOMM", *(f"{ours[m] / fomm[m]:.3f}" for m in ("l1", "akd", "aed"))])
    return rows
