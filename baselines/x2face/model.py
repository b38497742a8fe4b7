"""X2Face's face-to-face model: ``UnwrappedFaceWeightedAverage``.

X2Face: Wiles, Koepke, Zisserman, "X2Face: A network for controlling face generation using images, audio,
and pose codes", ECCV 2018. Re-implemented from the facts of the official code, oawiles/X2Face @
cecfbfaa4c820293cbbb1978c3ddb247f67f3af8 (``UnwrapMosaic/UnwrappedFace.py``); state_dict keys, shapes and
outputs equal the official module's (``/work/shared/spec/baselines/README.md`` §3).

Forward, ``model(driving, *sources)``, all images ``(B, 3, 256, 256)`` in [0, 1]:

1. **Embedding** per source ``s``: ``t = pix2pixUnwrapped(s)[0]`` (3 raw channels);
   ``warped = grid_sample(s, tanh(t[:, :2]) + xs)`` and ``confidence = exp(t[:, 2:3]) + 0.1``;
   the embedded face is ``Σ confidence·warped / Σ confidence`` over the sources.
2. **Driving**: ``f = pix2pixSampler(driving)[0]`` (2 channels, already ``tanh``-ed by the network);
   output ``= grid_sample(embedded, tanh(f) + xs)`` (``tanh`` applied a second time, as the official code).

``xs`` is the identity grid, ``meshgrid(linspace(-1, 1, 256))`` in ``[x, y]`` order; every ``grid_sample``
is bilinear, zero padding, ``align_corners=True`` (pytorch 0.2 semantics, which the weights need).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.x2face.networks import Pix2PixNet, driving_network, embedding_network

__all__ = ["UnwrappedFaceWeightedAverage", "identity_grid"]

#: added to every source's confidence in ``forward`` (not in the official ``get_unwrapped``)
CONFIDENCE_EPS = 0.1


def identity_grid(size: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """The official ``xs``: ``np.stack(np.meshgrid(linspace(-1,1,n), linspace(-1,1,n)), 2)`` as float32.

    Computed in float64 and rounded once, as numpy → ``torch.Tensor`` does.

    Returns:
        ``(1, n, n, 2)`` with ``[..., 0] = x`` (varies along columns) and ``[..., 1] = y``.
    """
    lin = torch.linspace(-1.0, 1.0, size, dtype=torch.float64)
    y, x = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([x, y], 2).unsqueeze(0).to(device=device, dtype=dtype)


def _sample(image: Tensor, grid: Tensor) -> Tensor:
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


class UnwrappedFaceWeightedAverage(nn.Module):
    """X2Face driven by a face: embedding network + driving network (official class name and key layout).

    Args:
        output_num_channels: driving-network output channels; only the released 2-channel (deterministic)
            variant is implemented (the official >2-channel variant samples random offsets).
        input_num_channels: driving-frame channels.
        inner_nc: driving-network bottleneck channels. The official class defaults to 512, but its demo,
            training script and released ``x2face_model.pth`` all use 128, which is the default here.
    """

    def __init__(self, output_num_channels: int = 2, input_num_channels: int = 3, inner_nc: int = 128) -> None:
        super().__init__()
        if output_num_channels != 2:
            raise ValueError(
                f"output_num_channels={output_num_channels}: only the 2-channel X2Face (released model) is "
                "implemented; the stochastic variant with a standard-deviation output is not"
            )
        self.inner_nc = inner_nc
        self.pix2pixUnwrapped: Pix2PixNet = embedding_network(3, 3)
        self.pix2pixSampler: Pix2PixNet = driving_network(input_num_channels, output_num_channels, inner_nc)

    # ------------------------------------------------------------------ embedding (server, once per source)
    def _embed(self, input_imgs: tuple[Tensor, ...], eps: float) -> tuple[Tensor, Tensor]:
        if not input_imgs:
            raise ValueError("at least one source image is needed")
        xs = identity_grid(input_imgs[0].shape[2], input_imgs[0].device, input_imgs[0].dtype)
        warped, confidence = [], []
        for img in input_imgs:
            t = self.pix2pixUnwrapped(img)[0]
            conf = t[:, 2:3].exp()
            if eps:
                conf = conf + eps
            grid = torch.tanh(t[:, 0:2]).permute(0, 2, 3, 1) + xs
            warped.append(_sample(img, grid) * conf)
            confidence.append(conf)
        confidences = torch.stack(confidence, 4)  # (B, 1, H, W, n)
        embedded = torch.stack(warped, 4).sum(4) / confidences.sum(4)
        return embedded, confidences

    def embed(self, *input_imgs: Tensor) -> tuple[Tensor, Tensor]:
        """The embedded face exactly as ``forward`` computes it (confidence ``exp + 0.1``).

        Args:
            *input_imgs: one or more ``(B, 3, H, W)`` source images in [0, 1].

        Returns:
            ``(embedded (B, 3, H, W), confidences (B, 1, H, W, n_sources))``.
        """
        return self._embed(input_imgs, CONFIDENCE_EPS)

    def get_unwrapped(self, *input_imgs: Tensor) -> tuple[Tensor, Tensor]:
        """The official ``get_unwrapped``: like :meth:`embed` but with confidence ``exp`` (no ``+ 0.1``).

        Returns:
            ``(embedded (B, 3, H, W), confidences (B, 1, H, W, n_sources))``.
        """
        return self._embed(input_imgs, 0.0)

    def get_unwrapped_oneimage(self, input_img: Tensor) -> Tensor:
        """One source warped into the embedding, without confidence weighting: ``(B, 3, H, W)``."""
        t = self.pix2pixUnwrapped(input_img)[0]
        xs = identity_grid(input_img.shape[2], input_img.device, input_img.dtype)
        return _sample(input_img, torch.tanh(t[:, 0:2]).permute(0, 2, 3, 1) + xs)

    # ------------------------------------------------------------------ driving (sender encoder / server decoder)
    def encode_driving(self, frames: Tensor) -> Tensor:
        """Sender side: the driving network's down path.

        Args:
            frames: ``(N, 3, 256, 256)`` in [0, 1].

        Returns:
            the bottleneck ``(N, inner_nc, 1, 1)`` (rectified; ``== pix2pixSampler(frames)[1]``).
        """
        return self.pix2pixSampler.encode(frames)

    def decode_driving(self, bottleneck: Tensor) -> Tensor:
        """Server side: the driving network's up path; ``decode_driving(encode_driving(x)) == pix2pixSampler(x)[0]``.

        Args:
            bottleneck: ``(N, inner_nc, 1, 1)``.

        Returns:
            the 2-channel field ``(N, 2, 256, 256)`` in (-1, 1).
        """
        return self.pix2pixSampler.decode(bottleneck)

    def get_sampler(self, target_pose: Tensor) -> Tensor:
        """The official ``get_sampler``: the sampling grid ``tanh(pix2pixSampler(pose)[0]) + xs``, ``(B, H, W, 2)``."""
        return self.field_to_grid(self.pix2pixSampler(target_pose)[0])

    @staticmethod
    def field_to_grid(field: Tensor) -> Tensor:
        """``(B, 2, H, W)`` driving-network output → ``(B, H, W, 2)`` grid ``tanh(field) + xs``."""
        xs = identity_grid(field.shape[2], field.device, field.dtype)
        return torch.tanh(field).permute(0, 2, 3, 1) + xs

    def sample(self, embedded: Tensor, field: Tensor) -> Tensor:
        """Warp the embedded face with a driving field.

        Args:
            embedded: ``(B or 1, 3, H, W)`` from :meth:`embed` (a batch of 1 is broadcast).
            field: ``(B, 2, H, W)`` from the driving network.

        Returns:
            ``(B, 3, H, W)``.
        """
        if embedded.shape[0] != field.shape[0]:
            embedded = embedded.expand(field.shape[0], *embedded.shape[1:])
        return _sample(embedded, self.field_to_grid(field))

    def forward(self, target_pose: Tensor, *input_imgs: Tensor) -> Tensor:
        """Animate the source(s) with the driving frame.

        Args:
            target_pose: the driving frame ``(B, 3, 256, 256)`` in [0, 1].
            *input_imgs: one or more source frames ``(B, 3, 256, 256)`` in [0, 1] (batch 1 is broadcast).

        Returns:
            the generated frame ``(B, 3, 256, 256)`` (a tensor, as the official 2-channel model returns).
        """
        embedded, _ = self.embed(*input_imgs)
        return self.sample(embedded, self.pix2pixSampler(target_pose)[0])
