"""Runtime modules of the token kinds (ir/ops/tokens.py, ir/ops/attention.py).

Tokens run as (B, N, D) and grids as (B, H, W, D): the layout of torchvision's and timm's
transformers, so a LayerNorm or a Linear acts on the last axis with no permutes.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _count_cpu_attention() -> None:
    """torch.utils.flop_counter knows the GPU kernels of scaled_dot_product_attention but not the
    CPU one, so on a CPU attention would count 0 FLOPs (for torchvision's models too). Register the
    same formula (q·kᵀ and attention·v, any leading batch axes) for it, once."""
    from torch.utils import flop_counter as fc

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is None or op.default in fc.flop_registry or op in fc.flop_registry:
        return

    @fc.register_flop_formula(op)
    def _flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        *lead, s_q, d_q = query_shape
        s_k, d_v = key_shape[-2], value_shape[-1]
        return 2 * math.prod(lead) * s_q * s_k * (d_q + d_v)


_count_cpu_attention()


class ToTokens(nn.Module):
    """A C×H×W map (B, C, H, W) → H·W tokens (B, H·W, C), row-major (ViT's patch order); a grid
    (B, H, W, D) → (B, H·W, D); a C×L sequence (B, C, L) → L tokens."""

    def __init__(self, grid: bool = False):
        super().__init__()
        self.grid = grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1, 2) if self.grid else x.flatten(2).transpose(1, 2)


class ToMap(nn.Module):
    """N = H·W tokens (B, N, D) → a D×H×W map (B, D, H, W)."""

    def __init__(self, height: int, width: int):
        super().__init__()
        self.height, self.width = height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], self.height, self.width)

    def extra_repr(self) -> str:
        return f"{self.height}x{self.width}"


class Transpose(nn.Module):
    """N×D tokens → D×N: a Linear then mixes the tokens (MLP-Mixer's token-mixing MLP)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class Permute(nn.Module):
    """channels_last (B, C, H, W) → (B, H, W, C), or channels_first back."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)

    def extra_repr(self) -> str:
        return str(list(self.dims))


class LearnedTokens(nn.Module):
    """`count` learned tokens inserted after the `at` learned tokens already in front (class,
    distillation, register tokens); torchvision's class token is initialised to zeros."""

    def __init__(self, dim: int, count: int, at: int, std: float):
        super().__init__()
        self.at = at
        self.token = nn.Parameter(torch.zeros(1, count, dim))
        if std > 0:
            nn.init.trunc_normal_(self.token, std=std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.token.expand(x.shape[0], -1, -1)
        if self.at == 0:
            return torch.cat([t, x], dim=1)
        return torch.cat([x[:, :self.at], t, x[:, self.at:]], dim=1)


class PositionEmbedding(nn.Module):
    """A learned (1, N, D) tensor added to the tokens (ViT: normal, std 0.02)."""

    def __init__(self, length: int, dim: int, std: float):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, length, dim).normal_(std=std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embedding


class TakeToken(nn.Module):
    """Token i of (B, N, D) → (B, D): the class token's output read by a head."""

    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.index]

    def extra_repr(self) -> str:
        return str(self.index)


class TokenMean(nn.Module):
    """The mean of the tokens after the `prefix` learned ones (B, N, D) → (B, D); of a grid's H×W."""

    def __init__(self, prefix: int = 0):
        super().__init__()
        self.prefix = prefix

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return x.mean(dim=(1, 2))
        return (x[:, self.prefix:] if self.prefix else x).mean(dim=1)


class PatchMerge(nn.Module):
    """Swin's patch merging before its norm and reduction: (B, H, W, D) → (B, ⌈H/2⌉, ⌈W/2⌉, 4D),
    the four pixels of each 2×2 patch in torchvision's order (0,0), (1,0), (0,1), (1,1); odd sizes
    padded with zeros."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-3], x.shape[-2]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        return torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :],
                          x[..., 1::2, 1::2, :]], -1)


def relative_position_index(window: tuple[int, int]) -> torch.Tensor:
    """For each pair of positions in a window, the row of the (2w−1)² relative-position table (Swin)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window[0]), torch.arange(window[1]), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window[0] - 1
    rel[:, :, 1] += window[1] - 1
    rel[:, :, 0] *= 2 * window[1] - 1
    return rel.sum(-1).flatten()


def relative_coords_table(window: tuple[int, int]) -> torch.Tensor:
    """Swin V2's log-spaced relative coordinates, the input of its continuous position-bias MLP."""
    h = torch.arange(-(window[0] - 1), window[0], dtype=torch.float32)
    w = torch.arange(-(window[1] - 1), window[1], dtype=torch.float32)
    t = torch.stack(torch.meshgrid([h, w], indexing="ij")).permute(1, 2, 0).contiguous().unsqueeze(0)
    t[:, :, :, 0] /= max(window[0] - 1, 1)
    t[:, :, :, 1] /= max(window[1] - 1, 1)
    t *= 8
    return torch.sign(t) * torch.log2(torch.abs(t) + 1.0) / 3.0


def shift_mask(h: int, w: int, window: tuple[int, int], shift: tuple[int, int]) -> torch.Tensor:
    """(nW, N, N): −100 between positions of a shifted window that came from different regions."""
    mask = torch.zeros((h, w))
    count = 0
    for hs in ((0, -window[0]), (-window[0], -shift[0]), (-shift[0], None)):
        for ws in ((0, -window[1]), (-window[1], -shift[1]), (-shift[1], None)):
            mask[hs[0]:hs[1], ws[0]:ws[1]] = count
            count += 1
    mask = mask.view(h // window[0], window[0], w // window[1], window[1]).permute(0, 2, 1, 3)
    mask = mask.reshape(-1, window[0] * window[1])
    mask = mask.unsqueeze(1) - mask.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


class Attention(nn.Module):
    """Multi-head self-attention on (B, N, D) tokens, or in windows of a (B, H, W, D) grid.

    Global (ViT, DeiT): q, k, v from one packed `qkv` Linear (torchvision's `in_proj_weight`
    and timm's `qkv` hold the same [q; k; v] rows), softmax(q·kᵀ/√d)·v by
    `scaled_dot_product_attention`, then `proj`. Windowed (Swin): the grid is padded to a multiple
    of the window, cyclically shifted, cut into windows; the relative position bias (a learned
    table, Swin V1; or 16·σ(MLP(log coordinates)), Swin V2's continuous bias) and the shift mask
    are added to q·kᵀ before the softmax, as torchvision does (the shift mask made once per map
    size). Grid (MaxViT): each window gathers positions spread over the whole map, one in every
    H/w rows and W/w columns. Cosine attention (Swin V2): cos(q, k)·τ with a learned per-head
    τ = exp(min(logit_scale, log 100)), the key bias held at zero as torchvision does.
    """

    books_own_macs = True      # applies qkv and proj with F.linear: flop_counter books their MACs here
    LOG_100 = 4.605170185988092    # math.log(100.0): Swin V2's cap on the temperature

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True, proj_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, window: tuple[int, int] | None = None,
                 shift: tuple[int, int] = (0, 0), position: str = "none", cosine: bool = False,
                 cpb_hidden: int = 512, grid: bool = False, scale: float | None = None):
        super().__init__()
        self.dim, self.cpb_hidden = dim, cpb_hidden
        self.grid, self.scale = grid, scale
        self.heads, self.attn_drop, self.proj_drop = heads, attn_drop, proj_drop
        self.window, self.shift, self.position, self.cosine = window, tuple(shift), position, cosine
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        if position == "table":
            n = (2 * window[0] - 1) * (2 * window[1] - 1)
            self.relative_position_bias_table = nn.Parameter(torch.zeros(n, heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        if position == "cpb":
            self.register_buffer("relative_coords_table", relative_coords_table(window))
        if position != "none":
            self.register_buffer("relative_position_index", relative_position_index(window))
        if cosine:
            self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((heads, 1, 1))))
        if position == "cpb":
            self.cpb_mlp = nn.Sequential(nn.Linear(2, cpb_hidden, bias=True), nn.ReLU(inplace=True),
                                         nn.Linear(cpb_hidden, heads, bias=False))
        if cosine and qkv_bias:
            with torch.no_grad():
                d = self.qkv.bias.numel() // 3
                self.qkv.bias[d:2 * d].zero_()

    def extra_repr(self) -> str:
        extra = (f", window={self.window}, shift={self.shift}, position={self.position}"
                 f"{', grid' if self.grid else ''}" if self.window else "")
        return f"heads={self.heads}{extra}{', cosine' if self.cosine else ''}"

    def position_bias(self) -> torch.Tensor | None:
        """(heads, N, N) additive bias of the relative positions in a window, or None."""
        if self.position == "none":
            return None
        n = self.window[0] * self.window[1]
        table = (self.relative_position_bias_table if self.position == "table"
                 else self.cpb_mlp(self.relative_coords_table).view(-1, self.heads))
        bias = table[self.relative_position_index].view(n, n, -1).permute(2, 0, 1).contiguous()
        return 16 * torch.sigmoid(bias) if self.position == "cpb" else bias

    def attend(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Attention over the second-to-last axis of x (..., N, D), plus the relative position bias and
        `mask` (the shift mask), which broadcast to (..., heads, N, N)."""
        d = x.shape[-1]
        # qkv and proj are applied functionally, as torchvision's window attention does, so that a
        # forward pass visits the weights in the same order (transfer_weights matches by it)
        bias = self.qkv.bias
        if self.cosine and bias is not None:          # Swin V2 holds the key bias at zero
            bias = torch.cat([bias[:d], torch.zeros_like(bias[d:2 * d]), bias[2 * d:]])
        qkv = F.linear(x, self.qkv.weight, bias)
        qkv = qkv.unflatten(-1, (3, self.heads, d // self.heads))                  # (..., N, 3, heads, d/heads)
        # q, k, v: (..., heads, N, d/heads) views; in backward their gradients are stacked straight into
        # qkv's layout (one copy), not three zero-filled selects summed and permuted back
        q, k, v = (t.transpose(-3, -2) for t in qkv.unbind(-3))
        bias = self.position_bias()                                   # (heads, N, N), after q, k, v as torchvision
        if bias is None and mask is None and not self.cosine:        # ViT: one fused kernel
            y = F.scaled_dot_product_attention(q, k, v, scale=self.scale,
                                               dropout_p=self.attn_drop if self.training else 0.0)
        else:
            # With an additive bias, torchvision's sequence (scale q, q·kᵀ, + bias, + mask, softmax,
            # ·v): scaled_dot_product_attention takes the bias as a mask but runs its unfused path
            # on a CPU, which scales both q and k and checks the softmax for all −inf rows.
            if self.cosine:
                tau = torch.clamp(self.logit_scale, max=self.LOG_100).exp()
                a = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1) * tau
            else:
                a = (q * (self.scale or (d // self.heads) ** -0.5)) @ k.transpose(-2, -1)
            if bias is not None:
                a = a + bias.to(a.dtype)
            if mask is not None:
                a = a + mask                                          # (nW, 1, N, N) against (B, nW, heads, N, N)
            a = F.dropout(F.softmax(a, dim=-1), self.attn_drop, self.training)
            y = a @ v
        y = y.transpose(-3, -2).reshape(x.shape)
        return F.dropout(F.linear(y, self.proj.weight, self.proj.bias), self.proj_drop, self.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.window is None:
            return self.attend(x, None)
        return self.windowed(x)

    def window_mask(self, h: int, w: int, shift: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        """shift_mask as (nW, 1, N, N) in x's dtype and device, made once per map size and kept
        (torchvision builds it on every call); made afresh while torch.compile/export or jit traces."""
        def make() -> torch.Tensor:
            return shift_mask(h, w, self.window, shift).to(like.dtype).to(like.device).unsqueeze(1)

        if torch.compiler.is_compiling() or torch.jit.is_tracing() or type(like) is not torch.Tensor:
            return make()
        masks = self.__dict__.setdefault("_shift_masks", {})
        key = (h, w, shift, like.dtype, like.device)
        if key not in masks:
            with torch.inference_mode(False):       # kept for later training steps: not an inference tensor
                masks[key] = make()
        return masks[key]

    def windowed(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        wh, ww = self.window
        x = F.pad(x, (0, 0, 0, (ww - w % ww) % ww, 0, (wh - h % wh) % wh))
        ph, pw = x.shape[1], x.shape[2]
        shift = (0 if wh >= ph else self.shift[0], 0 if ww >= pw else self.shift[1])
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        nh, nw = ph // wh, pw // ww
        if self.grid:     # MaxViT's grid: window position (i, j) reads pixel (i·nh + a, j·nw + b) of group (a, b)
            x = x.view(b, wh, nh, ww, nw, c).permute(0, 2, 4, 1, 3, 5).reshape(b, nh * nw, wh * ww, c)
        else:
            x = x.view(b, nh, wh, nw, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(b, nh * nw, wh * ww, c)
        x = self.attend(x, self.window_mask(ph, pw, shift, x) if any(shift) else None)     # (B, nW, N, C)
        if self.grid:
            x = x.view(b, nh, nw, wh, ww, c).permute(0, 3, 1, 4, 2, 5).reshape(b, ph, pw, c)
        else:
            x = x.view(b, nh, nw, wh, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
        if any(shift):
            x = torch.roll(x, shifts=shift, dims=(1, 2))
        return x[:, :h, :w, :].contiguous()


def _attention_source(m: Attention) -> str:
    return (f"Attention({m.dim}, {m.heads}, qkv_bias={m.qkv.bias is not None}, proj_bias={m.proj.bias is not None}, "
            f"attn_drop={m.attn_drop!r}, proj_drop={m.proj_drop!r}, window={m.window!r}, shift={m.shift!r}, "
            f"position={m.position!r}, cosine={m.cosine}, cpb_hidden={m.cpb_hidden}, grid={m.grid}, scale={m.scale!r})")


# For `resdsl compile -o model.py` (backend/emit.py): each module's constructor expression, and the
# definitions the generated file copies by their source.
SOURCE = {
    ToTokens: lambda m: f"ToTokens(grid={m.grid})",
    ToMap: lambda m: f"ToMap({m.height}, {m.width})",
    Transpose: lambda m: "Transpose()",
    Permute: lambda m: f"Permute({m.dims!r})",
    LearnedTokens: lambda m: f"LearnedTokens({m.token.shape[2]}, {m.token.shape[1]}, {m.at}, 0.0)",
    PositionEmbedding: lambda m: f"PositionEmbedding({m.pos_embedding.shape[1]}, {m.pos_embedding.shape[2]}, 0.02)",
    TakeToken: lambda m: f"TakeToken({m.index})",
    TokenMean: lambda m: f"TokenMean({m.prefix})",
    PatchMerge: lambda m: "PatchMerge()",
    Attention: _attention_source,
}
HELPERS = (relative_position_index, relative_coords_table, shift_mask, *SOURCE)
# a channels-last LayerNorm (on each token) is torch's own
SOURCE[nn.LayerNorm] = lambda m: (f"nn.LayerNorm({m.normalized_shape[0]}, eps={m.eps!r}, "
                                  f"elementwise_affine={m.elementwise_affine})")
