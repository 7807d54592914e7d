"""The explicit net: every block expanded, every expression evaluated, every layer named.

Names are the public module paths (and so state_dict keys) of the compiled model:

    stem.conv1, stem.bn1, ...                       layers of the stem, `kind` + index per kind
    stages.{i}.blocks.{j}.residual.conv1            residual branch of block j of stage i
    stages.{i}.blocks.{j}.residuals.{k}.conv1       the k-th branch of a multi-residual block
    stages.{i}.blocks.{j}.pre.bn1                   shared pre-activation
    stages.{i}.blocks.{j}.shortcut.conv1            projection shortcut
    stages.{i}.blocks.{j}.post.relu1                after the merge
    stages.{i}.blocks.{j}.gate.conv1                highway gate T(x)
    ....residual.se1.fc1 / .fc2                     squeeze-and-excitation inside a branch
    ....residual.parallel1.{b}.conv1                branch b of a `parallel` merge
    ....residual.flow.conv1                         a layer of a dataflow body (named tensors)
    transitions.{t}.conv1                           layers between stages
    head.fc1                                        classifier
    aux.{i}.conv1                                   auxiliary classifier i (`aux`, training only)
"""
from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict

from ..errors import Span
from .kinds import DROP_MODES, MERGE_MODES, SHORTCUTS, additive

Shape = tuple[int, ...]


class IR(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class Layer(IR):
    """One primitive op with evaluated, resolved attributes (see ir/ops/: `ops.make`)."""
    kind: str
    name: str
    attrs: dict[str, Any]
    span: Span


class Parallel(IR):
    """Branches applied to the same input, merged by channel concat or sum."""
    name: str
    mode: Literal["concat", "sum"]
    branches: tuple[tuple["Item", ...], ...]
    span: Span


ShortcutKind = Literal[tuple(SHORTCUTS)]        # ir/kinds.py
MergeMode = Literal[tuple(MERGE_MODES)]
DropMode = Literal[tuple(DROP_MODES)]


class Shortcut(IR):
    """What the merge adds to the residual branch: kind, its layers, and where it reads from."""
    kind: ShortcutKind
    layers: tuple["Item", ...] = ()
    source: Literal["input", "pre"] = "input"
    span: Span


class Block(IR):
    """Residual unit: y = post(scale * sum_k residual_k(pre(x)) + shortcut(x))."""
    name: str
    block: str                       # name of the block definition
    args: dict[str, Any]             # evaluated arguments, for display
    pre: tuple["Item", ...] = ()
    residuals: tuple[tuple["Item", ...], ...]
    shortcut: Shortcut
    scale: float = 1.0
    merge: MergeMode = "add"
    gate: tuple["Item", ...] = ()    # T(x) layers of a highway block (conv, sigmoid)
    gate_bias: float = 0.0
    drop_prob: float = 0.0           # stochastic depth: probability that the residual is dropped
    drop_mode: DropMode = "batch"
    shares: str | None = None        # name of the block whose weights this one uses
    share_bn: bool = True            # with `shares`: BN shared too (else one BN per step)
    post: tuple["Item", ...] = ()
    span: Span

    @property
    def additive(self) -> bool:
        """y = x + scale·F(x) with a shortcut (ir/kinds.py `additive`): droppable, lesionable, an ODE step."""
        return additive(self.merge, self.shortcut.kind)


class Step(IR):
    """One step of a dataflow body: an item applied to the named tensors `inputs`, its result named
    `output` (`x`: the body's input; `%N`: an unnamed intermediate)."""
    item: "Item"
    inputs: tuple[str, ...]
    output: str


class Dataflow(IR):
    """A sequence with named tensors (`-> h`, `from h`, `split`, `add a b`): any DAG on one input."""
    name: str
    steps: tuple[Step, ...]
    output: str
    span: Span


Item = Union[Layer, Parallel, Block, Dataflow]


class Stage(IR):
    name: str
    block: str
    blocks: tuple[Block, ...]
    span: Span


class Section(IR):
    """A plain sequence of layers: stem, transition or head; or an auxiliary classifier (`aux`),
    which reads the tensor where it is written and gives a side output used only in training."""
    name: str
    role: Literal["stem", "transition", "head", "aux"]
    items: tuple[Item, ...]
    span: Span
    weight: float = 0.0              # an aux head's loss weight


class TensorInit(IR):
    """`init [SECTION ...] KIND ... [PART] [FILL [VALUE]] [bias FILL [VALUE]]`: the weights (and
    biases) of every layer of these kinds, in these sections (all, when none is named), drawn from
    a distribution of `INIT_FILLS` (ir/kinds.py); later directives overwrite earlier ones."""
    sections: tuple[str, ...]         # words of INIT_SECTIONS
    kinds: tuple[str, ...]
    part: str | None = None           # a sublayer of the kind (Op.parts), e.g. attention's qkv
    weight: tuple[str, tuple[float, ...]] | None = None     # (fill, its numbers)
    bias: tuple[str, tuple[float, ...]] | None = None
    span: Span

    def words(self) -> list:
        """The directive as written, numbers evaluated (for `resdsl show`)."""
        out = [*self.sections, *self.kinds, *([self.part] if self.part else [])]
        for pre, f in (([], self.weight), (["bias"], self.bias)):
            if f is not None:
                out += [*pre, f[0], *f[1]]
        return out


class Net(IR):
    name: str
    args: dict[str, Any]             # the network's arguments (defaults, or set with --set)
    input_shape: Shape
    body: tuple[Union[Section, Stage], ...]
    span: Span
    init: tuple[tuple[str, Any], ...] = ()   # `init` directives in order
    source: str = ""                 # the resolved spec text (for run directories)

    @property
    def stages(self) -> list[Stage]:
        return [s for s in self.body if isinstance(s, Stage)]


for _cls in (Layer, Parallel, Shortcut, Block, Step, Dataflow, Stage, Section, Net):
    _cls.model_rebuild()
