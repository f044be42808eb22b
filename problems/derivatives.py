"""Derivatives of a field with respect to its inputs, as PDE residuals need them.

:func:`jet` returns the field u at a batch of points together with the derivatives a residual asks
for: first derivatives ∂u/∂x_i, pure second derivatives ∂²u/∂x_i², and optionally one linear
``operator`` L u = Σ_i α_i ∂u/∂x_i + Σ_j β_j ∂²u/∂x_j² (Burgers' u_t − ν u_xx, Navier–Stokes'
u_t − ν Δu), which the fast path carries as a single stream. Two paths give the same numbers:

* the straightforward path (``fast=False``): nested reverse-mode autograd, one backward pass per
  output for the first derivatives and one per output and second derivative, each recorded for
  the next; valid for any differentiable function;
* the fast path, for the tanh :class:`~pinnbench.network.MLP`: forward-mode Taylor propagation.
  Every requested derivative is a *stream* that goes through the network beside the value: a
  first-order stream along input direction e_k, ż = W ȧ, and a second-order stream for
  L = Σ α_i ∂_i + Σ β_j ∂_jj, carrying z^L = Σ α_i ż_i + Σ β_j z̈_j. Through a = tanh(z), with
  s = 1 − a²:

      ȧ_k = s ż_k,        a^L = s (z^L − 2 a Σ_j β_j ż_j²),

  and in the first layer ż_k = W e_k, z^L = W α (the same at every point). All streams share one
  matrix product per layer. The backward pass is written by hand (:class:`TaylorMLP`): two matrix
  products per layer (weights, inputs) and one pass of pointwise work, instead of autograd's graph
  of backward passes through backward passes.

The pointwise work of a layer (forward and backward) is in two small functions per stream layout
(:func:`_eager_kernels`, :func:`_fusable_kernels`), and the passes through the whole network
(:func:`_network_passes`) are built on them. With ``fast="compiled"`` each pass goes through
``torch.compile`` as one graph (:func:`passes`): every layer's pointwise work fused into one loop,
the products with the narrow first and last layers folded into those loops, and no Python between
the layers. The hidden layers' biases go in with the value's matrix product (``addmm``) and sums
over points are taken over rows of a multiple of 16 floats (:func:`_sum_over_points`): a width of
50 is not a whole number of 16-float vectors, and a loop that broadcasts along a row of 50 pays a
masked tail on every row, where one over whole tensors runs flat. The first call of every
compiled pass is checked against the eager one, and any compilation failure or mismatch falls back
to the eager pass with a warning, so results never depend on the compiler.

Which path is cheaper is decided per request by a cost rule counting matrix products per layer
(each costs the same: N points × width² multiply-adds), forward and backward together:
Taylor needs 3 S with S = 1 + m + c streams (m first-order directions, c second-order streams);
autograd needs 3 (1 + n_out (1 + 2 n₂)) — a forward pass, one reverse pass per output, a
double-backward of about two products per output and second derivative, and the training
backward pass through all of it (about twice its forward). Taylor is used when it needs no more
products: for every residual of the four problems, and not e.g. for the gradient of a scalar
field over many inputs with no second derivatives. (Measured on the Burgers residual the
hand-written Taylor pass with fused kernels costs about half of nested autograd; see README.)
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.utils._pytree import tree_flatten, tree_leaves

from pinnbench.network import MLP, InputEncoding

Field = Callable[[Tensor], Tensor]
Operator = Mapping[tuple, float]
"""A linear differential operator: {(i,): α_i, (j, j): β_j} means Σ_i α_i ∂/∂x_i + Σ_j β_j ∂²/∂x_j²."""

AUTOGRAD, TAYLOR, COMPILED = "autograd", "taylor", "compiled"
"""Values of ``fast`` besides False (= AUTOGRAD) and True (= TAYLOR): COMPILED is Taylor with
compiled pointwise kernels."""

AUTO_COMPILE_ITERATIONS, AUTO_COMPILE_SECONDS = 10_000, 600.0
"""``compile: auto`` compiles for runs at least this long: compiling takes about 5–15 s on a CPU
(less with inductor's on-disk cache) and saves a few ms per iteration at paper size."""


def derivative_mode(fast: bool, compile: str, iterations: int | None = None, seconds: float | None = None) -> str:
    """The ``fast`` value a problem passes to :func:`jet`, from the run's ``fast`` and ``compile``
    (``auto`` | ``true`` | ``false``) settings and its budget (iterations, or seconds for a wall-clock one)."""
    if not fast:
        return AUTOGRAD
    if compile == "auto":
        long_run = (iterations or 0) >= AUTO_COMPILE_ITERATIONS or (seconds or 0.0) >= AUTO_COMPILE_SECONDS
        return COMPILED if long_run else TAYLOR
    return COMPILED if compile == "true" else TAYLOR


@dataclass
class Jet:
    """u [N, out]; first[i] = ∂u/∂x_i; second[j] = ∂²u/∂x_j²; op = L u for the requested operator."""

    value: Tensor
    first: dict[int, Tensor]
    second: dict[int, Tensor]
    op: Tensor | None = None

    def d(self, i: int) -> Tensor:
        return self.first[i]

    def dd(self, i: int) -> Tensor:
        return self.second[i]


def _split_operator(operator: Operator | None) -> tuple[dict[int, float], dict[int, float]]:
    """({i: α_i}, {j: β_j}) of an operator; mixed second derivatives are not supported."""
    alpha: dict[int, float] = {}
    beta: dict[int, float] = {}
    for key, coefficient in (operator or {}).items():
        if len(key) == 1:
            alpha[key[0]] = alpha.get(key[0], 0.0) + float(coefficient)
        elif len(key) == 2 and key[0] == key[1]:
            beta[key[0]] = beta.get(key[0], 0.0) + float(coefficient)
        else:
            raise ValueError(f"operator term {key!r}: only ∂_i (i,) and pure ∂_jj (j, j) terms are supported")
    return alpha, beta


# ----- the straightforward path --------------------------------------------------------------------
def _autograd_jet(fn: Field, inputs: Tensor, first: Sequence[int], second: Sequence[int],
                  operator: Operator | None) -> Jet:
    alpha, beta = _split_operator(operator)
    x = inputs if inputs.requires_grad else inputs.detach().requires_grad_(True)
    u = fn(x)
    outputs = range(u.shape[1])
    needed_second = sorted(set(second) | set(beta))
    d1: dict[int, Tensor] = {}
    d2: dict[int, Tensor] = {}
    if set(first) | set(alpha) | set(needed_second):
        # gradients[o]: [N, d] = ∇_x u_o, one reverse pass per output
        gradients = [torch.autograd.grad(u[:, o], x, torch.ones_like(u[:, o]), create_graph=True)[0]
                     for o in outputs]
        d1 = {i: torch.stack([g[:, i] for g in gradients], dim=1)
              for i in sorted(set(first) | set(alpha) | set(needed_second))}
    for i in needed_second:
        d2[i] = torch.stack([torch.autograd.grad(d1[i][:, o], x, torch.ones_like(d1[i][:, o]),
                                                 create_graph=True)[0][:, i] for o in outputs], dim=1)
    op = None
    if operator is not None:
        terms = [c * d1[i] for i, c in alpha.items()] + [c * d2[j] for j, c in beta.items()]
        op = sum(terms[1:], terms[0]) if terms else torch.zeros_like(u)
    return Jet(u, {i: d1[i] for i in first}, {j: d2[j] for j in second}, op)


# ----- the fast path -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """The streams of a Taylor pass: value, then a first-order stream per input in ``directions``,
    then one second-order stream per entry of ``curves``: (α over the inputs, β over the
    directions) for L = Σ α_i ∂_i + Σ β_k ∂²_{directions[k]}."""

    directions: tuple[int, ...]
    curves: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]
    first: tuple[int, ...] = field(default=())
    second: tuple[int, ...] = field(default=())
    has_operator: bool = False

    @property
    def streams(self) -> int:
        return 1 + len(self.directions) + len(self.curves)

    @staticmethod
    def of(n_inputs: int, first: Sequence[int], second: Sequence[int], operator: Operator | None) -> "Plan":
        alpha, beta = _split_operator(operator)
        directions = tuple(sorted(set(first) | set(second) | {j for j, b in beta.items() if b != 0.0}))

        def curve(a: dict[int, float], b: dict[int, float]):
            return (tuple(a.get(i, 0.0) for i in range(n_inputs)),
                    tuple(b.get(i, 0.0) for i in directions))

        curves = [curve({}, {j: 1.0}) for j in second]
        if operator is not None:
            curves.append(curve(alpha, beta))
        for i in list(first) + list(second) + list(alpha) + list(beta):
            if not 0 <= i < n_inputs:
                raise ValueError(f"input index {i} is out of range for {n_inputs} inputs")
        return Plan(directions, tuple(curves), tuple(first), tuple(second), operator is not None)


def taylor_pays(plan: Plan, n_outputs: int) -> bool:
    """The cost rule (module docstring): Taylor's S streams against autograd's 1 + n_out (1 + 2 n₂)
    pass-equivalents, n₂ the number of distinct second derivatives autograd would take."""
    second_derivatives = {plan.directions[k] for _, beta in plan.curves for k, b in enumerate(beta) if b != 0.0}
    return plan.streams <= 1 + n_outputs * (1 + 2 * len(second_derivatives))


def _curve_terms(plan: Plan) -> list[list[tuple[int, float]]]:
    """For every second-order stream, its nonzero (direction slot, β) pairs."""
    return [[(k, b) for k, b in enumerate(beta) if b != 0.0] for _, beta in plan.curves]


def _eager_kernels(plan: Plan) -> tuple[Callable, Callable]:
    """(forward, backward) pointwise work of one tanh layer, written with ``out=`` and in-place
    operations: the fewest passes over memory without a compiler.

    forward(z [N, w], dZ [m + c, N or 1, w]) → H [1 + m + c, N, w]: the layer's value and streams;
    backward(Hb [1 + m + c, N, w], a [N, w], dZ) → the adjoint of [z; dZ], [1 + m + c, N, w]:

        z̄_k = s H̄_k − 4 a ż_k Σ_c β_ck s H̄_c,    z̄^c = s H̄_c,
        z̄ = s (H̄_0 − 2 a Σ_k H̄_k ż_k − 2 Σ_c H̄_c (a z^c + (1 − 3a²) Σ_k β_ck ż_k²)).
    """
    m, terms = len(plan.directions), _curve_terms(plan)

    def forward(z: Tensor, dZ: Tensor) -> Tensor:
        H = z.new_empty((1 + m + len(terms),) + z.shape)
        a = torch.tanh(z, out=H[0])
        slope = torch.addcmul(a.new_ones(()), a, a, value=-1)
        torch.mul(dZ[:m], slope, out=H[1:1 + m])
        for c, beta in enumerate(terms):
            h = H[1 + m + c]
            if not beta:
                torch.mul(dZ[m + c], slope, out=h)
                continue
            curvature = None  # Σ_k β_k ż_k²
            for k, b in beta:
                if curvature is None:
                    curvature = torch.mul(dZ[k], dZ[k]).mul_(b)
                else:
                    curvature.addcmul_(dZ[k], dZ[k], value=b)
            torch.addcmul(dZ[m + c], a, curvature, value=-2, out=h).mul_(slope)
        return H

    def backward(Hb: Tensor, a: Tensor, dZ: Tensor) -> Tensor:
        G = torch.empty_like(Hb)
        slope = torch.addcmul(a.new_ones(()), a, a, value=-1)
        torch.mul(Hb[1:1 + m], slope, out=G[1:1 + m])
        a_bar = torch.zeros_like(a)
        for k in range(m):
            a_bar.addcmul_(Hb[1 + k], dZ[k])
        a_bar.mul_(a)
        flatness = torch.addcmul(a.new_ones(()), a, a, value=-3) if any(terms) else None
        for c, beta in enumerate(terms):
            h = Hb[1 + m + c]
            u = torch.mul(h, slope, out=G[1 + m + c])
            if beta:
                au = a * u
                spread = None  # Σ_k β_k ż_k²
                for k, b in beta:
                    G[1 + k].addcmul_(au, dZ[k], value=-4 * b)
                    if spread is None:
                        spread = torch.mul(dZ[k], dZ[k]).mul_(b)
                    else:
                        spread.addcmul_(dZ[k], dZ[k], value=b)
                inner = torch.mul(flatness, spread).addcmul_(a, dZ[m + c])
            else:
                inner = a * dZ[m + c]
            a_bar.addcmul_(h, inner)
        torch.add(Hb[0], a_bar, alpha=-2, out=G[0]).mul_(slope)
        return G

    return forward, backward


def _fusable_kernels(plan: Plan) -> tuple[Callable, Callable]:
    """The same two functions as :func:`_eager_kernels`, written without ``out=`` or in-place
    operations: the form ``torch.compile`` fuses into one loop each."""
    m, terms = len(plan.directions), _curve_terms(plan)

    def forward(z: Tensor, dZ: Tensor) -> Tensor:
        a = torch.tanh(z)
        slope = 1 - a * a
        rows = [a.unsqueeze(0), slope * dZ[:m]]
        for c, beta in enumerate(terms):
            stream = dZ[m + c]
            for k, b in beta:
                stream = stream - (2 * b) * a * dZ[k] * dZ[k]
            rows.append((slope * stream).unsqueeze(0))
        return torch.cat(rows)

    def backward(Hb: Tensor, a: Tensor, dZ: Tensor) -> Tensor:
        slope = 1 - a * a
        a_bar = a * (Hb[1:1 + m] * dZ[:m]).sum(0)
        first = [slope * Hb[1 + k] for k in range(m)]
        curve_rows = []
        for c, beta in enumerate(terms):
            h = Hb[1 + m + c]
            u = slope * h
            curve_rows.append(u.unsqueeze(0))
            inner = a * dZ[m + c]
            for k, b in beta:
                first[k] = first[k] - (4 * b) * a * dZ[k] * u
                inner = inner + b * (1 - 3 * a * a) * dZ[k] * dZ[k]
            a_bar = a_bar + h * inner
        rows = [(slope * (Hb[0] - 2 * a_bar)).unsqueeze(0)] + [row.unsqueeze(0) for row in first]
        return torch.cat(rows + curve_rows)

    return forward, backward


DYNAMIC_SHAPES = False
"""Compile every kernel for the exact shapes it meets: the points of a run's terms are fixed in number,
so each layout compiles once, and the loops of a static-shape kernel run about a third faster than
those of a shape-generic one (measured on Burgers' residual layout, 10 000 points, width 50)."""

RECOMPILE_LIMIT = 64


class _Checked:
    """A compiled function that falls back to ``eager`` for good if compiling fails or if its first
    result for a new input layout differs from the eager one (every tensor of the result, within
    10³ ε of its largest entry)."""

    def __init__(self, fusable: Callable, eager: Callable, name: str) -> None:
        self.eager, self.name = eager, name
        # one specialisation per layout: a run has a few, a bench of four problems in one process ~16,
        # more than dynamo's default of 8 per function (past it, the passes would run uncompiled)
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
        self.compiled: Callable | None = torch.compile(fusable, dynamic=DYNAMIC_SHAPES)
        self.checked: set[tuple] = set()

    def __call__(self, *args):
        if self.compiled is None:
            return self.eager(*args)
        key = tuple((t.dtype, t.device.type, t.dim(), tuple(s == 1 for s in t.shape)) if isinstance(t, Tensor)
                    else t for t in tree_leaves(args))
        try:
            result = self.compiled(*args)
        except Exception as exc:  # any compiler failure: missing C++ compiler, unsupported op, …
            self._give_up(f"torch.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
            return self.eager(*args)
        if key not in self.checked:
            expected = self.eager(*args)
            if not _close(result, expected):
                self._give_up("its result differs from the eager one")
                return expected
            self.checked.add(key)
        return result

    def _give_up(self, why: str) -> None:
        warnings.warn(f"compiled Taylor {self.name}: {why}; running it eagerly.", RuntimeWarning, stacklevel=3)
        self.compiled = None


def _close(result, expected) -> bool:
    """The same structure, and every tensor within 10³ ε (1 + its largest entry) of the expected one."""
    got, want = tree_flatten(result), tree_flatten(expected)
    if got[1] != want[1]:
        return False
    for a, b in zip(got[0], want[0]):
        if isinstance(b, Tensor):
            tolerance = 1e3 * torch.finfo(b.dtype).eps * (1 + b.abs().max())
            if not isinstance(a, Tensor) or a.shape != b.shape or not bool(((a - b).abs() <= tolerance).all()):
                return False
        elif a is not b and a != b:
            return False
    return True


def _network_passes(forward_kernel: Callable, backward_kernel: Callable, narrow_products: bool = False
                    ) -> tuple[Callable, Callable]:
    """The forward and backward passes through the whole network for one layout, built on its two
    pointwise kernels: pure functions of tensors, so that ``torch.compile`` can take each as one graph.

    forward(inputs [N, n_in], lift [m + c, n_in], W₀, b₀, …, W_L, b_L) → (out [S, N, n_out], the
    activations H of the hidden layers, their pre-activation streams dZ);
    backward(grad [S, N, n_out], inputs, lift, weights, activations, streams, input_grad) →
    (∂/∂inputs or None, [∂W₀, ∂b₀, …, ∂W_L, ∂b_L]).
    """

    def forward(inputs: Tensor, lift: Tensor, *params: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        weights, biases = params[0::2], params[1::2]
        z = _narrow_product(inputs, weights[0].T) + biases[0] if narrow_products else \
            torch.addmm(biases[0], inputs, weights[0].T)
        dZ = lift @ weights[0].T  # [m + c, N, w] for a per-point lift (periodic inputs), else [m + c, w] …
        if dZ.dim() == 2:
            dZ = dZ.unsqueeze(1)  # … the same at every point
        H = forward_kernel(z, dZ)
        activations, streams = [H], [dZ]
        for W, b in zip(weights[1:-1], biases[1:-1]):
            # the bias goes in with the value's product: the pointwise kernel then has no operand that
            # varies along a row, and compiled it runs as one flat loop (a width of 50 is not a whole
            # number of vectors, and a row-wise loop pays a masked tail on every row)
            z, dZ = torch.addmm(b, H[0], W.T), torch.matmul(H[1:], W.T)
            H = forward_kernel(z, dZ)
            activations.append(H)
            streams.append(dZ)
        out = torch.matmul(H, weights[-1].T)
        return torch.cat(((out[0] + biases[-1]).unsqueeze(0), out[1:])), activations, streams

    def backward(grad: Tensor, inputs: Tensor, lift: Tensor, weights: list[Tensor], activations: list[Tensor],
                 streams: list[Tensor], input_grad: bool) -> tuple[Tensor | None, list[Tensor]]:
        L = len(weights)
        grads: list[Tensor] = [grad] * (2 * L)  # placeholders, each overwritten below
        G = grad
        for layer in range(L - 1, 0, -1):
            H, W = activations[layer - 1], weights[layer]
            S, N, width = H.shape
            flat = G.reshape(-1, W.shape[0])
            grads[2 * layer] = flat.T @ H.reshape(-1, width)
            grads[2 * layer + 1] = _sum_over_points(G[0])
            Hb = (_narrow_product(flat, W) if narrow_products and layer == L - 1 else flat @ W).view(S, N, width)
            G = backward_kernel(Hb, H[0], streams[layer - 1])
        # first layer: z = x W₀ᵀ + b₀, and the streams' ż = (lift W₀ᵀ) at every point (or per point)
        if lift.dim() == 2:
            grads[0] = G[0].T @ inputs + _sum_over_points(G[1:]).T @ lift
        else:
            grads[0] = G[0].T @ inputs + G[1:].flatten(0, 1).T @ lift.flatten(0, 1)
        grads[1] = _sum_over_points(G[0])
        return (G @ weights[0] if input_grad else None), grads

    return forward, backward


SIMD_FLOATS = 16
"""Floats in the widest vector register a compiled loop uses (AVX-512); every narrower width divides it."""


def _sum_over_points(t: Tensor) -> Tensor:
    """t [..., N, w] summed over its N points. Seen as [..., N / r, r w] with r w a multiple of
    :data:`SIMD_FLOATS` where N allows, so that a compiled loop over a row has no masked tail (a
    width of 50 leaves 2 floats on every row); the r partial sums are added last."""
    n, w = t.shape[-2:]
    r = SIMD_FLOATS // math.gcd(w, SIMD_FLOATS)
    if r == 1 or n % r:
        return t.sum(-2)
    return t.reshape(*t.shape[:-2], n // r, r * w).sum(-2).view(*t.shape[:-2], r, w).sum(-2)


def _narrow_product(a: Tensor, b: Tensor) -> Tensor:
    """a @ b for a narrow inner dimension (the network's inputs or outputs) as a sum of broadcast
    products, which a compiled pass fuses into the pointwise kernel beside it."""
    return sum(a[:, k:k + 1] * b[k] for k in range(a.shape[1]))


@functools.lru_cache(maxsize=None)
def passes(plan: Plan, compiled: bool) -> tuple[Callable, Callable]:
    """The (forward, backward) passes of ``plan`` (:func:`_network_passes`), eager or compiled; built
    once. Compiled, each pass is one graph: the pointwise kernels fused, the narrow products folded
    into them, and no Python between the layers."""
    forward, backward = _network_passes(*_eager_kernels(plan))
    if not compiled:
        return forward, backward
    fused_forward, fused_backward = _network_passes(*_fusable_kernels(plan), narrow_products=True)
    return _Checked(fused_forward, forward, "forward pass"), _Checked(fused_backward, backward, "backward pass")


class TaylorMLP(torch.autograd.Function):
    """All streams of ``plan`` through Linear → tanh → … → Linear: [S, N, n_out], with a hand-written
    backward pass (first order in the parameters: training needs no more)."""

    @staticmethod
    def forward(ctx, inputs: Tensor, lift: Tensor, plan: Plan, compiled: bool, *params: Tensor) -> Tensor:
        # lift [m + c, n_in] (or [m + c, N, n_in]): the first-layer stream directions (at every point)
        forward_pass, _ = passes(plan, compiled)
        out, activations, streams = forward_pass(inputs, lift, *params)
        ctx.plan, ctx.compiled, ctx.n_layers = plan, compiled, len(params) // 2
        ctx.save_for_backward(inputs, lift, *params[0::2], *activations, *streams)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        _, backward_pass = passes(ctx.plan, ctx.compiled)
        L = ctx.n_layers
        inputs, lift, *rest = ctx.saved_tensors
        weights, activations, streams = rest[:L], rest[L:2 * L - 1], rest[2 * L - 1:]
        wanted = bool(ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
        grad_inputs, grads = backward_pass(grad.contiguous(), inputs, lift, list(weights), list(activations),
                                           list(streams), wanted)
        # ∂/∂inputs from the value stream, ∂/∂lift from the derivative streams ([S, N, n_in] before the split)
        grad_value = grad_inputs[0] if wanted else None
        grad_lift = None
        if wanted and ctx.needs_input_grad[1]:
            grad_lift = grad_inputs[1:] if lift.dim() == 3 else _sum_over_points(grad_inputs[1:])
        return (grad_value, grad_lift, None, None, *grads)


def _lift(plan: Plan, inputs: Tensor) -> Tensor:
    """[m + c, n_in]: e_k for every direction, then α for every second-order stream."""
    return _lift_matrix(plan, inputs.shape[1], inputs.dtype, inputs.device)


@functools.lru_cache(maxsize=64)
def _lift_matrix(plan: Plan, n_in: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    # built once per layout: a tensor made from Python numbers on a GPU is a blocking host-to-device copy
    rows = [[1.0 if i == k else 0.0 for i in range(n_in)] for k in plan.directions]
    rows += [list(alpha) for alpha, _ in plan.curves]
    return torch.tensor(rows, dtype=dtype, device=device).reshape(len(rows), n_in)


def _encoded_lift(plan: Plan, inputs: Tensor, encoding: InputEncoding) -> tuple[Tensor, Tensor]:
    """(features, lift) of inputs through the network's input encoding: each feature f_k depends on
    one input x_o(k), so a first-order stream along x_i starts as ∂f/∂x_i (nonzero on x_i's
    features) and a second-order stream L = Σ α_i ∂_i + Σ β_j ∂_jj as Σ α_i ∂f/∂x_i + Σ β_j ∂²f/∂x_j².
    An affine encoding (standardised inputs) has a lift that is the same at every point, [m + c, f];
    a periodic one a lift per point, [m + c, N, f]."""
    features = encoding(inputs)
    owner = torch.tensor(encoding.owner, device=inputs.device)
    if encoding.affine:  # ∂f_k/∂x_k = 1/scale_k, no second derivative
        inverse_scale = torch.tensor([1.0 / s for s in encoding.scale], dtype=inputs.dtype, device=inputs.device)
        return features, _lift(plan, inputs) * inverse_scale
    d1, d2 = encoding.derivatives(inputs)
    rows = [d1 * (owner == i) for i in plan.directions]
    for alpha, beta in plan.curves:
        row = torch.zeros_like(d1)
        for i, a in enumerate(alpha):
            if a:
                row = row + a * d1 * (owner == i)
        for k, b in enumerate(beta):
            if b:
                row = row + b * d2 * (owner == plan.directions[k])
        rows.append(row)
    return features, torch.stack(rows)


def _taylor_jet(fn: MLP, inputs: Tensor, plan: Plan, compiled: bool) -> Jet:
    params = [p for linear in fn.linears for p in (linear.weight, linear.bias)]
    encoding = fn.encoding
    if encoding is None:
        features, lift = inputs, _lift(plan, inputs)  # [m + c, n_in]: first-layer stream directions
    else:
        features, lift = _encoded_lift(plan, inputs, encoding)
    out = TaylorMLP.apply(features, lift, plan, compiled, *params)
    m, slot = len(plan.directions), {i: k for k, i in enumerate(plan.directions)}
    first = {i: out[1 + slot[i]] for i in plan.first}
    second = {j: out[1 + m + c] for c, j in enumerate(plan.second)}
    return Jet(out[0], first, second, out[-1] if plan.has_operator else None)


def jet(fn: Field, inputs: Tensor, first: Sequence[int] = (), second: Sequence[int] = (),
        operator: Operator | None = None, fast: bool | str = True) -> Jet:
    """u, ∂u/∂x_i for i in ``first``, ∂²u/∂x_j² for j in ``second`` and L u for ``operator`` at
    ``inputs`` [N, d].

    ``fast``: False or ``"autograd"`` — nested autograd; True or ``"taylor"`` — Taylor streams when
    the cost rule says they are cheaper and ``fn`` is an :class:`~pinnbench.network.MLP`; ``"compiled"`` — the same with
    compiled pointwise kernels.
    """
    mode = {False: AUTOGRAD, True: TAYLOR}.get(fast, fast) if isinstance(fast, bool) else fast
    if mode not in (AUTOGRAD, TAYLOR, COMPILED):
        raise ValueError(f"fast={fast!r}; allowed: False, True, {AUTOGRAD!r}, {TAYLOR!r}, {COMPILED!r}")
    if mode != AUTOGRAD and isinstance(fn, MLP):
        plan = Plan.of(inputs.shape[1], first, second, operator)
        if plan.streams > 1 and taylor_pays(plan, fn.linears[-1].out_features):
            return _taylor_jet(fn, inputs, plan, mode == COMPILED)
    return _autograd_jet(fn, inputs, first, second, operator)
