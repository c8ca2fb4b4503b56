"""Optimizer updates over flat parameter arrays, as nngraph/optimizers.py.

All parameters of a network live in one contiguous array `p`, their gradients in `g` and
each optimizer slot (momentum, squared averages) in arrays of the same length. Parameter k
is p[seg_start[k]:seg_end[k]] (int64 arrays) and its learning rate is lr * seg_lr[k]
(float64); a segment with seg_lr 0 is frozen and skipped. `lr` is the step's rate, already
decayed by the caller (Optimizer.lr_at(t)); `t` counts the updates already made (adam's bias
correction uses t + 1). Every scalar is cast to p's dtype once, so float32 stays float32.

    sgd      v = momentum*v - lr*g;  p += v        (nesterov: p += momentum*v - lr*g)
             momentum 0: p -= lr*g, and v may be a size-0 array
    rmsprop  s = rho*s + (1 - rho)*g*g;  p -= lr*g / (sqrt(s) + eps)
    adagrad  s += g*g;  p -= lr*g / (sqrt(s) + eps)
    adam     m = b1*m + (1 - b1)*g;  v = b2*v + (1 - b2)*g*g;
             p -= lr * (m / c1) / (sqrt(v / c2) + eps),  c1 = 1 - b1^(t+1), c2 = 1 - b2^(t+1)

Regularization: `regularize` adds l1*sign(w) + 2*l2*w to the gradient of each segment and
returns the penalty sum l1*|w| + l2*w^2 (call it before the update); `max_norm` rescales each
unit's incoming weights after the update. Both take their own segment tables so that only
regularized parameters are listed.

Slots that decay (momentum, squared averages) are flushed to zero once they fall below the
smallest normal float: a parameter whose gradient stays 0 (a dead ReLU unit, a pixel that is
0 in every image) otherwise sees its momentum decay geometrically into subnormal numbers,
which x86 cores process at a fraction of the speed (the MLP benchmark's SGD update ran ten
times slower once most of its momentum was subnormal). The reference backend does not flush;
values that small are below every tolerance that compares them.

Serial loops: an update is one streaming pass, and prange's second pool of threads made it
slower at every size tried, up to a million parameters. Large float32 updates run instead
on MKL's own OpenMP threads, each taking a part of the flat arrays (TeamUpdate, team.py),
which are awake after a training step's products and add a core's share of the memory
bandwidth.
"""
import numpy as np

from . import team
from ._jit import kernel


@kernel(inline=True)       # inlined: quicker to compile than functions of their own
def _smallest_normal(p):
    return p.dtype.type(1.1754943508222875e-38 if p.itemsize == 4 else 2.2250738585072014e-308)


@kernel(inline=True)
def _flush(x, normal):
    """x, or 0 when |x| is subnormal."""
    return x if abs(x) >= normal else x - x


def sgd_update(p, g, v, seg_start, seg_end, seg_lr, lr, momentum, nesterov):
    """Two kernels, so that a plain SGD step compiles nothing for the momentum."""
    kernel, args = sgd_call(p, g, v, seg_start, seg_end, seg_lr, lr, momentum, nesterov)
    kernel(*args)


def sgd_call(p, g, v, seg_start, seg_end, seg_lr, lr, momentum, nesterov):
    """(kernel, arguments) that sgd_update runs."""
    if momentum == 0:
        return _sgd_plain, (p, g, seg_start, seg_end, seg_lr, lr)
    return _sgd_momentum, (p, g, v, seg_start, seg_end, seg_lr, lr, momentum, nesterov)


# In both loops: slices, not p[i] over range(lo, hi): the loops then vectorise

@kernel
def _sgd_plain(p, g, seg_start, seg_end, seg_lr, lr):
    for k in range(seg_start.shape[0]):
        if seg_lr[k] == 0:
            continue
        rate = p.dtype.type(lr * seg_lr[k])
        lo, hi = seg_start[k], seg_end[k]
        ps, gs = p[lo:hi], g[lo:hi]
        for i in range(ps.size):
            ps[i] -= rate * gs[i]


