"""The motion-feature bitstream (lab/codec/motion.py) and its exp-Golomb codes (lab/codec/bits.py): closed-loop
quantisation, packets, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lab.codec.bits import (
    BitReader,
    BitWriter,
    decode_exp_golomb,
    encode_exp_golomb,
    exp_golomb_bits,
    signed_to_unsigned,
    unsigned_to_signed,
)
from lab.codec.motion import MotionBitstream, MotionCodec, MotionLayout


def _bits(w: BitWriter) -> str:
    """The bits written so far as a '0'/'1' string (padding dropped)."""
    data = w.getvalue()
    return "".join(f"{b:08b}" for b in data)[: len(w)]


def _fomm_motion(n: int, seed: int = 0, step: float = 0.01) -> dict[str, torch.Tensor]:
    """A random walk in FOMM's layout: 10 keypoints (N, 10, 2) and Jacobians (N, 10, 2, 2)."""
    g = torch.Generator().manual_seed(seed)
    value = torch.randn(n, 10, 2, generator=g).mul(step).cumsum(0).clamp(-1, 1)
    jac = torch.eye(2).expand(n, 10, 2, 2) + torch.randn(n, 10, 2, 2, generator=g).mul(step).cumsum(0)
    return {"value": value, "jacobian": jac.contiguous()}


# ---------------------------------------------------------------------------------------------- exp-Golomb


def test_exp_golomb_codes_match_the_standard_tables():
    # ue(v), order 0 (H.264 9.1): 0 -> 1, 1 -> 010, 2 -> 011, 3 -> 00100, 7 -> 0001000
    for n, code in [(0, "1"), (1, "010"), (2, "011"), (3, "00100"), (6, "00111"), (7, "0001000")]:
        w = BitWriter()
        w.write_ue(n)
        assert _bits(w) == code, n
    # se(v) (H.264 9.1.1): 0, 1, -1, 2, -2 are ue 0, 1, 2, 3, 4
    for v, code in [(0, "1"), (1, "010"), (-1, "011"), (2, "00100"), (-2, "00101")]:
        w = BitWriter()
        w.write_se(v)
        assert _bits(w) == code, v
    # order 1: 0 -> 10, 1 -> 11, 2 -> 0100, 5 -> 0111, 6 -> 001000
    for n, code in [(0, "10"), (1, "11"), (2, "0100"), (5, "0111"), (6, "001000")]:
        w = BitWriter()
        w.write_ue(n, 1)
        assert _bits(w) == code, n


def _eg_samples(signed: bool) -> list[int]:
    """0 and every small value, both sides of each power of two up to 2**61 (the reader's longest prefix is 62
    zeros), and random 40-bit values."""
    rng = np.random.default_rng(1 + signed)
    edges = [2**e + d for e in range(8, 61) for d in (-1, 0, 1)]
    if not signed:
        return [*range(300), *edges, *map(int, rng.integers(0, 2**40, 200))]
    return [*range(-150, 151), *edges, *(-x for x in edges), *map(int, rng.integers(-(2**40), 2**40, 200))]


