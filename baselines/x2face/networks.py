"""The two U-Nets of X2Face: the embedding network (with skips) and the driving network (without).

X2Face: Wiles, Koepke, Zisserman, "X2Face: A network for controlling face generation using images, audio,
and pose codes", ECCV 2018. Re-implemented from the facts of the official code, oawiles/X2Face @
cecfbfaa4c820293cbbb1978c3ddb247f67f3af8 (``UnwrapMosaic/SkipNet.py``, ``UnwrapMosaic/NoSkipNet_X2Face.py``),
so that its ``x2face_model.pth`` loads with the same state_dict keys and gives the same outputs.

Both networks are a pix2pix-style "unet_256" generator (ngf=64, 8 down-samplings, BatchNorm, no dropout,
no conv biases) whose levels nest as ``netG.model.submodule.submodule…`` (outermost first). One level:

* ``down`` = ``[LeakyReLU(0.2), Conv4x4/s2, BN]`` (outermost: ``[Conv]`` only; innermost: no BN);
* ``up`` = ``[ReLU, Upsample(x2, bilinear, align_corners=True), Conv3x3, BN]`` (outermost: no BN, plus a
  ``Tanh`` in the driving network only);
* skip variant: the level's output is ``cat([up(...), level input], 1)`` (all but the outermost level).

Each network returns ``(output, bottleneck)``; the bottleneck is the innermost ``down`` output **after**
the ReLU that starts the innermost ``up`` (the official code applies that ReLU in place, so the tensor it
returns is already rectified). The pytorch-0.2 semantics the official weights were trained with are kept:
bilinear up-sampling with ``align_corners=True``.

The official code applies its LeakyReLUs in place, which also rectifies the skip tensors; every skip is
consumed by the parent's ``up``, which starts with a ReLU, and ``relu(leaky_relu(x)) == relu(x)`` exactly,
so the out-of-place blocks here give identical values (and gradients almost everywhere).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["UNetBlock", "UNetGenerator", "Pix2PixNet", "embedding_network", "driving_network", "init_weights"]


def _upsample() -> nn.Module:
    # pytorch 0.2's bilinear nn.Upsample behaved like align_corners=True (spec §0)
    return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)


def _conv_down(in_nc: int, out_nc: int) -> nn.Conv2d:
    return nn.Conv2d(in_nc, out_nc, kernel_size=4, stride=2, padding=1, bias=False)


def _conv_up(in_nc: int, out_nc: int) -> nn.Conv2d:
    return nn.Conv2d(in_nc, out_nc, kernel_size=3, stride=1, padding=1, bias=False)


class UNetBlock(nn.Module):
    """One level of the U-Net, holding the next-inner level as ``submodule``.

    Sub-modules are registered as ``up``, ``down``, ``submodule`` (the official state_dict order).

    Args:
        outer_nc: channels this level hands back to its parent (before the skip concatenation).
        inner_nc: channels after this level's down convolution.
        input_nc: channels of this level's input; defaults to ``outer_nc`` (differs at the outermost level).
        submodule: the next-inner level; None for the innermost level.
        outermost: first/last level: down is a bare conv, up has no BatchNorm.
        innermost: the bottleneck level: no BatchNorm after its down conv.
        skip: concatenate the level input to its output (embedding network); False for the driving network.
        final_tanh: end the outermost up path with ``Tanh`` (driving network).
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: UNetBlock | None = None,
        outermost: bool = False,
        innermost: bool = False,
        skip: bool = True,
        final_tanh: bool = False,
    ) -> None:
        super().__init__()
        if innermost == (submodule is not None):
            raise ValueError("the innermost level (and only it) has no submodule")
        self.outermost = outermost
        self.innermost = innermost
        self.skip = skip
        input_nc = outer_nc if input_nc is None else input_nc
        # what the up path receives: the inner level's output, doubled when that level concatenates its skip
        up_in = inner_nc * 2 if (skip and not innermost) else inner_nc
        if outermost:
            up: list[nn.Module] = [nn.ReLU(), _upsample(), _conv_up(up_in, outer_nc)]
            if final_tanh:
                up.append(nn.Tanh())
            down: list[nn.Module] = [_conv_down(input_nc, inner_nc)]
        elif innermost:
            up = [nn.ReLU(), _upsample(), _conv_up(up_in, outer_nc), nn.BatchNorm2d(outer_nc)]
            down = [nn.LeakyReLU(0.2), _conv_down(input_nc, inner_nc)]
        else:
            up = [nn.ReLU(), _upsample(), _conv_up(up_in, outer_nc), nn.BatchNorm2d(outer_nc)]
            down = [nn.LeakyReLU(0.2), _conv_down(input_nc, inner_nc), nn.BatchNorm2d(inner_nc)]
        self.up = nn.Sequential(*up)
        self.down = nn.Sequential(*down)
        self.submodule = submodule

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Run this level and everything inside it.

        Args:
            x: ``(B, input_nc, h, w)``.

        Returns:
            ``(y, bottleneck)``: y is ``(B, outer_nc, h, w)``, or ``(B, 2*outer_nc, h, w)`` when the level
            concatenates its skip; bottleneck is the rectified innermost code ``(B, C, h/2^k, w/2^k)``.
        """
        h = self.down(x)
        if self.submodule is None:
            bottleneck = torch.relu(h)  # the official in-place ReLU of up[0] rectifies the returned code
            y = self.up(bottleneck)
        else:
            y, bottleneck = self.submodule(h)
            y = self.up(y)
        if self.skip and not self.outermost:
            y = torch.cat([y, x], 1)
        return y, bottleneck


class UNetGenerator(nn.Module):
    """The "unet_256" generator: ``num_downs`` nested :class:`UNetBlock` levels under ``model``.

    Channels from the outermost level inwards: ``input_nc → ngf → 2ngf → 4ngf → 8ngf → … → 8ngf → inner_nc``.

    Args:
        input_nc: image channels in.
        output_nc: channels out.
        num_downs: number of stride-2 levels (8 → a 1x1 bottleneck at 256x256).
        ngf: channels of the outermost level.
        inner_nc: bottleneck channels (the innermost level's down conv output).
        skip: U-Net skip concatenation.
        final_tanh: Tanh on the output.
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        num_downs: int = 8,
        ngf: int = 64,
        inner_nc: int = 512,
        skip: bool = True,
        final_tanh: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5, got {num_downs}")
        block = UNetBlock(ngf * 8, inner_nc, innermost=True, skip=skip)
        for _ in range(num_downs - 5):
            block = UNetBlock(ngf * 8, ngf * 8, submodule=block, skip=skip)
        block = UNetBlock(ngf * 4, ngf * 8, submodule=block, skip=skip)
        block = UNetBlock(ngf * 2, ngf * 4, submodule=block, skip=skip)
        block = UNetBlock(ngf, ngf * 2, submodule=block, skip=skip)
        block = UNetBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, skip=skip, final_tanh=final_tanh
        )
        self.model = block

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.model(x)

    def levels(self) -> list[UNetBlock]:
        """The levels from the outermost to the innermost."""
        out = []
        block: UNetBlock | None = self.model
        while block is not None:
            out.append(block)
            block = block.submodule
        return out