@kernel
def _sgd_momentum(p, g, v, seg_start, seg_end, seg_lr, lr, momentum, nesterov):
    mom, normal = p.dtype.type(momentum), _smallest_normal(p)
    for k in range(seg_start.shape[0]):
        if seg_lr[k] == 0:
            continue
        rate = p.dtype.type(lr * seg_lr[k])
        lo, hi = seg_start[k], seg_end[k]
        ps, gs, vs = p[lo:hi], g[lo:hi], v[lo:hi]
        if nesterov:
            for i in range(ps.size):
                step = rate * gs[i]
                vi = _flush(mom * vs[i] - step, normal)
                vs[i] = vi
                ps[i] += mom * vi - step
        else:
            for i in range(ps.size):
                vi = _flush(mom * vs[i] - rate * gs[i], normal)
                vs[i] = vi
                ps[i] += vi


@kernel
def rmsprop_update(p, g, s, seg_start, seg_end, seg_lr, lr, rho, eps):
    dt = p.dtype.type
    keep, blend, e = dt(rho), dt(1 - rho), dt(eps)
    normal = _smallest_normal(p)
    for k in range(seg_start.shape[0]):
        if seg_lr[k] == 0:
            continue
        rate = dt(lr * seg_lr[k])
        lo, hi = seg_start[k], seg_end[k]
        ps, gs, ss = p[lo:hi], g[lo:hi], s[lo:hi]
        for i in range(ps.size):
            gi = gs[i]
            si = _flush(keep * ss[i] + blend * gi * gi, normal)
            ss[i] = si
            ps[i] -= rate * gi / (np.sqrt(si) + e)


@kernel
def adagrad_update(p, g, s, seg_start, seg_end, seg_lr, lr, eps):
    dt = p.dtype.type
    e = dt(eps)
    for k in range(seg_start.shape[0]):
        if seg_lr[k] == 0:
            continue
        rate = dt(lr * seg_lr[k])
        lo, hi = seg_start[k], seg_end[k]
        ps, gs, ss = p[lo:hi], g[lo:hi], s[lo:hi]
        for i in range(ps.size):
            gi = gs[i]
            si = ss[i] + gi * gi
            ss[i] = si
            ps[i] -= rate * gi / (np.sqrt(si) + e)


@kernel
def adam_update(p, g, m, v, seg_start, seg_end, seg_lr, lr, beta1, beta2, eps, t):
    dt = p.dtype.type
    b1, b2, e = dt(beta1), dt(beta2), dt(eps)
    a1, a2 = dt(1 - beta1), dt(1 - beta2)
    c1, c2 = dt(1 - beta1 ** (t + 1)), dt(1 - beta2 ** (t + 1))
    normal = _smallest_normal(p)
    for k in range(seg_start.shape[0]):
        if seg_lr[k] == 0:
            continue
        rate = dt(lr * seg_lr[k])
        lo, hi = seg_start[k], seg_end[k]
        ps, gs, ms, vs = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
        for i in range(ps.size):
            gi = gs[i]
            mi = _flush(b1 * ms[i] + a1 * gi, normal)
            vi = _flush(b2 * vs[i] + a2 * gi * gi, normal)
            ms[i] = mi
            vs[i] = vi
            ps[i] -= rate * (mi / c1) / (np.sqrt(vi / c2) + e)


@kernel
def regularize(p, g, seg_start, seg_end, seg_l1, seg_l2):
    """g += l1*sign(p) + 2*l2*p per segment; returns sum of l1*|p| + l2*p^2 (float64)."""
    dt = p.dtype.type
    total = 0.0
    for k in range(seg_start.shape[0]):
        l1 = dt(seg_l1[k])
        two_l2 = dt(2 * seg_l2[k])
        abs_sum = dt(0)
        sq_sum = dt(0)
        for i in range(seg_start[k], seg_end[k]):
            w = p[i]
            abs_sum += abs(w)
            sq_sum += w * w
            g[i] += l1 * np.sign(w) + two_l2 * w
        total += seg_l1[k] * abs_sum + seg_l2[k] * sq_sum
    return total


