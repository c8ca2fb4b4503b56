"""What a lowering sees of one fused group while the codegen writes a driver: buffer names,
shapes, attributes, where gradients go, the scratch buffers it asks for (see
backends/cpu/lower/__init__.py)."""
from __future__ import annotations

import numpy as np

from ...codegen.scalar import scalar_code, uses
from ...ir import STREAM_WORDS, Ref, Space, Vjp
from ...passes.fuse import Group


class Site:
    """What a rule sees of one group while the codegen assembles a driver."""

    def __init__(self, gen, group: Group, index: int):
        self.gen, self.group, self.index = gen, group, index
        self.post: list[str] = []
        self.unfit = False          # the kernel's result adds to the driver's `unfit`

    # names of things
    def node(self, n):
        """The record of node n (ir.py)."""
        return self.gen.graph.node(n)

    def shape(self, n):
        return tuple(self.node(n).shape)

    def val(self, n):
        return self.gen.use(Ref(Space.VALUE, n), self.index)

    def grad(self, n):
        return self.gen.use(Ref(Space.GRAD, n), self.index)

    def has_grad(self, n):
        return n in self.gen.needs_grad

    def param(self, key):
        return self.gen.use(Ref(Space.PARAM, key), self.index)

    def packed(self, key):
        """The packed copy of weight matrix `key` (kernels/cpu/packed.py), in a frozen
        module's drivers; None elsewhere."""
        if not self.gen.frozen:
            return None
        self.gen.packed_params.add(key)
        return self.gen.use(Ref(Space.PACKED, key), self.index)

    def pgrad(self, key):
        """Where a gradient of parameter `key` goes: its gradient buffer for the first
        contribution; a node that borrows the parameter (spec/borrow.py) writes a scratch
        buffer that is added into it afterwards."""
        target = self.gen.use(Ref(Space.PARAM_GRAD, key), self.index)
        seen = ("param", key)
        count = self.gen.contributions.get(seen, 0)
        self.gen.contributions[seen] = count + 1
        if count == 0:
            return target
        shape = tuple(self.gen.program.params[key].spec.shape)
        scratch = self.gen.scratch(Ref(Space.SCRATCH, f"{key}_{count}"), shape, self.index,
                                   layout="fixed")
        self.post.append(f"_add_into({target}, {scratch})")
        return scratch

    def state(self, n, name):
        """A persistent state array of layer n (batchnorm's running statistics)."""
        return self.gen.use(Ref(Space.STATE, f"{self.node(n).layer}.{name}"), self.index)

    def param_slots(self, n):
        """{parameter name: key} of n's parameters that get gradients."""
        return self.gen.graph.node(Vjp(n)).params

    def input_grad(self, n, j):
        """Where the gradient for input j of n goes: its grad buffer if this is the first
        contribution, else a scratch buffer added into it afterwards."""
        graph = self.gen.graph
        if Vjp(n) not in graph or j not in graph.node(Vjp(n)).inputs:
            return None
        src = self.node(n).inputs[j]
        target = self.grad(src)
        count = self.gen.contributions.get(src, 0)
        self.gen.contributions[src] = count + 1
        if count == 0:
            return target
        scratch = self.gen.scratch(Ref(Space.SCRATCH, f"{src}_{count}"), self.shape(src),
                                   self.index)
        self.post.append(f"_add_into({target}, {scratch})")
        return scratch

    def check_input(self, n) -> bool:
        """Does this kernel's note of non-finite results stand in for the scan of input `n`
        for NaN and infinity? For a float network input read by a dense layer: each of its
        output rows sums a product with every value of the input row, and a NaN or an
        infinity in a sum of products (with any weights, zero included) makes the sum NaN
        or infinite, so the kernel notes it. In predict the driver returns how many kernels
        did; a nonzero total sends the batch to the full check (CPUExecutor.predict), which
        tells a bad input from non-finite parameters. In training the driver then returns a
        NaN loss, which means no update and the same check (CPUExecutor._backprop); not for
        networks with state (batchnorm's running statistics would take the NaN in)."""
        d = self.node(n)
        mode = self.gen.mode
        if mode == "evaluate" or (mode == "train" and self.gen.program.state) \
                or d.kind != "input" or not (d.dtype or "float").startswith("float"):
            return False
        self.unfit = True
        self.gen.checked_inputs[mode].add(n)
        return True

    def alias(self, name, base) -> bool:
        """Make buffer `name` a view of buffer `base` in its own shape, so that nothing has to
        copy one into the other, when both are buffers of the arena holding as many values
        per sample (a network input is the caller's array, and a scratch buffer may have
        another layout). True when it is done. Only its producer writes a value buffer, and a
        gradient buffer is only written before its one reader (a first contribution, see
        input_grad), so the two names never hold different values while both are used."""
        gen = self.gen
        name, base = gen.refs[name], gen.refs[base]
        shapes = [gen._shape_of(b) for b in (name, base)]
        if None in shapes or name in gen.shapes or base in gen.shapes \
                or int(np.prod(shapes[0])) != int(np.prod(shapes[1])):
            return False
        gen.aliases[name] = base
        gen.use(name, self.index)
        gen.use(base, self.index)
        return True

    def stream(self, n):
        """(words, index) of node n's random numbers (nngraph/random_stream.py) in the train
        driver: the driver's array of the run's stream words (model seed, step and the index
        of the run's first sample in the batch, which CPUExecutor writes before each run)
        and the index the reference backend seeds n's generator with (its place in the
        evaluation order of the losses; nodes that no loss reads, which the reference does
        not run in training, come after them). None in evaluate and predict, which draw
        nothing."""
        gen = self.gen
        if gen.mode != "train":
            return None
        if not hasattr(gen, "_stream_index"):
            prog = gen.program
            order = list(prog.eval_order(list(prog.losses)))
            seen = set(order)
            order += [m for m in prog.eval_order(list(prog.losses) + list(prog.outputs.values()))
                      if m not in seen]
            gen._stream_index = {m: i for i, m in enumerate(order)}
        return gen.use(STREAM_WORDS, self.index), gen._stream_index[n]

    def keeps_pre(self, epi) -> bool:
        """Does the fused activation's backward need its input (the pre-activation)?"""
        return uses(self.node(epi).op.scalar[1], "x")

    def act(self, n, var):
        d = self.node(n)
        return scalar_code(d.op.scalar[0], d.attrs, {"x": var})

    def act_grad(self, n, names):
        d = self.node(n)
        return scalar_code(d.op.scalar[1], d.attrs, names)

    def scratch(self, tag, shape, layout="batch", kind="float"):
        return self.gen.scratch(Ref(Space.SCRATCH, f"{self.group.anchor}_{tag}"), shape,
                                self.index, layout, kind)

    def njit(self, name, args, body, header):
        """Source of a generated helper kernel (epilogues around hand-written kernels)."""
        return ("@kernel\n"
                f"def {name}({', '.join(args)}):\n    \"\"\"{header}\"\"\"\n" +
                "\n".join(body) + "\n")
