"""Generate the CPU module of a Program: one njit kernel per fused group and three plain
drivers (train_step, evaluate, predict) that call them on views of one arena.

CPUCodegen runs the cpu stage of nngraph/pipeline.py (stages.py) over a program; what each
group becomes is its op's lowering (lower/), seen through a Site (site.py). The source is
written to a file named by its hash and imported (module.py); kernels use `cache=True`, so
a second process with the same network finds both and compiles nothing.
"""
from __future__ import annotations

import re
import textwrap

import numba
import numpy as np

from ... import pipeline
from ...ir import ARENA, STREAM_WORDS, Ref, Space, Vjp, forward_of
from ...passes.fuse import Group
from ...passes.plan_memory import Buffer, plan_memory
from ...version import __version__
from . import kernel_modules, lower
from .lower import Extern, Kernel, View
from .lower.conv2d import pools_in_copy_back
from .kernel_table import KernelTable, Label
from .render import Line, generated_params, kernel_params
from .site import Site
from .stages import ModeState


class CPUCodegen:
    """The generated module of `program`: kernels and the drivers of train, evaluate and
    predict; `frozen`: of predict alone, for Model.freeze(), whose dense layers multiply by
    packed copies of their weights (q_ arguments, see Site.packed)."""

    lowerings = lower.REGISTRY
    stage = "cpu"                                   # its passes in nngraph/pipeline.py
    kernel_package = kernel_modules.PACKAGE         # the hand-written kernels

    def __init__(self, program, dtype, frozen: bool = False):
        self.program = program
        self.frozen = frozen
        self.packed_params: set = set()             # weights the drivers take packed
        self.graph = program.graph
        self.dtype = np.dtype(dtype)
        self.needs_grad = self.graph.graph["needs_grad"]
        self.modes = ("predict",) if frozen else ("train", "evaluate", "predict")
        self.kernels_by_code = KernelTable()      # name -> Entry (kernel_table.py)
        self.drivers: dict[str, str] = {}         # driver -> its source, as the module has it
        self.positional: dict[str, str] = {}      # driver -> its source without keywords
        self.final_names: dict = {}               # kernel name -> final name (KernelTable.final_names)
        self.plans: dict[str, tuple] = {}         # driver -> (buffers, per-sample size)
        # inputs that the kernels of predict and train check (Site.check_input)
        self.checked_inputs: dict = {"train": set(), "predict": set()}
        self.per_mode: dict = {}                  # driver -> its ModeState (stages.py)
        self.refs: dict = {}                      # buffer name in the code -> its ir.Ref
        pipeline.run(self.stage, self)

    def _write_drivers(self) -> None:
        """Give kernels their final names (KernelTable.final_names), then render the drivers."""
        names = self.final_names = self.kernels_by_code.final_names()
        self.kernels_by_code = self.kernels_by_code.renamed(names)
        for mode in self.modes:
            self._enter(mode)
            lines, buffers = self.per_mode[mode].lines, self.plans[mode][0]
            self.drivers[mode] = self._driver_source(mode, lines, buffers)
            self.positional[mode] = self._driver_source(mode, lines, buffers, keywords=False)

    # ------------------------------------------------------------------ buffers
    def use(self, ref: Ref, index) -> str:
        """Note that group `index` of the driver uses buffer `ref`; its name in the code."""
        self.refs[ref.name] = ref
        self.uses.setdefault(ref, []).append(index)
        return ref.name

    def scratch(self, ref: Ref, shape, index, layout="batch", kind="float") -> str:
        self.shapes[ref] = (tuple(shape), layout, kind)
        return self.use(ref, index)

    # ------------------------------------------------------------------ drivers
    def _enter(self, mode) -> None:
        """Point the per-driver bookkeeping (what Site reads and writes) at driver `mode`."""
        st = self.per_mode.setdefault(mode, ModeState())
        self.mode = mode
        self.uses, self.shapes, self.contributions, self.aliases = \
            st.uses, st.shapes, st.contributions, st.aliases

    def _schedule(self, mode) -> list:
        """The groups driver `mode` runs, in order: the backward only in training; in
        evaluate and predict a merged conv2d group pools too (its pooling group does not
        run) and a loss group computes the loss alone."""
        prog = self.program
        targets = list(prog.outputs.values()) if mode == "predict" else \
            list(prog.losses) + list(prog.outputs.values())
        wanted = set(prog.eval_order(targets))
        pooled = self.pooled if mode != "train" else {}
        merged = set(pooled.values())
        out = []
        for group in self.groups:
            if group.kind == "backward" and mode != "train":
                continue
            if group.kind != "backward" and not set(group.nodes) & wanted:
                continue
            if group.anchor in merged and group.kind == "forward":
                continue                        # pooled in the conv's copy back
            if group.name in pooled:
                group = Group(group.name, "forward", group.nodes + [pooled[group.name]],
                              anchor=group.anchor, epilogue=group.epilogue,
                              meta={"pool": pooled[group.name]})
            if mode != "train" and group.kind == "loss":
                group = Group(group.name, "loss", group.nodes[:1], anchor=group.anchor)
            out.append(group)
        return out

    def _emit_driver(self, mode) -> None:
        """Each scheduled group's lowering as driver lines; the values read after the driver
        returns (outputs, what the metrics compare) stay live to its end."""
        self._enter(mode)
        st = self.per_mode[mode]
        st.lines = []
        for index, group in enumerate(st.groups):
            st.lines += self._emit(group, index, mode)
        end = len(st.groups)
        g, prog = self.graph, self.program
        for n in list(prog.outputs.values()) + [i for l in prog.losses
                                                 for i in g.node(l).inputs]:
            if Ref(Space.VALUE, n) in self.uses:
                self.uses[Ref(Space.VALUE, n)].append(end)

    def _plan_driver(self, mode) -> None:
        """The buffers driver `mode` uses, placed in one arena by live range."""
        self._enter(mode)
        buffers = []
        for ref, idx in self.uses.items():
            if ref.space not in ARENA:
                continue
            shape, layout, kind = self.shapes.get(ref) or (self._shape_of(ref), "batch",
                                                           "float")
            if shape is None:
                continue
            root = self._alias_root(ref)
            buffers.append(Buffer(ref.name, shape, min(idx), max(idx), layout=layout, kind=kind,
                                  alias_of=root and root.name))
        sizes = {kind: plan_memory([b for b in buffers if b.kind == kind])
                 for kind in ("float", "int")}
        self.plans[mode] = (buffers, sizes)

    def _pooled_convs(self) -> dict:
        """{conv group name: maxpool node} for evaluate and predict: a conv2d whose output
        (after relu, or none) only a 2x2 max pooling at stride 2 reads writes the pooled
        values in its copy back (kernels/cpu/conv.py conv2d_forward's `pool`), and the
        pooling kernel does not run. Training keeps them apart: the backward reads the
        conv's output and the pooling's arg-max."""
        g, prog = self.graph, self.program
        read_after = set(prog.outputs.values()) | {i for l in prog.losses
                                                   for i in g.node(l).inputs}
        pools = {grp.anchor: grp for grp in self.groups
                 if grp.kind == "forward" and grp.nodes == [grp.anchor]}
        out = {}
        for index, grp in enumerate(self.groups):
            if grp.kind != "forward" or g.node(grp.anchor).kind != "layer":
                continue
            last = grp.epilogue or grp.anchor
            users = [c for c in g.successors(last)
                     if isinstance(c, str) and g.node(c).kind in ("layer", "loss")]
            if len(users) != 1 or last in read_after or users[0] not in pools:
                continue
            pool_site = Site(self, pools[users[0]], index)
            if pools_in_copy_back(Site(self, grp, index), pool_site):
                out[grp.name] = users[0]
        return out

    def _alias_root(self, ref):
        """The buffer whose space `ref` views, following views of views (a reshape's
        output flattened: the backward makes the later view first); None for a buffer of
        its own."""
        if ref not in self.aliases:
            return None
        while ref in self.aliases:
            ref = self.aliases[ref]
        return ref

    def _shape_of(self, ref):
        """Shape of a node's value or gradient buffer; None for input data (not arena)
        and for scratch buffers (their shapes are given where they are asked for)."""
        if ref.space not in (Space.VALUE, Space.GRAD):
            return None
        d = self.graph.node(ref.key)
        if d.kind == "input" and ref.space == Space.VALUE:
            return None
        return tuple(d.shape)

    def _emit(self, group, index, mode):
        site = Site(self, group, index)
        rule = self.lowerings.rule_for(site)
        counted = dict(self.contributions)
        result = rule.emit(site) if rule else None
        self.per_mode[mode].runs.append(result)
        if result is None:
            self.per_mode[mode].reference_ops.update(
                self.graph.node(forward_of(n)).op.name for n in group.nodes)
            # a rule that declines may have asked where its input gradients go: the
            # fallback asks again, and must get the same first-contribution targets
            self.contributions.clear()
            self.contributions.update(counted)
            site = Site(self, group, index)
            return self._fallback(site, mode)
        post = [Line(text=p) for p in site.post]
        if isinstance(result, View):
            return [Line(text=f"# {result.name}: a view of {result.base} (no copy)")] + post
        if isinstance(result, Extern):         # calls of hand-written kernels, plus helpers
            finals = {name: self._add_kernel(name, src.replace(f"def {name}(", "def __KERNEL__("),
                                             label=self._label(group, name))
                      for name, src in result.helpers.items()}
            lines = [Line(finals.get(c.function, c.function), list(c.args),
                          generated_params(result.helpers[c.function]) if c.function in finals
                          else kernel_params(c.function, self.kernel_package),
                          note=c.note) for c in result.calls]
            if site.unfit:                     # the first call is the checking kernel's
                lines[0].target = "unfit += "
            for line, c in zip(lines, result.calls):
                if c.returns:
                    line.target = self._loss_target(group)
            return lines + post
        assert isinstance(result, Kernel), f"{rule.op} {rule.kind}: {result!r}"
        args, call = result.args, result.call
        name = f"k_{group.name}"
        header = self._header(group)
        src = self._kernel_source(result, header)
        name = self._add_kernel(name, src, "_eval" if mode != "train" else "_2",
                                self._label(group, name))
        target = self._loss_target(group) if group.kind == "loss" else \
            "unfit += " if site.unfit else ""
        return [Line(name, list(call), tuple(args), target=target)] + \
            [Line(text=p) for p in site.post]

    def _loss_target(self, group) -> str:
        return "loss += {w!r} * ".format(w=self.graph.node(group.anchor).attrs["weight"])

    def _kernel_source(self, result: Kernel, header: str) -> str:
        """The source of a Kernel result, defining __KERNEL__ (kernel_table.py)."""
        return ("@kernel\n"
                f"def __KERNEL__({', '.join(result.args)}):\n    \"\"\"{header}\"\"\"\n" +
                "\n".join(result.body) + ("\n    return 0.0\n" if not result.returns else "\n"))

    def uses_reference(self, mode: str) -> bool:
        """Does driver `mode` run a numpy reference rule (a group no lowering covers)?"""
        return any(r is None for r in self.per_mode[mode].runs)

    def reference_ops(self, mode: str) -> set:
        """The ops whose groups run their numpy rule in driver `mode`."""
        return set(self.per_mode[mode].reference_ops)

    def uses_stream(self, mode: str) -> bool:
        """Does driver `mode` draw random numbers (take the stream words)?"""
        return STREAM_WORDS in self.per_mode[mode].uses

    def calls_modules(self, mode: str) -> set:
        """The hand-written kernel modules driver `mode` calls ('conv', 'recurrent', ...)."""
        return {c.function.split(".")[0][1:] for r in self.per_mode[mode].runs
                if isinstance(r, Extern) for c in r.calls if "." in c.function}

    def _label(self, group, name):
        """What kernel `name` of `group` computes, should other groups run it too: (anchor
        op, epilogue op or None, backward?, the name's tail after the group's name); None
        for a helper named after what it computes already (k_elu_epilogue)."""
        prefix = f"k_{group.name}"
        if not name.startswith(prefix):
            return None
        epi = self.graph.node(group.epilogue).op.name if group.epilogue else None
        return Label(self.graph.node(group.anchor).op.name, epi, group.kind == "backward",
                     name[len(prefix):])

    def _add_kernel(self, name, src, suffix="_2", label=None):
        return self.kernels_by_code.add(name, src, suffix, label)

    @property
    def kernels(self) -> dict:
        """{kernel name: source} (KernelTable.sources)."""
        return self.kernels_by_code.sources()

    def _fallback(self, site, mode):
        """Run the reference rule from the driver for a group no rule covers."""
        group, g = site.group, self.graph
        lines = []
        for n in group.nodes:
            if isinstance(n, Vjp):
                f = n.of
                d = g.node(f)
                targets = [site.input_grad(f, j) for j in range(len(d.inputs))]
                pg = {p: site.pgrad(k) for p, k in g.node(n).params.items()}
                loss = d.kind == "loss"
                xs = ", ".join(site.val(i) for i in d.inputs)
                y, gy = ("None", "None") if loss else (site.val(f), site.grad(f))
                lines.append(f"R.backward({f!r}, [{xs}], {y}, {gy}, "
                             f"[{', '.join(t or 'None' for t in targets)}], "
                             f"{{{', '.join(f'{p!r}: {v}' for p, v in pg.items())}}})")
                lines += site.post
                site.post = []
            else:
                d = g.node(n)
                ins = ", ".join(site.val(i) for i in d.inputs)
                if d.kind == "loss":
                    w = d.attrs["weight"]
                    lines.append(f"loss += {w!r} * R.loss({n!r}, [{ins}])")
                else:
                    lines.append(f"R.forward({n!r}, [{ins}], {site.val(n)})")
        return [Line(text=line) for line in lines]

    def _header(self, group):
        parts = []
        for n in group.nodes:
            fwd = forward_of(n)
            d = self.graph.node(fwd)
            what = f"{'backward of ' if isinstance(n, Vjp) else ''}{fwd} ({d.op.name})"
            ins = ", ".join("N×" + "×".join(map(str, self.graph.node(i).shape))
                            for i in d.inputs)
            parts.append(f"{what}: {ins} -> N×{'×'.join(map(str, d.shape)) or '1'}")
        return "; ".join(parts)

    def _driver_source(self, mode, lines, buffers, keywords=True):
        """Driver `mode`'s source: a function of R (runtime.Reference) and of every buffer
        it uses, by name (module.call_driver passes them), running its Lines (render.py)."""
        lines = [textwrap.indent(line.source(self.final_names, self.refs, keywords, 92), "    ")
                 for line in lines]
        names = {b.name for b in buffers}
        spaces = [("the batch", (Space.VALUE,)), ("parameters", (Space.PARAM, Space.PACKED)),
                  ("their gradients", (Space.PARAM_GRAD,)), ("layer state", (Space.STATE,)),
                  ("the random stream", (Space.STREAM,))]
        groups = [(what, sorted(r.name for r in self.uses
                                if r.space in kinds and r.name not in names))
                  for what, kinds in spaces]
        groups.append(("the arena", sorted(names)))
        head = _signature(f"def {mode}(", ["R"], [(w, g) for w, g in groups if g]) + [
                f"    \"\"\"{mode} driver: "
                f"{sum(line.is_call for line in self.per_mode[mode].lines)} calls.\"\"\""]
        checks = bool(self.checked_inputs.get(mode))
        if mode != "predict":
            head.append("    loss = 0.0")
        if mode == "predict" or checks:
            head.append("    unfit = 0   # how many kernels that check inputs saw NaN or infinity")
        if mode == "predict":
            tail = ["    return unfit"]
        elif checks:
            tail = ["    return loss if not unfit else math.nan   # no update: see Site.check_input"]
        else:
            tail = ["    return loss"]
        return "\n".join(head + lines + tail + [""])

    # ------------------------------------------------------------------ module
    def _doc_head(self, what: str) -> list:
        """The generated module's docstring up to its end: what it is, for which spec, the
        versions that made it, and its fused groups."""
        net = self.program.net
        return [f'"""nngraph generated {what} for spec {net.name!r} ({net.file})' +
                (", frozen: predict on packed weights." if self.frozen else "."),
                f"dtype {self.dtype}; nngraph {__version__}, numba {numba.__version__}.",
                "", "Fused groups:"] + \
            [f"  {g.name:<28} {' + '.join(forward_of(n) for n in g.nodes)}" for g in self.groups]

    def source(self) -> str:
        lines = self._doc_head("CPU code")
        body = "\n\n".join(self.kernels.values())
        drivers = "\n\n".join(self.drivers.values())
        # only the kernel modules this network calls (kernel_modules.modules says why)
        used = [f"{m} as {kernel_modules.alias(m)}" for m in kernel_modules.used(body + drivers)]
        code = body + drivers
        lines += ['"""'] + (["import math", ""] if "math." in code else []) + \
            ["import numpy as np", ""]
        if used:
            lines.append("from nngraph.kernels.cpu import " + ", ".join(used))
        if re.search(r"\bgemm\(", code):
            lines.append("from nngraph.kernels.cpu.blas import gemm")
        if self.frozen:
            lines.append("from nngraph.kernels.cpu.packed import gemm_packed")
        lines += ["from nngraph.kernels.cpu._views import flat as _flat   # a.reshape(-1), "
                  "C-contiguous a",
                  "from nngraph.kernels.cpu._jit import kernel   # njit, cached, fastmath "
                  "without nnan/ninf", "",
                  f"_f = np.{self.dtype.name}",
                  "_none1, _none2 = np.zeros(0, _f), np.zeros((0, 0), _f)   # skipped outputs",
                  "_none3, _none4 = np.zeros((0, 0, 0), _f), np.zeros((0, 0, 0, 0), _f)",
                  "", "",
                  "@kernel",
                  "def _add_into(a, b):", "    af = _flat(a)", "    bf = _flat(b)",
                  "    for i in range(af.size):", "        af[i] += bf[i]", "", "", ""]
        return "\n".join(lines) + body + "\n\n" + drivers


def _signature(start: str, first: list, groups: list, width: int = 96) -> list:
    """`start` + the parameters, `first` on the first line, then each (comment, names) group
    wrapped under the opening parenthesis, its comment after its last line."""
    pad = " " * len(start)
    out = [start + ", ".join(first) + ","]
    for i, (what, names) in enumerate(groups):
        end = "):" if i == len(groups) - 1 else ","
        rows = textwrap.wrap(", ".join(names) + end, width - len(pad), break_long_words=False,
                             break_on_hyphens=False)
        out += [pad + row for row in rows]
        out[-1] += f"   # {what}"
    return out