@kernel
def max_norm(p, seg_start, seg_rows, seg_cols, seg_by_column, seg_limit):
    """Rescale each unit's weights to norm <= limit. Segment k is a (rows, cols) row-major
    matrix starting at seg_start[k]: by_column 1 = a unit per column (dense W of shape
    (inputs, units)), 0 = a unit per row (a conv kernel (filters, ...) as (filters, rest);
    a vector as (1, length))."""
    dt = p.dtype.type
    tiny = dt(1e-12)
    for k in range(seg_start.shape[0]):
        base, rows, cols = seg_start[k], seg_rows[k], seg_cols[k]
        limit = dt(seg_limit[k])
        by_column = seg_by_column[k] != 0
        units = cols if by_column else rows
        length = rows if by_column else cols
        step = cols if by_column else 1
        for unit in range(units):
            first = base + (unit if by_column else unit * cols)
            sq = dt(0)
            for q in range(length):
                w = p[first + q * step]
                sq += w * w
            factor = min(dt(1), limit / max(np.sqrt(sq), tiny))
            for q in range(length):
                p[first + q * step] *= factor


@kernel
def mean_of_halves(g, g2, w, w2):
    """g = w g + w2 g2: the gradient of a batch from the mean gradients of its two halves
    (w, w2 = their shares of the batch)."""
    a, b = g.dtype.type(w), g.dtype.type(w2)
    for i in range(g.size):
        g[i] = a * g[i] + b * g2[i]


# ------------------------------------------------------------------- on the BLAS's team

def _team_task(kind: int, name: str) -> team.Task:
    """Update kernel `kind` (0 sgd, 1 sgd with momentum, 2 rmsprop, 3 adagrad, 4 adam) as a
    task of team.py, named `name` in this module: the threads of MKL's team take the parts
    of the flat arrays and run the serial kernel on each (float32; the scalars as
    TeamUpdate.run lays them out). Per element the arithmetic is the serial kernel's, so the
    results are the same bits. `kind` is a constant of the compiled code: numba drops the
    other kernels' branches, and keys the cached task by it."""
    def task(global_tid, bound_tid, job):
        j = team.words(job)
        s, p, g = team.scalars(j), team.array(j, 0, np.float32), team.array(j, 1, np.float32)
        a, b = team.array(j, 2, np.float32), team.array(j, 3, np.float32)
        k = team.take(j)
        while k < team.PARTS:
            lo, hi, start, end, rates = team.part(j, k)
            ps, gs, sa, sb = p[lo:hi], g[lo:hi], a[lo:hi], b[lo:hi]
            if kind == 0:
                _sgd_plain(ps, gs, start, end, rates, s[0])
            elif kind == 1:
                _sgd_momentum(ps, gs, sa, start, end, rates, s[0], s[1], s[2] != 0)
            elif kind == 2:
                rmsprop_update(ps, gs, sa, start, end, rates, s[0], s[1], s[2])
            elif kind == 3:
                adagrad_update(ps, gs, sa, start, end, rates, s[0], s[1])
            else:
                adam_update(ps, gs, sa, sb, start, end, rates, s[0], s[1], s[2], s[3],
                            np.int64(s[4]))
            k = team.take(j)
    task.__name__ = task.__qualname__ = name    # found by name here (backends/cpu/compiler.py's worker)
    return team.Task(task)


_sgd_plain_task = _team_task(0, "_sgd_plain_task")
_sgd_momentum_task = _team_task(1, "_sgd_momentum_task")
_rmsprop_task = _team_task(2, "_rmsprop_task")
_adagrad_task = _team_task(3, "_adagrad_task")
_adam_task = _team_task(4, "_adam_task")

_TASKS = {_sgd_plain: _sgd_plain_task, _sgd_momentum: _sgd_momentum_task,
          rmsprop_update: _rmsprop_task, adagrad_update: _adagrad_task,
          adam_update: _adam_task}


class TeamUpdate:
    """An update kernel's call, run on the BLAS's team (team.py): made once from the
    kernel and its arguments (p, g, slots..., seg_start, seg_end, seg_lr, scalars...), then
    run with each step's arguments, whose arrays must be the same ones."""

    def __init__(self, kernel, args):
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        self.arrays = len(arrays) - 3                   # the flat arrays, then the segments
        self.job = team.Job(arrays[:self.arrays], *arrays[self.arrays:])
        self.task = _TASKS[kernel]

    @staticmethod
    def task_for(kernel, args):
        """The task that runs this call on the team, or None: float32 arrays, a kernel
        with a task, a team."""
        if team.AVAILABLE and args[0].dtype == np.float32:
            return _TASKS.get(kernel)
        return None

    def run(self, args, threads: int) -> None:
        scalars = args[self.arrays + 3:]
        self.job.scalars[:len(scalars)] = scalars
        team.run(self.task, self.job, threads)