class Pix2PixNet(nn.Module):
    """A U-Net wrapped as ``netG`` (the official ``Pix2PixModel`` key layout): ``net(x) -> (output, bottleneck)``.

    Args:
        input_nc: image channels in.
        output_nc: channels out.
        inner_nc: bottleneck channels.
        skip: U-Net skip concatenation (embedding network) or none (driving network).
        final_tanh: Tanh on the output.
    """

    def __init__(
        self, input_nc: int, output_nc: int, inner_nc: int = 512, skip: bool = True, final_tanh: bool = False
    ) -> None:
        super().__init__()
        self.skip = skip
        self.netG = UNetGenerator(input_nc, output_nc, 8, 64, inner_nc=inner_nc, skip=skip, final_tanh=final_tanh)
        init_weights(self)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Args:
            x: ``(B, input_nc, 256, 256)``.

        Returns:
            ``(output (B, output_nc, 256, 256), bottleneck (B, inner_nc, 1, 1))``.
        """
        return self.netG(x)

    # ------------------------------------------------------------------ codec split (no-skip variant)
    def down_path(self) -> nn.ModuleList:
        """The ``down`` sequentials, outermost first (an unregistered view; the modules are shared)."""
        return nn.ModuleList([lvl.down for lvl in self.netG.levels()])

    def up_path(self) -> nn.ModuleList:
        """The ``up`` sequentials, innermost first (an unregistered view; the modules are shared)."""
        return nn.ModuleList([lvl.up for lvl in reversed(self.netG.levels())])

    def _check_no_skip(self) -> None:
        if self.skip:
            raise RuntimeError("a U-Net with skip connections cannot be split at its bottleneck")

    def encode(self, x: Tensor) -> Tensor:
        """The down path alone: ``encode(x) == self(x)[1]`` bit for bit.

        Args:
            x: ``(B, input_nc, 256, 256)``.

        Returns:
            the rectified bottleneck ``(B, inner_nc, 1, 1)``.
        """
        self._check_no_skip()
        for down in self.down_path():
            x = down(x)
        return torch.relu(x)

    def decode(self, bottleneck: Tensor) -> Tensor:
        """The up path alone: ``decode(encode(x)) == self(x)[0]`` bit for bit (no skips to carry).

        Args:
            bottleneck: ``(B, inner_nc, 1, 1)``.

        Returns:
            ``(B, output_nc, 256, 256)``.
        """
        self._check_no_skip()
        y = bottleneck
        for up in self.up_path():
            y = up(y)
        return y


def embedding_network(input_nc: int = 3, output_nc: int = 3) -> Pix2PixNet:
    """The embedding network (``pix2pixUnwrapped``): skip U-Net, raw 3-channel output (2 flow + 1 confidence)."""
    return Pix2PixNet(input_nc, output_nc, inner_nc=512, skip=True, final_tanh=False)


def driving_network(input_nc: int = 3, output_nc: int = 2, inner_nc: int = 128) -> Pix2PixNet:
    """The driving network (``pix2pixSampler``): no skips, ``inner_nc`` bottleneck, Tanh output."""
    return Pix2PixNet(input_nc, output_nc, inner_nc=inner_nc, skip=False, final_tanh=True)


@torch.no_grad()
def init_weights(net: nn.Module) -> None:
    """The official initialisation ("xavier" in ``define_G``).

    Conv weights: Xavier-normal, gain 1. BatchNorm: bias 0, weight ``init.uniform(w, 1.0, 0.02)``, which in
    pytorch 0.2 drew from U(0.02, 1.0) (bounds reversed; modern torch refuses reversed bounds, so the same
    distribution is drawn with the bounds in order).
    """
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_normal_(m.weight, gain=1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.02, 1.0)
            m.bias.zero_()
