"""Bit I/O and exp-Golomb codes: MSB-first bit writer/reader, H.264's ``ue(v)``/``se(v)`` of any order ``k``.

* :class:`BitWriter` appends bits most significant first; :meth:`BitWriter.getvalue` pads the last byte with
  zero bits. :class:`BitReader` reads them back and raises :class:`ValueError` (naming what it reads) on every
  read past the end, a code with an impossibly long zero prefix (:data:`MAX_PREFIX_ZEROS`) or non-zero padding.
* **Exp-Golomb codes** of order ``k``: ``ue(v)`` writes ``z`` zeros, then ``n + 2**k`` in ``z + k + 1`` bits;
  ``se(v)`` first maps ``0, 1, -1, 2, -2, ... -> 0, 1, 2, 3, 4, ...`` (:func:`signed_to_unsigned`).
  :func:`encode_exp_golomb`/:func:`decode_exp_golomb` code whole arrays (the packets of
  :mod:`lab.codec.motion`); the ``bitstring`` package is the tests' cross-check.

Pure Python/numpy; no file I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "MAX_PREFIX_ZEROS",
    "BitWriter",
    "BitReader",
    "signed_to_unsigned",
    "unsigned_to_signed",
    "exp_golomb_bits",
    "encode_exp_golomb",
    "decode_exp_golomb",
]

#: refuse codes with a longer zero prefix (values beyond 2**62 cannot come from real features: corruption)
MAX_PREFIX_ZEROS = 62


class BitWriter:
    """Append bits MSB-first; :meth:`getvalue` pads the last byte with zero bits.

    >>> w = BitWriter()
    >>> w.write_ue(3)  # 00100
    >>> w.write_se(-1)  # se(-1) = ue(2) = 011
    >>> w.getvalue().hex(), len(w)
    ('23', 8)
    """

    def __init__(self) -> None:
        self._acc = 0
        self._n = 0

    def __len__(self) -> int:
        """Number of bits written so far (before padding)."""
        return self._n

    def write(self, value: int, nbits: int) -> None:
        """Write the ``nbits`` low bits of the non-negative ``value``, most significant first."""
        value, nbits = int(value), int(nbits)
        if nbits < 0 or value < 0 or value >> nbits:
            raise ValueError(f"cannot write {value} in {nbits} bits")
        self._acc = (self._acc << nbits) | value
        self._n += nbits

    def write_ue(self, n: int, k: int = 0) -> None:
        """Unsigned exp-Golomb code of order ``k``: ``z`` zeros, then ``n + 2**k`` in ``z + k + 1`` bits."""
        n = int(n)
        if n < 0:
            raise ValueError(f"ue(v) codes non-negative integers, got {n}")
        v = n + (1 << k)
        nb = v.bit_length()
        self.write(v, 2 * nb - 1 - k)  # the leading zeros come for free: v fits in its nb low bits

    def write_se(self, v: int, k: int = 0) -> None:
        """Signed exp-Golomb code of order ``k`` (``se(v)`` mapping, see :func:`signed_to_unsigned`)."""
        v = int(v)
        self.write_ue(2 * v - 1 if v > 0 else -2 * v, k)

    def write_bytes(self, data: bytes) -> None:
        """Write whole bytes (8 bits each)."""
        for b in data:
            self.write(b, 8)

    def getvalue(self) -> bytes:
        """The bits written, zero-padded to a whole number of bytes."""
        pad = -self._n % 8
        return (self._acc << pad).to_bytes((self._n + pad) // 8, "big")


class BitReader:
    """Read bits MSB-first from ``data``; every read past the end raises :class:`ValueError`.

    Args:
        data: the bytes to read.
        what: named in error messages (``"frame 12"``).
    """

    def __init__(self, data: bytes, what: str = "bitstream") -> None:
        self._data = bytes(data)
        self._val = int.from_bytes(self._data, "big")
        self._total = 8 * len(self._data)
        self._pos = 0
        self.what = what

    @property
    def position(self) -> int:
        """Bits consumed so far."""
        return self._pos

    @property
    def bits_left(self) -> int:
        """Bits not yet consumed (padding included)."""
        return self._total - self._pos

    def read(self, nbits: int) -> int:
        """The next ``nbits`` bits as a non-negative integer."""
        if nbits < 0:
            raise ValueError(f"cannot read {nbits} bits")
        if nbits > self.bits_left:
            raise ValueError(f"{self.what} is truncated: {nbits} bits needed at bit {self._pos}, "
                             f"{self.bits_left} left")
        self._pos += nbits
        return (self._val >> (self._total - self._pos)) & ((1 << nbits) - 1)

    def read_ue(self, k: int = 0) -> int:
        """Decode one unsigned exp-Golomb code of order ``k``."""
        left = self.bits_left
        rest = self._val & ((1 << left) - 1)
        if rest == 0:
            raise ValueError(f"{self.what} is truncated or corrupt: no exp-Golomb code at bit {self._pos} "
                             f"(only {left} zero bits left)")
        zeros = left - rest.bit_length()
        if zeros > MAX_PREFIX_ZEROS:
            raise ValueError(f"{self.what} is corrupt: exp-Golomb prefix of {zeros} zeros at bit {self._pos}")
        self._pos += zeros
        return self.read(zeros + k + 1) - (1 << k)

    def read_se(self, k: int = 0) -> int:
        """Decode one signed exp-Golomb code of order ``k``."""
        n = self.read_ue(k)
        return (n + 1) // 2 if n % 2 else -(n // 2)

    def read_bytes(self, n: int) -> bytes:
        """Read ``n`` whole bytes."""
        return bytes(self.read(8) for _ in range(n))

    def expect_end(self) -> None:
        """Require that only zero padding (fewer than 8 bits) is left."""
        left = self.bits_left
        if left >= 8:
            raise ValueError(f"{self.what} is corrupt: {left} bits left after the last code (padding is < 8)")
        if left and self.read(left):
            raise ValueError(f"{self.what} is corrupt: non-zero padding bits")


def signed_to_unsigned(v: np.ndarray | int) -> np.ndarray:
    """H.264's ``se(v)`` mapping ``0, 1, -1, 2, -2, ... -> 0, 1, 2, 3, 4, ...`` (int64 arrays)."""
    v = np.asarray(v, dtype=np.int64)
    return np.where(v > 0, 2 * v - 1, -2 * v)


