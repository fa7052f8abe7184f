"""conv2d and conv_transpose2d, NCHW, as torch.nn.functional.conv2d(input, weight, bias, stride, padding,
dilation, groups) and conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation).

Case layout (what every backend receives): input (N, C, H, W); weight (K, C/groups, R, S) for conv2d and
(C, K/groups, R, S) for conv_transpose2d, PyTorch's layouts; bias (K,) or None; padding symmetric per axis.
Options: stride, padding, dilation (and output_padding) along H; their *_w twins along W, -1 meaning "same as
along H" (so square cases read as before); groups splits C and K into that many independent convolutions.
How PyTorch-style arguments (pairs, padding="same"/"valid", unbatched input) become this layout: conv_args.py.
"""

from __future__ import annotations

import math

import numpy as np

from hetero.errors import HeteroError
from hetero.workloads.base import Case, Preset, Workload

_GPU = frozenset({"gpu"})
_QUICK = frozenset({"quick"})
PAIRED = ("stride", "padding", "dilation", "output_padding")  # options with a *_w twin


def out_size(n: int, r: int, stride: int, pad: int, dil: int) -> int:
    """Output length of a convolution along one axis (PyTorch's formula)."""
    return (n + 2 * pad - dil * (r - 1) - 1) // stride + 1


def out_size_transposed(n: int, r: int, stride: int, pad: int, dil: int, out_pad: int) -> int:
    """Output length of a transposed convolution along one axis (PyTorch's formula)."""
    return (n - 1) * stride - 2 * pad + dil * (r - 1) + out_pad + 1


def hw(p: dict, name: str) -> tuple[int, int]:
    """(along H, along W) of a paired option: name_w = -1 means the same as along H."""
    w = p.get(name + "_w", -1)
    return p[name], (p[name] if w == -1 else w)


def _conv(*, N, C, H, W, K, R, S, stride=1, padding=0, dilation=1, **opts):
    return dict(N=N, C=C, H=H, W=W, K=K, R=R, S=S, stride=stride, padding=padding, dilation=dilation, **opts)


