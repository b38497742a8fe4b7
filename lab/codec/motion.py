"""The uplink motion-feature bitstream: closed-loop residual coding of motion features with exp-Golomb codes.

This follows the feature coding of the JVET generative-face-video-coding (GFVC) common software
(``../shared/spec/protocol.md``, "Rate–distortion"; ``FOMM_Encoder.py``/``FOMM_Decoder.py`` of
Berlin0610/Awesome-Generative-Face-Video-Coding, ``Software/``):

* **Features.** Whatever :meth:`lab.core.animator.Animator.extract_motion` returns: a dict of tensors, frame batch
  first. Each frame is flattened to one vector of ``V`` values, key by key in **sorted key order** (for
  FOMM/ultralight ``jacobian`` (10×2×2) then ``value`` (10×2): ``V = 60``; X2Face ``embedding``: 128;
  ``static``: ``V = 0``), each tensor in C (row-major) order. The order is part of the format and is what
  :class:`MotionLayout` records; GFVC writes ``value`` before ``jacobian``, which changes no bit count
  (every value is coded on its own).
* **Prediction (closed loop).** Frame ``t`` is coded as the residual against the previous *reconstructed*
  features, so encoder and decoder hold the same predictor and quantisation errors never accumulate
  (no drift). The predictor of the first coded frame is the motion of the reference frame, which the
  server extracts from the decoded reference image (``None``: zeros).
* **Quantisation.** ``q = rint((x - prediction) * quant_factor)`` (round half to even); the reconstruction is
  ``prediction + q / quant_factor``, computed in float64 identically on both sides, so
  ``|reconstruction - x| <= 0.5 / quant_factor`` for every value of every frame.
* **Entropy coding.** Signed exp-Golomb codes of order ``k`` (H.264's ``se(v)`` mapping ``0, 1, -1, 2, -2,
  ... -> 0, 1, 2, 3, 4, ...``, then ``ue(v)`` of order ``k``: :mod:`lab.codec.bits`). The GFVC software
  additionally passes the binarised string through an adaptive binary arithmetic coder (PPM, order 0); we stop
  at the exp-Golomb binarisation, so our feature rates are an upper bound on theirs.
* **Packets.** Each frame is one byte-aligned packet (zero bits pad the last byte), so it can travel as one
  network packet; its size in bits is ``8 * len(packet)``, as GFVC counts ``os.path.getsize(bin) * 8`` per
  frame. A frame whose layout has no values (``static``) is an empty packet: 0 bits.
* **Side information.** The layout (keys, per-frame shapes), the quantisation factor and the exp-Golomb
  order are sent **once per session** in a header (:meth:`MotionBitstream.header`); its size is reported
  separately as ``header_bits`` and is *not* part of ``total_bits``/:meth:`MotionBitstream.kbps` (it is
  session set-up, like SDP, not per-frame rate).

Error handling: the decoder reads exactly ``V`` codes per packet and requires the rest of the packet to be
zero padding shorter than a byte; a truncated packet, trailing data, non-zero padding or an impossibly long
code raise :class:`ValueError` naming the frame. A bit flip inside a code's suffix keeps a valid parse and is
not detectable at this layer (as in H.264: integrity is the transport's job).

Pure Python/numpy; no file I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from lab.codec.bits import BitReader, BitWriter, decode_exp_golomb, encode_exp_golomb

__all__ = [
    "MotionLayout",
    "MotionBitstream",
    "MotionCodec",
    "DEFAULT_QUANT_FACTOR",
]

#: GFVC's quantisation factor for FOMM features
DEFAULT_QUANT_FACTOR = 64.0
_MAGIC = b"FLMC"  # facelab motion codec
_VERSION = 1


# ---------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class MotionLayout:
    """How one frame's motion dict maps to a flat vector: keys in sorted order, per-frame shapes.

    Attributes:
        keys: motion dict keys, sorted.
        shapes: per-frame shape of each key (the tensor's shape without the frame dimension).
    """

    keys: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def from_motion(cls, motion: Mapping[str, Tensor]) -> MotionLayout:
        """The layout of a batched motion dict (its first dimension is the frame batch)."""
        if not motion:
            raise ValueError("motion dict is empty (an animator with no motion returns an (N, 0) tensor)")
        keys = tuple(sorted(motion))
        return cls(keys, tuple(tuple(int(s) for s in motion[k].shape[1:]) for k in keys))

    @property
    def sizes(self) -> tuple[int, ...]:
        """Values per frame of each key."""
        return tuple(int(np.prod(s, dtype=np.int64)) for s in self.shapes)

    @property
    def values_per_frame(self) -> int:
        """``V``: values coded per frame."""
        return sum(self.sizes)

    def flatten(self, motion: Mapping[str, Tensor], what: str = "motion") -> np.ndarray:
        """``(N, V)`` float64 array of a batched motion dict (checked against the layout)."""
        if set(motion) != set(self.keys):
            raise ValueError(f"{what} has keys {sorted(motion)}, the layout has {list(self.keys)}")
        parts, n = [], None
        for key, shape, size in zip(self.keys, self.shapes, self.sizes):
            t = motion[key]
            if tuple(t.shape[1:]) != shape:
                raise ValueError(f"{what}['{key}'] has per-frame shape {tuple(t.shape[1:])}, the layout has {shape}")
            if n is None:
                n = t.shape[0]
            elif t.shape[0] != n:
                raise ValueError(f"{what}: '{key}' has {t.shape[0]} frames, '{self.keys[0]}' has {n}")
            parts.append(t.detach().to("cpu", torch.float64).reshape(t.shape[0], size).numpy())
        flat = np.concatenate(parts, axis=1) if parts else np.zeros((0, 0))
        if not np.all(np.isfinite(flat)):
            raise ValueError(f"{what} holds non-finite values (NaN or inf): they cannot be coded")
        return flat

    def unflatten(self, flat: np.ndarray, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Inverse of :meth:`flatten`: ``(N, V)`` → dict of float32 tensors ``(N, *shape)``."""
        flat = np.asarray(flat)
        if flat.ndim != 2 or flat.shape[1] != self.values_per_frame:
            raise ValueError(f"expected (N, {self.values_per_frame}) values, got {flat.shape}")
        out, start = {}, 0
        for key, shape, size in zip(self.keys, self.shapes, self.sizes):
            part = flat[:, start : start + size].astype(np.float32).reshape(flat.shape[0], *shape)
            out[key] = torch.from_numpy(np.ascontiguousarray(part)).to(device)
            start += size
        return out


# ---------------------------------------------------------------------------------------------- header


def _encode_header(layout: MotionLayout, quant_factor: float, eg_order: int) -> bytes:
    """Session header: magic, version, exp-Golomb order, factor (float64), then each key's name and shape."""
    w = BitWriter()
    w.write_bytes(_MAGIC)
    w.write(_VERSION, 8)
    w.write_ue(eg_order)
    w.write_bytes(struct.pack(">d", float(quant_factor)))
    w.write_ue(len(layout.keys))
    for key, shape in zip(layout.keys, layout.shapes):
        name = key.encode("utf-8")
        w.write_ue(len(name))
        w.write_bytes(name)
        w.write_ue(len(shape))
        for s in shape:
            w.write_ue(s)
    return w.getvalue()


def _decode_header(header: bytes) -> tuple[MotionLayout, float, int]:
    r = BitReader(header, "motion header")
    if r.bits_left < 40 or r.read_bytes(4) != _MAGIC:
        raise ValueError("not a facelab motion header (bad magic)")
    version = r.read(8)
    if version != _VERSION:
        raise ValueError(f"motion header version {version} is not supported (this decoder reads {_VERSION})")
    eg_order = r.read_ue()
    (factor,) = struct.unpack(">d", r.read_bytes(8))
    keys, shapes = [], []
    for _ in range(r.read_ue()):
        try:
            keys.append(r.read_bytes(r.read_ue()).decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ValueError("motion header is corrupt (key name is not UTF-8)") from e
        shapes.append(tuple(r.read_ue() for _ in range(r.read_ue())))
    r.expect_end()
    if not (np.isfinite(factor) and factor > 0) or list(keys) != sorted(keys):
        raise ValueError("motion header is corrupt (bad quantisation factor or key order)")
    return MotionLayout(tuple(keys), tuple(shapes)), float(factor), int(eg_order)


# ---------------------------------------------------------------------------------------------- codec


@dataclass
class MotionBitstream:
    """A coded motion sequence: one byte-aligned packet per frame plus the session header.

    Attributes:
        packets: one ``bytes`` per frame (empty when the layout has no values).
        layout: keys and per-frame shapes (also sent in :attr:`header`).
        quant_factor: quantisation factor.
        eg_order: exp-Golomb order.
        header: the session header (layout, factor, order), sent once per session.
        code_bits: exp-Golomb bits of each frame before byte alignment (for analysis; the rate counts
            whole packets).
    """

    packets: list[bytes]
    layout: MotionLayout
    quant_factor: float
    eg_order: int
    header: bytes
    code_bits: list[int] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        """Frames coded."""
        return len(self.packets)

    @property
    def frame_bits(self) -> list[int]:
        """Bits of each frame's packet (``8 * len(packet)``)."""
        return [8 * len(p) for p in self.packets]

    @property
    def total_bits(self) -> int:
        """Bits of all frame packets; the session header is not included (see :attr:`header_bits`)."""
        return sum(self.frame_bits)

    @property
    def header_bits(self) -> int:
        """Bits of the session header (sent once per session; not part of :attr:`total_bits`)."""
        return 8 * len(self.header)

    def kbps(self, fps: float = 25.0) -> float:
        """Feature rate ``total_bits / 1000 / (num_frames / fps)`` (0 for an empty stream)."""
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        return self.total_bits / 1000 / (self.num_frames / fps) if self.num_frames else 0.0


class MotionCodec:
    """Closed-loop residual coder of motion features (module docstring).

    Args:
        quant_factor: residuals are multiplied by it and rounded; larger = finer = more bits.
        eg_order: exp-Golomb order ``k``.

    >>> import torch
    >>> codec = MotionCodec()
    >>> motion = {"value": torch.zeros(3, 10, 2), "jacobian": torch.zeros(3, 10, 2, 2)}
    >>> bs = codec.encode(motion)
    >>> bs.frame_bits  # 60 zero residuals: 60 one-bit codes, padded to 8 bytes
    [64, 64, 64]
    """

    def __init__(self, quant_factor: float = DEFAULT_QUANT_FACTOR, eg_order: int = 0) -> None:
        if not (np.isfinite(quant_factor) and quant_factor > 0):
            raise ValueError(f"quant_factor must be a finite number > 0, got {quant_factor}")
        if int(eg_order) != eg_order or eg_order < 0:
            raise ValueError(f"eg_order must be an integer >= 0, got {eg_order}")
        self.quant_factor = float(quant_factor)
        self.eg_order = int(eg_order)

    def __repr__(self) -> str:
        return f"MotionCodec(quant_factor={self.quant_factor:g}, eg_order={self.eg_order})"

    # ------------------------------------------------------------------ shared arithmetic
    @staticmethod
    def _predictor(layout: MotionLayout, reference: Mapping[str, Tensor] | None) -> np.ndarray:
        if reference is None:
            return np.zeros(layout.values_per_frame, np.float64)
        ref = layout.flatten(reference, what="reference motion")
        if ref.shape[0] != 1:
            raise ValueError(f"reference motion must hold one frame, got {ref.shape[0]}")
        return ref[0]

    def _closed_loop(self, x: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quantised residuals ``(N, V)`` int64 and reconstructions ``(N, V)`` float64, frame by frame."""
        q = np.zeros(x.shape, np.int64)
        rec = np.zeros(x.shape, np.float64)
        for t in range(x.shape[0]):
            r = np.rint((x[t] - pred) * self.quant_factor)
            if np.any(np.abs(r) >= 2.0**60):
                raise ValueError(f"frame {t}: residual too large to code with quant_factor {self.quant_factor:g}")
            q[t] = r.astype(np.int64)
            pred = rec[t] = self._dequantise(pred, q[t], self.quant_factor)
        return q, rec

    @staticmethod
    def _dequantise(pred: np.ndarray, q: np.ndarray, factor: float) -> np.ndarray:
        return pred + q.astype(np.float64) / factor

    # ------------------------------------------------------------------ public API
    def quantize(
        self, motion: Mapping[str, Tensor], reference: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """Exactly what :meth:`decode` reconstructs from :meth:`encode`'s output, without the bit packing.

        Args:
            motion: batched motion dict (``N`` frames).
            reference: the predictor of the first frame (batch-1 dict, same keys), or None for zeros.

        Returns:
            dict of float32 tensors, same keys and shapes as ``motion``, on ``motion``'s device.
        """
        layout = MotionLayout.from_motion(motion)
        _, rec = self._closed_loop(layout.flatten(motion), self._predictor(layout, reference))
        return layout.unflatten(rec, device=next(iter(motion.values())).device)

    def encode(self, motion: Mapping[str, Tensor], reference: Mapping[str, Tensor] | None = None) -> MotionBitstream:
        """Code a sequence of motion features.

        Args:
            motion: batched motion dict, ``N`` frames (what the sender's ``extract_motion`` returns).
            reference: motion of the decoded reference frame (batch-1 dict, same keys) — the predictor of the
                first frame; None predicts zeros.

        Returns:
            :class:`MotionBitstream` with ``N`` packets.
        """
        layout = MotionLayout.from_motion(motion)
        q, _ = self._closed_loop(layout.flatten(motion), self._predictor(layout, reference))
        packets, code_bits = [], []
        for row in q:
            data, nbits = encode_exp_golomb(row, self.eg_order)
            packets.append(data)
            code_bits.append(nbits)
        header = _encode_header(layout, self.quant_factor, self.eg_order)
        return MotionBitstream(packets, layout, self.quant_factor, self.eg_order, header, code_bits)

    def decode(self, bitstream: MotionBitstream, reference: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Decode a bitstream; only its bytes are read (:attr:`MotionBitstream.header` and the packets).

        The session header decides the layout, factor and order (a stream coded by another codec instance
        decodes the same).

        Args:
            bitstream: from :meth:`encode` (or rebuilt from received bytes with :meth:`from_bytes`).
            reference: the same predictor the sender used (motion of the decoded reference), or None.

        Returns:
            dict of float32 CPU tensors ``(N, *shape)`` per key.

        Raises:
            ValueError: a corrupt header or packet (names the frame).
        """
        return self.decode_packets(bitstream.header, bitstream.packets, reference)

    @staticmethod
    def decode_packets(header: bytes, packets: Sequence[bytes],
                       reference: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Decode received bytes: the session ``header`` and one packet per frame.

        Args:
            header: :attr:`MotionBitstream.header`.
            packets: frame packets in order.
            reference: the predictor of the first frame, or None.

        Returns:
            dict of float32 CPU tensors ``(N, *shape)`` per key.
        """
        layout, factor, k = _decode_header(header)
        v = layout.values_per_frame
        pred = MotionCodec._predictor(layout, reference)
        rec = np.zeros((len(packets), v), np.float64)
        for t, packet in enumerate(packets):
            q = decode_exp_golomb(packet, v, k, what=f"motion packet of frame {t}")
            pred = rec[t] = MotionCodec._dequantise(pred, q, factor)
        return layout.unflatten(rec)

    @staticmethod
    def from_bytes(header: bytes, packets: Sequence[bytes]) -> MotionBitstream:
        """Rebuild a :class:`MotionBitstream` from received bytes (the header is parsed and checked)."""
        layout, factor, k = _decode_header(header)
        return MotionBitstream([bytes(p) for p in packets], layout, factor, k, bytes(header))