def unsigned_to_signed(n: np.ndarray | int) -> np.ndarray:
    """Inverse of :func:`signed_to_unsigned`."""
    n = np.asarray(n, dtype=np.int64)
    return np.where(n % 2 == 1, (n + 1) // 2, -(n // 2))


def exp_golomb_bits(values: np.ndarray | Sequence[int], k: int = 0) -> np.ndarray:
    """Length in bits of the signed exp-Golomb code (order ``k``) of each value: ``2 * floor(log2(n + 2**k)) + 1 - k``.

    Args:
        values: integers (``|v| < 2**61``).
        k: exp-Golomb order.

    Returns:
        int64 array of the same shape.
    """
    n = signed_to_unsigned(values) + (1 << k)
    nb = np.zeros(n.shape, np.int64)
    m = n.copy()
    while np.any(m):  # exact integer bit length (float log2 rounds wrongly near powers of two)
        nb += m > 0
        m >>= 1
    return 2 * nb - 1 - k


def encode_exp_golomb(values: Sequence[int] | np.ndarray, k: int = 0) -> tuple[bytes, int]:
    """Signed exp-Golomb codes of order ``k`` of ``values``, concatenated.

    Args:
        values: integers (any sign).
        k: exp-Golomb order (``>= 0``).

    Returns:
        ``(data, nbits)``: the bytes (zero-padded to a byte boundary) and the number of code bits.
    """
    w = BitWriter()
    for v in np.asarray(values, dtype=np.int64).ravel().tolist():
        w.write_se(v, k)
    return w.getvalue(), len(w)


def decode_exp_golomb(data: bytes, count: int, k: int = 0, what: str = "bitstream") -> np.ndarray:
    """Decode ``count`` signed exp-Golomb codes of order ``k``; the rest of ``data`` must be zero padding.

    Raises:
        ValueError: truncated data, trailing data (a byte or more), non-zero padding or an overlong code.
    """
    r = BitReader(data, what)
    out = np.fromiter((r.read_se(k) for _ in range(count)), dtype=np.int64, count=count)
    r.expect_end()
    return out