class Conv2d(Workload):
    name = "conv2d"
    dims = ("N", "C", "H", "W", "K", "R", "S")
    options = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "stride_w": -1, "padding_w": -1, "dilation_w": -1}
    description = "NCHW convolution: input (N, C, H, W), weight (K, C/groups, R, S) -> (N, K, P, Q)"
    presets = (
        Preset(
            "dcgan-d2",
            _conv(N=16, C=64, H=32, W=32, K=128, R=4, S=4, stride=2, padding=1),
            "DCGAN discriminator layer 2 (64 -> 128 channels, 4x4 stride 2)",
        ),
        Preset("resnet-3x3", _conv(N=8, C=64, H=56, W=56, K=64, R=3, S=3, padding=1), "ResNet-18/34 conv2_x 3x3 layer"),
        Preset(
            "deepbench-1x1", _conv(N=8, C=64, H=56, W=56, K=256, R=1, S=1), "DeepBench conv (56,56,64,8,256,1,1,0,1)"
        ),
        Preset(
            "deepbench-5x5",
            _conv(N=16, C=192, H=28, W=28, K=32, R=5, S=5, padding=2),
            "DeepBench conv (28,28,192,16,32,5,5,2,1)",
            frozenset({"extra"}),
        ),
        Preset(
            "deepbench-7x7x512",
            _conv(N=16, C=512, H=7, W=7, K=512, R=3, S=3, padding=1),
            "DeepBench conv (7,7,512,16,512,3,3,1,1)",
            frozenset({"extra", "gpu"}),
        ),
        Preset(
            "deepbench-224",
            _conv(N=16, C=3, H=224, W=224, K=64, R=3, S=3, padding=1),
            "DeepBench conv (224,224,3,16,64,3,3,1,1), first layer",
            _GPU,
        ),
        Preset(
            "resnet-3x3-b64",
            _conv(N=64, C=64, H=56, W=56, K=64, R=3, S=3, padding=1),
            "ResNet conv2_x at batch 64",
            _GPU,
        ),
        Preset(
            "quick-odd",
            _conv(N=2, C=3, H=11, W=13, K=5, R=3, S=3, stride=2, padding=1),
            "tiny, odd sizes, stride 2",
            frozenset({"quick"}),
        ),
        Preset(
            "quick-dilated",
            _conv(N=1, C=4, H=9, W=9, K=3, R=3, S=3, padding=2, dilation=2),
            "tiny, dilation 2",
            frozenset({"quick"}),
        ),
        Preset(
            "mobilenetv2-dw3x3",
            _conv(N=8, C=144, H=56, W=56, K=144, R=3, S=3, padding=1, groups=144),
            "MobileNetV2 depthwise 3x3 (expanded 24 -> 144 channels at 56x56), batch 8",
        ),
        Preset(
            "mobilenetv2-dw3x3-s2",
            _conv(N=8, C=96, H=112, W=112, K=96, R=3, S=3, stride=2, padding=1, groups=96),
            "MobileNetV2 depthwise 3x3 stride 2 (96 channels, 112x112)",
        ),
        Preset(
            "resnext50-32x4d",
            _conv(N=8, C=128, H=56, W=56, K=128, R=3, S=3, padding=1, groups=32),
            "ResNeXt-50 32x4d conv2 grouped 3x3: 32 groups of 4 channels, 56x56, batch 8",
        ),
        Preset(
            "gan-d1-wide",
            _conv(N=16, C=3, H=64, W=256, K=64, R=4, S=4, stride=2, padding=1, stride_w=4, padding_w=0),
            "GAN discriminator first layer on a 64x256 image, stride (2, 4)",
        ),
        Preset(
            "quick-depthwise",
            _conv(N=2, C=6, H=9, W=11, K=12, R=3, S=3, padding=1, groups=6),
            "tiny depthwise with channel multiplier 2",
            _QUICK,
        ),
        Preset(
            "quick-grouped-rect",
            _conv(
                N=1,
                C=6,
                H=12,
                W=10,
                K=4,
                R=3,
                S=2,
                stride=2,
                padding=1,
                dilation=1,
                groups=2,
                stride_w=1,
                padding_w=0,
                dilation_w=2,
            ),
            "tiny, 2 groups, stride (2, 1), padding (1, 0), dilation (1, 2)",
            _QUICK,
        ),
    )

    FEATURES = {"groups": "groups > 1", "rect": "different stride, padding, dilation or output_padding along H and W"}

    def features(self, p: dict) -> frozenset[str]:
        rect = any(p.get(k + "_w", -1) not in (-1, p[k]) for k in self.paired)
        return frozenset(k for k, v in {"groups": p.get("groups", 1) > 1, "rect": rect}.items() if v)

    def validate(self, p: dict) -> None:
        super().validate(p)
        for name in self.paired:
            lo = 0 if "padding" in name else 1
            if min(hw(p, name)) < lo or p.get(name + "_w", -1) < -1:
                raise HeteroError(
                    f"{self.name}: {name}={hw(p, name)} must be >= {lo} (along H, W; *_w=-1 is the same as along H)"
                )
        g = p.get("groups", 1)
        if g < 1 or p["C"] % g or p["K"] % g:
            raise HeteroError(f"{self.name}: groups={g} must be >= 1 and divide C={p['C']} and K={p['K']}")
        self._validate_out(p)

    def _validate_out(self, p: dict) -> None:
        if min(self.out_hw(p)) < 1:
            raise HeteroError(
                f"{self.name}: a {p['R']}x{p['S']} kernel (dilation {hw(p, 'dilation')}) does not "
                f"fit a {p['H']}x{p['W']} input with padding {hw(p, 'padding')}"
            )

    paired = ("stride", "padding", "dilation")

    def group_channels(self, p: dict) -> tuple[int, int]:
        """(input, output) channels of one group."""
        return p["C"] // max(p.get("groups", 1), 1), p["K"] // max(p.get("groups", 1), 1)

    def out_hw(self, p: dict) -> tuple[int, int]:
        (sh, sw), (ph, pw), (dh, dw) = (hw(p, k) for k in ("stride", "padding", "dilation"))
        return out_size(p["H"], p["R"], sh, ph, dh), out_size(p["W"], p["S"], sw, pw, dw)

    def weight_shape(self, p: dict) -> tuple:
        return (p["K"], p["C"] // p.get("groups", 1), p["R"], p["S"])

    def workspace_elems(self, p: dict) -> float:
        """N*C*R*S*P*Q: fpga-emu's im2col matrix (N, C*R*S, P*Q)."""
        return float(p["N"] * p["C"] * p["R"] * p["S"] * math.prod(self.out_hw(p)))

    def out_shape(self, p: dict) -> tuple[int, ...]:
        return (p["N"], p["K"], *self.out_hw(p))

    def make_inputs(self, case: Case, seed: int = 0) -> dict[str, np.ndarray]:
        p, rng = case.p, np.random.default_rng(seed)
        fan_in = p["C"] // p.get("groups", 1) * p["R"] * p["S"]
        return {
            "input": self.random(rng, (p["N"], p["C"], p["H"], p["W"]), case.dtype),
            "weight": self.random(rng, self.weight_shape(p), case.dtype, fan_in**-0.5),
            "bias": None,
        }

    def reference(self, case: Case, inputs, dtype=np.float64) -> np.ndarray:
        p = case.p
        x, w = inputs["input"].astype(dtype, copy=False), inputs["weight"].astype(dtype, copy=False)
        (sh, sw), (ph, pw), (dh, dw) = (hw(p, k) for k in ("stride", "padding", "dilation"))
        g, (cg, kg), (P, Q) = p.get("groups", 1), self.group_channels(p), self.out_hw(p)
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, H+2ph, W+2pw)
        xp = xp.reshape(p["N"], g, cg, *xp.shape[2:])  # (N, g, C/g, ., .)
        wg = w.reshape(g, kg, cg, p["R"], p["S"])  # (g, K/g, C/g, R, S)
        out = np.zeros((p["N"], g, kg, P, Q), dtype)
        for r in range(p["R"]):  # one GEMM per kernel tap and group keeps memory at one input-sized patch
            for s in range(p["S"]):
                patch = xp[..., r * dh : r * dh + sh * (P - 1) + 1 : sh, s * dw : s * dw + sw * (Q - 1) + 1 : sw]
                out += np.einsum("ngcpq,gkc->ngkpq", patch, wg[..., r, s], optimize=True)
        return _add_bias(out.reshape(p["N"], p["K"], P, Q), inputs.get("bias"))

    def flops(self, p: dict) -> float:
        """2*N*K*(C/groups)*R*S*P*Q: one multiply-add per output element per weight tap of its group."""
        P, Q = self.out_hw(p)
        return 2.0 * p["N"] * p["K"] * (p["C"] // p.get("groups", 1)) * p["R"] * p["S"] * P * Q

    def bytes_moved(self, p: dict, itemsize: int) -> float:
        """(N*C*H*W + K*(C/groups)*R*S + N*K*P*Q) * itemsize: input, weight read once, output written once."""
        P, Q = self.out_hw(p)
        return (
            float(
                p["N"] * p["C"] * p["H"] * p["W"]
                + p["K"] * (p["C"] // p.get("groups", 1)) * p["R"] * p["S"]
                + p["N"] * p["K"] * P * Q
            )
            * itemsize
        )

    def call(self, **kwargs):
        from hetero.workloads.conv_args import bind

        return bind(self, **kwargs)


class ConvTranspose2d(Conv2d):
    name = "conv_transpose2d"
    options = {
        "stride": 1,
        "padding": 0,
        "output_padding": 0,
        "dilation": 1,
        "groups": 1,
        "stride_w": -1,
        "padding_w": -1,
        "output_padding_w": -1,
        "dilation_w": -1,
    }
    description = "transposed NCHW convolution (GAN generators): input (N, C, H, W), weight (C, K/groups, R, S)"
    paired = PAIRED
    presets = (
        Preset(
            "dcgan-g2",
            _conv(N=16, C=256, H=8, W=8, K=128, R=4, S=4, stride=2, padding=1) | {"output_padding": 0},
            "DCGAN generator layer: 256 -> 128 channels, 8x8 -> 16x16",
        ),
        Preset(
            "dcgan-g3",
            _conv(N=16, C=128, H=16, W=16, K=64, R=4, S=4, stride=2, padding=1) | {"output_padding": 0},
            "DCGAN generator layer: 128 -> 64 channels, 16x16 -> 32x32",
        ),
        Preset(
            "dcgan-g4",
            _conv(N=16, C=64, H=32, W=32, K=3, R=4, S=4, stride=2, padding=1) | {"output_padding": 0},
            "DCGAN generator output layer: 64 -> 3 (RGB) channels, 32x32 -> 64x64",
        ),
        Preset(
            "dcgan-g2-b128",
            _conv(N=128, C=512, H=4, W=4, K=256, R=4, S=4, stride=2, padding=1) | {"output_padding": 0},
            "DCGAN generator at batch 128, 512 -> 256 channels",
            _GPU,
        ),
        Preset(
            "quick-odd",
            _conv(N=2, C=3, H=5, W=7, K=4, R=3, S=3, stride=2, padding=1) | {"output_padding": 1},
            "tiny, odd sizes, output_padding 1",
            frozenset({"quick"}),
        ),
        Preset(
            "quick-grouped-rect",
            _conv(
                N=2, C=4, H=5, W=6, K=6, R=3, S=2, stride=2, padding=1, groups=2, stride_w=3, padding_w=0, dilation_w=2
            )
            | {"output_padding": 1, "output_padding_w": 2},
            "tiny transposed, 2 groups, stride (2, 3), output_padding (1, 2)",
            _QUICK,
        ),
    )

    def _validate_out(self, p: dict) -> None:
        self.check_output_padding(p)
        if min(self.out_hw(p)) < 1:
            raise HeteroError(f"{self.name}: padding {hw(p, 'padding')} leaves no output for a {p['H']}x{p['W']} input")

    def check_output_padding(self, p: dict) -> None:
        for axis, op, st, dil in zip("HW", hw(p, "output_padding"), hw(p, "stride"), hw(p, "dilation")):
            if op >= max(st, dil):
                raise HeteroError(
                    f"{self.name}: output_padding={op} along {axis} must be smaller than stride "
                    f"({st}) or dilation ({dil})"
                )

    def out_hw(self, p: dict) -> tuple[int, int]:
        args = [hw(p, k) for k in ("stride", "padding", "dilation", "output_padding")]
        return (
            out_size_transposed(p["H"], p["R"], *(a[0] for a in args)),
            out_size_transposed(p["W"], p["S"], *(a[1] for a in args)),
        )

    def weight_shape(self, p: dict) -> tuple:
        return (p["C"], p["K"] // p.get("groups", 1), p["R"], p["S"])

    def workspace_elems(self, p: dict) -> float:
        """N*K*R*S*H*W: the col2im matrix (N, K*R*S, H*W) of opencl and fpga-emu."""
        return float(p["N"] * p["K"] * p["R"] * p["S"] * p["H"] * p["W"])

    def make_inputs(self, case: Case, seed: int = 0) -> dict[str, np.ndarray]:
        inputs = super().make_inputs(case, seed)
        # Each output sums about (C/groups)*R*S/(sh*sw) terms; rescale so outputs stay O(1) in 16-bit types.
        p, (sh, sw) = case.p, hw(case.p, "stride")
        inputs["weight"] = self.random(
            np.random.default_rng(seed + 1),
            self.weight_shape(p),
            case.dtype,
            (p["C"] // p.get("groups", 1) * p["R"] * p["S"] / (sh * sw)) ** -0.5,
        )
        return inputs

    def reference(self, case: Case, inputs, dtype=np.float64) -> np.ndarray:
        p = case.p
        x, w = inputs["input"].astype(dtype, copy=False), inputs["weight"].astype(dtype, copy=False)
        (sh, sw), (ph, pw), (dh, dw) = (hw(p, k) for k in ("stride", "padding", "dilation"))
        g, (cg, kg), H, W = p.get("groups", 1), self.group_channels(p), p["H"], p["W"]
        Ho, Wo = self.out_hw(p)
        xg = x.reshape(p["N"], g, cg, H, W)
        wg = w.reshape(g, cg, kg, p["R"], p["S"])  # (g, C/g, K/g, R, S)
        # Scatter every input pixel through every tap into an uncropped output, then crop `padding` away.
        full = np.zeros((p["N"], g, kg, Ho + 2 * ph, Wo + 2 * pw), dtype)
        for r in range(p["R"]):
            for s in range(p["S"]):
                contrib = np.einsum("ngchw,gck->ngkhw", xg, wg[..., r, s], optimize=True)  # (N, g, K/g, H, W)
                full[..., r * dh : r * dh + sh * (H - 1) + 1 : sh, s * dw : s * dw + sw * (W - 1) + 1 : sw] += contrib
        full = full.reshape(p["N"], p["K"], *full.shape[3:])
        return _add_bias(full[:, :, ph : ph + Ho, pw : pw + Wo], inputs.get("bias"))

    def flops(self, p: dict) -> float:
        """2*N*C*(K/groups)*R*S*H*W: every input pixel meets every tap of every output channel of its group."""
        return 2.0 * p["N"] * p["C"] * (p["K"] // p.get("groups", 1)) * p["R"] * p["S"] * p["H"] * p["W"]

    def bytes_moved(self, p: dict, itemsize: int) -> float:
        """(N*C*H*W + C*(K/groups)*R*S + N*K*Ho*Wo) * itemsize: input, weight read once, output written once."""
        Ho, Wo = self.out_hw(p)
        return (
            float(
                p["N"] * p["C"] * p["H"] * p["W"]
                + p["C"] * (p["K"] // p.get("groups", 1)) * p["R"] * p["S"]
                + p["N"] * p["K"] * Ho * Wo
            )
            * itemsize
        )


def _add_bias(out: np.ndarray, bias) -> np.ndarray:
    if bias is not None:
        out = out + bias.astype(out.dtype).reshape(1, -1, 1, 1)
    return np.ascontiguousarray(out)