def test_exp_golomb_is_bit_exact_against_bitstring():
    """Every code against bitstring's ``ue``/``se`` (an independent H.264 9.1 implementation), whole streams both
    ways, and order k > 0 as bitstring's ``ue`` of ``n >> k`` followed by the k low bits of ``n`` (the definition
    of the order-k code: ``n + 2**k`` in binary after as many zeros as it has bits beyond k + 1)."""
    from bitstring import BitArray, Bits

    for n in _eg_samples(signed=False):
        w = BitWriter()
        w.write_ue(n)
        assert _bits(w) == Bits(ue=n).bin, n
        assert BitReader(Bits(ue=n).tobytes()).read_ue() == n
    values = _eg_samples(signed=True)
    for v in values:
        w = BitWriter()
        w.write_se(v)
        assert _bits(w) == Bits(se=v).bin, v
    ref = BitArray().join(Bits(se=v) for v in values)
    data, nbits = encode_exp_golomb(values)
    assert nbits == len(ref) and data == ref.tobytes()  # tobytes pads with zero bits, as getvalue does
    np.testing.assert_array_equal(decode_exp_golomb(ref.tobytes(), len(values)), values)
    for k in (1, 2, 5):
        for n in _eg_samples(signed=False)[:: 7]:
            w = BitWriter()
            w.write_ue(n, k)
            assert _bits(w) == (Bits(ue=n >> k) + Bits(uint=n & ((1 << k) - 1), length=k)).bin, (n, k)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_exp_golomb_round_trip_random_integers(k):
    rng = np.random.default_rng(k)
    values = np.concatenate([
        rng.integers(-5, 6, 500),  # the usual small residuals
        rng.integers(-(2**20), 2**20, 200),
        np.array([0, 1, -1, 2**40, -(2**40), 2**59 - 1, -(2**59)]),  # large values, both signs
    ])
    rng.shuffle(values)
    data, nbits = encode_exp_golomb(values, k)
    assert nbits == int(exp_golomb_bits(values, k).sum())  # lengths follow 2*floor(log2(n + 2^k)) + 1 - k
    assert len(data) == -(-nbits // 8)  # padded to whole bytes, no more
    np.testing.assert_array_equal(decode_exp_golomb(data, len(values), k), values)


def test_signed_mapping_is_a_bijection():
    v = np.arange(-1000, 1001)
    n = signed_to_unsigned(v)
    assert sorted(n.tolist()) == list(range(2001))
    np.testing.assert_array_equal(unsigned_to_signed(n), v)


def test_bit_reader_refuses_truncated_and_trailing_data():
    data, _ = encode_exp_golomb([5, -3, 0, 12])
    with pytest.raises(ValueError, match="truncated"):
        decode_exp_golomb(data[:-1], 4)
    with pytest.raises(ValueError, match="left after the last code"):
        decode_exp_golomb(data + b"\x00", 4)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        decode_exp_golomb(b"\x00\x00", 1)  # a prefix that never ends
    w = BitWriter()
    w.write_se(0)  # 1 bit, then 7 padding bits that must be zero
    assert decode_exp_golomb(w.getvalue(), 1).tolist() == [0]
    with pytest.raises(ValueError, match="non-zero padding"):
        decode_exp_golomb(bytes([w.getvalue()[0] | 1]), 1)
    r = BitReader(b"\xff")
    assert r.read(3) == 7 and r.bits_left == 5
    with pytest.raises(ValueError, match="truncated"):
        r.read(6)


# ---------------------------------------------------------------------------------------------- layout


def test_layout_flattens_in_sorted_key_order():
    m = {"value": torch.arange(6.0).reshape(1, 3, 2), "jacobian": torch.arange(100.0, 104.0).reshape(1, 1, 2, 2)}
    layout = MotionLayout.from_motion(m)
    assert layout.keys == ("jacobian", "value") and layout.values_per_frame == 10
    np.testing.assert_array_equal(layout.flatten(m)[0], [100, 101, 102, 103, 0, 1, 2, 3, 4, 5])
    back = layout.unflatten(layout.flatten(m))
    assert all(torch.equal(back[k], m[k]) for k in m)
    with pytest.raises(ValueError, match="keys"):
        layout.flatten({"value": m["value"]})
    with pytest.raises(ValueError, match="non-finite"):
        layout.flatten({"value": m["value"] * float("nan"), "jacobian": m["jacobian"]})


# ---------------------------------------------------------------------------------------------- codec


def test_decode_of_encode_is_exactly_quantize():
    motion = _fomm_motion(40, seed=1)
    reference = {k: v[:1] + 0.05 for k, v in _fomm_motion(1, seed=2).items()}
    codec = MotionCodec(quant_factor=64)
    stream = codec.encode(motion, reference)
    decoded = codec.decode(stream, reference)
    expected = codec.quantize(motion, reference)
    assert set(decoded) == set(motion)
    for k in motion:
        assert decoded[k].dtype == torch.float32 and decoded[k].shape == motion[k].shape
        assert torch.equal(decoded[k], expected[k])
    assert stream.num_frames == 40 and len(stream.frame_bits) == 40


def test_closed_loop_prediction_does_not_drift():
    factor = 64.0
    motion = _fomm_motion(600, seed=3, step=0.013)
    codec = MotionCodec(quant_factor=factor)
    decoded = codec.decode(codec.encode(motion))
    bound = 0.5 / factor + 1e-6  # float32 output rounding
    for k in motion:
        err = (decoded[k] - motion[k]).abs().max().item()
        assert err <= bound, (k, err)
    # the same residuals against the previous *original* frame (open loop) do drift past the bound:
    # the sequence is hard enough for the test above to mean something
    x = MotionLayout.from_motion(motion).flatten(motion)
    q = np.rint(np.diff(x, axis=0, prepend=0.0) * factor) / factor
    assert np.abs(np.cumsum(q, axis=0) - x).max() > bound


def test_bits_grow_with_the_quantisation_factor():
    motion = _fomm_motion(50, seed=4)
    totals = [MotionCodec(quant_factor=f).encode(motion).total_bits for f in (4, 16, 64, 256, 1024)]
    assert all(a < b for a, b in zip(totals, totals[1:])), totals
    errors = []
    for f in (4, 64, 1024):
        codec = MotionCodec(quant_factor=f)
        errors.append(max((codec.quantize(motion)[k] - motion[k]).abs().max().item() for k in motion))
    assert errors[0] > errors[1] > errors[2]


def test_zero_residuals_cost_one_bit_per_value_and_static_costs_nothing():
    motion = _fomm_motion(1, seed=5)
    still = {k: v.expand(7, *v.shape[1:]).contiguous() for k, v in motion.items()}
    stream = MotionCodec().encode(still, reference=motion)  # predictor = the same features: every residual is 0
    assert stream.code_bits == [60] * 7 and stream.frame_bits == [64] * 7  # 60 one-bit codes -> 8 bytes
    assert stream.kbps(25) == pytest.approx(7 * 64 / 1000 / (7 / 25))

    static = {"empty": torch.zeros(9, 0)}
    s = MotionCodec().encode(static)
    assert s.frame_bits == [0] * 9 and s.total_bits == 0 and s.kbps(25) == 0.0
    assert s.header_bits > 0  # the session header is counted apart
    out = MotionCodec().decode(s)
    assert out["empty"].shape == (9, 0)


def test_header_is_sent_once_and_drives_the_decoder():
    motion = _fomm_motion(12, seed=6)
    stream = MotionCodec(quant_factor=32, eg_order=1).encode(motion)
    assert stream.total_bits == sum(8 * len(p) for p in stream.packets)  # header not included
    received = MotionCodec.from_bytes(stream.header, stream.packets)
    assert received.layout == stream.layout and received.quant_factor == 32 and received.eg_order == 1
    a = MotionCodec().decode(received)  # another instance's settings do not matter: the header decides
    b = MotionCodec(quant_factor=32, eg_order=1).quantize(motion)
    assert all(torch.equal(a[k], b[k]) for k in motion)
    with pytest.raises(ValueError, match="magic"):
        MotionCodec.decode_packets(b"XXXX" + stream.header[4:], stream.packets)
    with pytest.raises(ValueError):
        MotionCodec.decode_packets(stream.header[:-3], stream.packets)


def test_corrupted_or_truncated_packets_raise_value_error():
    motion = _fomm_motion(5, seed=7)
    codec = MotionCodec()
    stream = codec.encode(motion)
    packets = list(stream.packets)

    def decode_with(i, packet):
        p = list(packets)
        p[i] = packet
        return codec.decode(MotionBitstream(p, stream.layout, 64.0, 0, stream.header))

    with pytest.raises(ValueError, match="frame 2.*truncated"):
        decode_with(2, packets[2][:-2])
    with pytest.raises(ValueError, match="frame 3"):
        decode_with(3, packets[3] + b"\x80")
    with pytest.raises(ValueError, match="frame 0"):
        decode_with(0, bytes(len(packets[0])))
    with pytest.raises(ValueError, match="frame 1"):
        decode_with(1, b"")
    # a single bit flip is either detected or decodes to different features, never to the same ones
    clean = codec.decode(stream)
    rng = np.random.default_rng(0)
    for _ in range(40):
        i = int(rng.integers(len(packets)))
        pos = int(rng.integers(8 * len(packets[i])))
        flipped = bytearray(packets[i])
        flipped[pos // 8] ^= 0x80 >> (pos % 8)
        try:
            out = decode_with(i, bytes(flipped))
        except ValueError:
            continue
        assert any(not torch.equal(out[k], clean[k]) for k in clean)


def test_reference_must_match_the_layout():
    motion = _fomm_motion(3)
    codec = MotionCodec()
    with pytest.raises(ValueError, match="one frame"):
        codec.encode(motion, reference=motion)
    with pytest.raises(ValueError, match="keys"):
        codec.encode(motion, reference={"value": motion["value"][:1]})
    with pytest.raises(ValueError, match="quant_factor"):
        MotionCodec(quant_factor=0)


def test_codes_an_animators_real_motion_within_the_bound():
    from datasets.demo import demo_driving
    from lab import create_animator
    from lab.core.animate import to_tensor

    torch.manual_seed(0)
    model = create_animator("ultralight").eval()
    frames = to_tensor(demo_driving(4))
    with torch.no_grad():
        motion = model.extract_motion(frames[1:])
        reference = model.extract_motion(frames[:1])
    stream = MotionCodec().encode(motion, reference)
    assert stream.layout.values_per_frame == 60  # 10 keypoints x 2 + 10 Jacobians x 4
    assert all(b >= 64 for b in stream.frame_bits)  # at least one bit per value, whole bytes
    decoded = MotionCodec().decode(stream, reference)
    for k in motion:
        assert (decoded[k] - motion[k]).abs().max().item() <= 0.5 / 64 + 1e-6


def test_a_sequence_with_no_frames_codes_to_nothing():
    # e.g. a sender whose quality gate rejected every frame
    empty = {k: v[:0] for k, v in _fomm_motion(2).items()}
    stream = MotionCodec().encode(empty, reference={k: v[:1] for k, v in _fomm_motion(2).items()})
    assert stream.num_frames == 0 and stream.total_bits == 0 and stream.kbps(25) == 0.0
    out = MotionCodec().decode(stream)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"value": (0, 10, 2), "jacobian": (0, 10, 2, 2)}
