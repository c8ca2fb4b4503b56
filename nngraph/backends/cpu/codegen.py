"""Generate the CPU module of a Program: one njit kernel per fused group and three plain
drivers (train_step, evaluate, predict) that call them on views of one arena.

The source is written to a real file under the cache directory, named by the hash of its
text, and imported; kernels use `cache=True`, so a second process with the same network
finds both the source and Numba's compiled code and compiles nothing.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys

import numba
import numpy as np

from ...version import __version__
from ...cache import cache_dir
from ...passes.fuse import Group, _ident, fuse
from ...passes.plan_memory import Buffer, plan_memory
from ... import pipeline
from . import lower
from .lower import Extern, Kernel, View
from .lower.conv2d import pools_in_copy_back, runs_wide
from ...codegen.scalar import scalar_code, uses

KERNEL_MODULES = {"_conv": "conv", "_convw": "conv_wide", "_pool": "pool",
                  "_rec": "recurrent", "_norm": "norm", "_emb": "embedding",
                  "_rng": "random_stream", "_smx": "softmax"}
"""The hand-written kernel modules of nngraph.kernels.cpu, by the name generated code
imports each as."""

GEMM_MODULES = ("_conv", "_convw", "_rec")
"""Those of KERNEL_MODULES whose kernels call gemm (tests/test_parallel_compile.py checks)."""

STREAM_WORDS = "rng_words"
"""The drivers' array of the stream words of a run (see Site.stream)."""

_CALLS_GEMM = re.compile(r"\bgemm(_packed)?\(|\b(" + "|".join(GEMM_MODULES) + r")\.")


def calls_gemm(source: str) -> bool:
    """Do the kernels of generated `source` call gemm, themselves or through a kernel of
    GEMM_MODULES? (Then compiling them binds a BLAS product, kernels/cpu/blas.py.)"""
    return _CALLS_GEMM.search(source) is not None


class Site:
    """What a rule sees of one group while the codegen assembles a driver."""

    def __init__(self, gen, group: Group, index: int):
        self.gen, self.group, self.index = gen, group, index
        self.post: list[str] = []
        self.unfit = False          # the kernel's result adds to the driver's `unfit`

    # names of things
    def node(self, n):
        return self.gen.graph.nodes[n]

    def shape(self, n):
        return tuple(self.node(n)["shape"])

    def val(self, n):
        return self.gen.use(f"v_{_ident(n)}", self.index)

    def grad(self, n):
        return self.gen.use(f"g_{_ident(n)}", self.index)

    def has_grad(self, n):
        return n in self.gen.needs_grad

    def param(self, key):
        return self.gen.use(f"p_{_ident(key)}", self.index)

    def packed(self, key):
        """The packed copy of weight matrix `key` (kernels/cpu/packed.py), in a frozen
        module's drivers; None elsewhere."""
        if not self.gen.frozen:
            return None
        self.gen.packed_params.add(key)
        return self.gen.use(f"q_{_ident(key)}", self.index)

    def pgrad(self, key):
        return self.gen.use(f"gp_{_ident(key)}", self.index)

    def state(self, n, name):
        """A persistent state array of layer n (batchnorm's running statistics)."""
        return self.gen.use(f"st_{_ident(self.node(n)['layer'])}_{name}", self.index)

    def param_slots(self, n):
        return self.gen.graph.nodes[f"vjp:{n}"]["param_slots"]

    def input_grad(self, n, j):
        """Where the gradient for input j of n goes: its grad buffer if this is the first
        contribution, else a scratch buffer added into it afterwards."""
        vjp = self.gen.graph.nodes.get(f"vjp:{n}")
        if vjp is None or f"in{j}" not in vjp["input_slots"]:
            return None
        src = self.node(n)["inputs"][j]
        target = self.grad(src)
        count = self.gen.contributions.get(src, 0)
        self.gen.contributions[src] = count + 1
        if count == 0:
            return target
        scratch = self.gen.scratch(f"s_{_ident(src)}_{count}", self.shape(src), self.index)
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
                or d["kind"] != "input" or not (d.get("dtype") or "float").startswith("float"):
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
        return uses(self.node(epi)["op"].scalar[1], "x")

    def act(self, n, var):
        d = self.node(n)
        return scalar_code(d["op"].scalar[0], d["attrs"], {"x": var})

    def act_grad(self, n, names):
        d = self.node(n)
        return scalar_code(d["op"].scalar[1], d["attrs"], names)

    def scratch(self, tag, shape, layout="batch", kind="float"):
        return self.gen.scratch(f"s_{_ident(self.group.anchor)}_{tag}", shape, self.index,
                                layout, kind)

    def njit(self, name, args, body, header):
        """Source of a generated helper kernel (epilogues around hand-written kernels)."""
        return ("@kernel\n"
                f"def {name}({', '.join(args)}):\n    \"\"\"{header}\"\"\"\n" +
                "\n".join(body) + "\n")


class CPUCodegen:
    """The generated module of `program`: kernels and the drivers of train, evaluate and
    predict; `frozen`: of predict alone, for Model.freeze(), whose dense layers multiply by
    packed copies of their weights (q_ arguments, see Site.packed)."""

    def __init__(self, program, dtype, frozen: bool = False):
        self.program = program
        self.frozen = frozen
        self.packed_params: set = set()             # weights the drivers take packed
        self.graph = program.graph
        self.dtype = np.dtype(dtype)
        self.needs_grad = self.graph.graph["needs_grad"]
        self.modes = ("predict",) if frozen else ("train", "evaluate", "predict")
        self.kernels_by_code: dict = {}           # name -> (code, docstrings, names asked)
        self.drivers: dict[str, str] = {}
        self.plans: dict[str, tuple] = {}         # driver -> (buffers, per-sample size)
        # inputs that the kernels of predict and train check (Site.check_input)
        self.checked_inputs: dict = {"train": set(), "predict": set()}
        self.per_mode: dict = {}                  # driver -> what emit left (_ModeState)
        pipeline.run("cpu", self)

    def _rename(self, names: dict) -> None:
        """Give kernels their final names (see _shared_names), in drivers too."""
        self.kernels_by_code = {names[k]: v for k, v in self.kernels_by_code.items()}
        for old, new in names.items():
            if old != new:
                call = re.compile(rf"\b{old}\(")
                self.drivers = {m: call.sub(f"{new}(", d) for m, d in self.drivers.items()}
                self._renamed(call, new)

    def _renamed(self, call, new) -> None:
        """Hook for subclasses that keep driver lines of their own."""

    # ------------------------------------------------------------------ buffers
    def use(self, name, index):
        self.uses.setdefault(name, []).append(index)
        return name

    def scratch(self, name, shape, index, layout="batch", kind="float"):
        self.shapes[name] = (tuple(shape), layout, kind)
        return self.use(name, index)

    # ------------------------------------------------------------------ drivers
    def _enter(self, mode) -> None:
        """Point the per-driver bookkeeping (what Site reads and writes) at driver `mode`."""
        st = self.per_mode.setdefault(mode, _ModeState())
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
                                                 for i in g.nodes[l]["inputs"]]:
            if f"v_{_ident(n)}" in self.uses:
                self.uses[f"v_{_ident(n)}"].append(end)

    def _plan_driver(self, mode) -> None:
        """The buffers driver `mode` uses, placed in one arena by live range."""
        self._enter(mode)
        buffers = []
        for name, idx in self.uses.items():
            if name.startswith(("p_", "gp_", "st_", "q_", "_")):
                continue
            shape, layout, kind = self.shapes.get(name) or (self._shape_of(name), "batch",
                                                            "float")
            if shape is None:
                continue
            buffers.append(Buffer(name, shape, min(idx), max(idx), layout=layout, kind=kind,
                                  alias_of=self._alias_root(name)))
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
                                                   for i in g.nodes[l]["inputs"]}
        pools = {grp.anchor: grp for grp in self.groups
                 if grp.kind == "forward" and grp.nodes == [grp.anchor]}
        out = {}
        for index, grp in enumerate(self.groups):
            if grp.kind != "forward" or g.nodes[grp.anchor].get("kind") != "layer":
                continue
            last = grp.epilogue or grp.anchor
            users = [c for c in g.successors(last)
                     if g.nodes[c].get("kind") in ("layer", "loss")]
            if len(users) != 1 or last in read_after or users[0] not in pools:
                continue
            pool_site = Site(self, pools[users[0]], index)
            if pools_in_copy_back(Site(self, grp, index), pool_site):
                out[grp.name] = users[0]
        return out

    def _alias_root(self, name):
        """The buffer whose space `name` views, following views of views (a reshape's
        output flattened: the backward makes the later view first); None for a buffer of
        its own."""
        if name not in self.aliases:
            return None
        while name in self.aliases:
            name = self.aliases[name]
        return name

    def _shape_of(self, name):
        """Shape of a node's value or gradient buffer; None for input data (not arena)."""
        if not hasattr(self, "_node_of"):
            self._node_of = {f"{p}_{_ident(n)}": n for n in self.graph.nodes for p in "vg"}
        n = self._node_of.get(name)
        if n is None:
            return None
        d = self.graph.nodes[n]
        if d.get("kind") == "input" and name.startswith("v_"):
            return None
        return tuple(d["shape"])

    def _emit(self, group, index, mode):
        site = Site(self, group, index)
        rule = lower.rule_for(site)
        result = rule.emit(site) if rule else None
        if result is None:
            return self._fallback(site, mode)
        if isinstance(result, View):
            return [f"    # {result.name}: a view of {result.base} (no copy)"] + \
                [f"    {p}" for p in site.post]
        if isinstance(result, Extern):         # calls of hand-written kernels, plus helpers
            finals = {name: self._add_kernel(name, src.replace(f"def {name}(", "def __KERNEL__("))
                      for name, src in result.helpers.items()}
            for call in result.calls:
                call.function = finals.get(call.function, call.function)
            lines = [call.source() for call in result.calls]
            if site.unfit:                     # the first call is the checking kernel's
                lines[0] = f"unfit += {lines[0]}"
            return [f"    {line}" for line in lines] + [f"    {p}" for p in site.post]
        assert isinstance(result, Kernel), f"{rule.op} {rule.kind}: {result!r}"
        args, body, call, returns = result.args, result.body, result.call, result.returns
        name = f"k_{group.name}"
        header = self._header(group)
        src = ("@kernel\n"
               f"def __KERNEL__({', '.join(args)}):\n    \"\"\"{header}\"\"\"\n" +
               "\n".join(body) + ("\n    return 0.0\n" if not returns else "\n"))
        name = self._add_kernel(name, src, "_eval" if mode != "train" else "_2")
        target = "loss += {w!r} * ".format(w=self.graph.nodes[group.anchor]["attrs"]["weight"]) \
            if group.kind == "loss" else "unfit += " if site.unfit else ""
        return [f"    {target}{name}({', '.join(call)})"] + [f"    {p}" for p in site.post]

    def _add_kernel(self, name, src, suffix="_2"):
        """Add kernel source `src` (defining __KERNEL__) under `name`, or under the name of
        a kernel with the same code already added, whatever its docstring (one compiled
        kernel serves every group whose code is the same: its docstring then lists them),
        or, when `name` holds other code, under name + suffix (+ a count)."""
        lines = src.split("\n")
        at = next(i for i, line in enumerate(lines) if line.startswith("def __KERNEL__("))
        doc = ""
        if lines[at + 1].startswith('    """'):
            doc = lines[at + 1].strip()[3:-3]
            lines[at + 1] = '    """__DOC__"""'
        code = "\n".join(lines)
        for have, (text, docs, names) in self.kernels_by_code.items():
            if text == code:
                if doc not in docs:
                    docs.append(doc)
                names.append(name)
                return have
        final, count = name, 1
        while final in self.kernels_by_code:
            count += 1
            final = f"{name}{suffix}" if count == 2 else f"{name}{suffix}{count - 1}"
        self.kernels_by_code[final] = (code, [doc], [name])
        return final

    @property
    def kernels(self) -> dict:
        """{kernel name: source}; a kernel several groups share lists them all in its
        docstring."""
        return {name: code.replace("__KERNEL__", name).replace("__DOC__", "\n    ".join(docs))
                for name, (code, docs, _) in self.kernels_by_code.items()}

    def _shared_names(self) -> dict:
        """{kernel name: final name}: a kernel several groups share is named after them,
        k_s2 and k_s4 (or k_s2_value and k_s4_value) becoming k_s2_s4 (k_s2_s4_value);
        other names stay."""
        out = {}
        for have, (_, _, names) in self.kernels_by_code.items():
            asked = list(dict.fromkeys(names))
            tail = os.path.commonprefix([a[::-1] for a in asked])[::-1]
            tail = tail[tail.find("_"):] if "_" in tail else ""
            parts = [a[2:len(a) - len(tail)] for a in asked]
            if len(asked) < 2 or not all(a.startswith("k_") for a in asked) or not all(parts):
                out[have] = have
                continue
            out[have] = "k_" + "_".join(parts[:3] + (["more"] if len(parts) > 3 else [])) + tail
        return out

    def _fallback(self, site, mode):
        """Run the reference rule from the driver for a group no rule covers."""
        group, g = site.group, self.graph
        lines = []
        for n in group.nodes:
            if n.startswith("vjp:"):
                f = g.nodes[n]["fwd"]
                d = g.nodes[f]
                targets = [site.input_grad(f, j) for j in range(len(d["inputs"]))]
                pg = {p: site.pgrad(k) for p, k in g.nodes[n]["param_slots"].items()}
                loss = d["kind"] == "loss"
                xs = ", ".join(site.val(i) for i in d["inputs"])
                y, gy = ("None", "None") if loss else (site.val(f), site.grad(f))
                lines.append(f"    R.backward({f!r}, [{xs}], {y}, {gy}, "
                             f"[{', '.join(t or 'None' for t in targets)}], "
                             f"{{{', '.join(f'{p!r}: {v}' for p, v in pg.items())}}})")
                lines += [f"    {p}" for p in site.post]
                site.post = []
            else:
                d = g.nodes[n]
                ins = ", ".join(site.val(i) for i in d["inputs"])
                if d["kind"] == "loss":
                    w = d["attrs"]["weight"]
                    lines.append(f"    loss += {w!r} * R.loss({n!r}, [{ins}])")
                else:
                    lines.append(f"    R.forward({n!r}, [{ins}], {site.val(n)})")
        return lines

    def _header(self, group):
        parts = []
        for n in group.nodes:
            fwd = self.graph.nodes[n].get("fwd", n)
            d = self.graph.nodes[fwd]
            what = f"{'backward of ' if n.startswith('vjp:') else ''}{fwd} ({d['op'].name})"
            ins = ", ".join("N×" + "×".join(map(str, self.graph.nodes[i]["shape"]))
                            for i in d["inputs"])
            parts.append(f"{what}: {ins} -> N×{'×'.join(map(str, d['shape'])) or '1'}")
        return "; ".join(parts)

    def _driver_source(self, mode, lines, buffers):
        names = sorted({b.name for b in buffers})
        data = sorted(n for n in self.uses if n.startswith("v_") and n not in names)
        params = sorted(n for n in self.uses
                        if n.startswith(("p_", "gp_", "st_", "q_")) or n == STREAM_WORDS)
        head = [f"def {mode}(B, R):",
                f"    \"\"\"{mode} driver: "
                f"{sum(not line.lstrip().startswith('#') for line in lines)} calls.\"\"\""]
        checks = bool(self.checked_inputs.get(mode))
        if mode != "predict":
            head.append("    loss = 0.0")
        if mode == "predict" or checks:
            head.append("    unfit = 0   # how many kernels that check inputs saw NaN or infinity")
        head += [f"    {n} = B[{n!r}]" for n in data + params + names]
        if mode == "predict":
            tail = ["    return unfit"]
        elif checks:
            tail = ["    return loss if not unfit else math.nan   # no update: see Site.check_input"]
        else:
            tail = ["    return loss"]
        return "\n".join(head + lines + tail + [""])

    # ------------------------------------------------------------------ module
    def source(self) -> str:
        net = self.program.net
        lines = [f'"""nngraph generated CPU code for spec {net.name!r} ({net.file})' +
                 (", frozen: predict on packed weights." if self.frozen else "."),
                 f"dtype {self.dtype}; nngraph {__version__}, numba {numba.__version__}.",
                 "", "Fused groups:"]
        lines += [f"  {g.name:<28} {' + '.join(self.graph.nodes[n].get('fwd', n) for n in g.nodes)}"
                  for g in self.groups]
        body = "\n\n".join(self.kernels.values())
        drivers = "\n\n".join(self.drivers.values())
        # only the kernel modules this network calls: importing the others costs a process
        # that loads a cached network ~10-30 ms each (conv, recurrent)
        used = [f"{module} as {alias}" for alias, module in KERNEL_MODULES.items()
                if re.search(rf"\b{alias}\.", body + drivers)]
        lines += ['"""', "import math", "", "import numpy as np", ""]
        if used:
            lines.append("from nngraph.kernels.cpu import " + ", ".join(used))
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


def module_file(name: str, source: str) -> tuple[str, str]:
    """(module name, file under the cache directory) of generated `source`."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    mod_name = f"nngraph_gen_{_ident(name)}_{digest}"
    return mod_name, os.path.join(cache_dir(), mod_name + ".py")


def load_module(name: str, source: str):
    """Write `source` under the cache directory (once) and import it; (module, its file)."""
    mod_name, path = module_file(name, source)
    if mod_name in sys.modules:
        return sys.modules[mod_name], sys.modules[mod_name].__file__
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module, path


# ------------------------------------------------------------------------------ passes

class _ModeState:
    """One driver's bookkeeping between the passes: its groups, lines and buffer uses."""

    def __init__(self):
        self.groups, self.lines = [], []
        self.uses, self.shapes, self.contributions, self.aliases = {}, {}, {}, {}


def _show_groups(gen) -> list:
    return [f"{g.name}: {g.kind} {' + '.join(g.nodes)}" for g in gen.groups]


@pipeline.implements("cpu", "fuse", _show_groups)
def fuse_groups(gen: CPUCodegen) -> CPUCodegen:
    prog = gen.program
    gen.groups = fuse(gen.graph, prog.forward, prog.backward, prog.losses)
    return gen


@pipeline.implements("cpu", "merge", lambda gen: [f"{c} pools {p}" for c, p in gen.pooled.items()])
def merge_conv_pool(gen: CPUCodegen) -> CPUCodegen:
    gen.pooled = gen._pooled_convs()       # {conv group: maxpool node}
    return gen


@pipeline.implements("cpu", "layout", lambda gen: sorted(gen.wide))
def choose_conv_layout(gen: CPUCodegen) -> CPUCodegen:
    gen.wide = {grp.name for i, grp in enumerate(gen.groups)   # run wide in evaluate, predict
                if runs_wide(Site(gen, grp, i))}
    return gen


@pipeline.implements("cpu", "schedule", lambda gen: [
    f"{mode}: {', '.join(g.name for g in st.groups)}" for mode, st in gen.per_mode.items()])
def schedule_drivers(gen: CPUCodegen) -> CPUCodegen:
    for mode in gen.modes:
        gen._enter(mode)
        gen.per_mode[mode].groups = gen._schedule(mode)
    return gen


@pipeline.implements("cpu", "emit", lambda gen: [
    f"{mode}: {len(st.lines)} lines" for mode, st in gen.per_mode.items()])
def emit_drivers(gen: CPUCodegen) -> CPUCodegen:
    for mode in gen.modes:
        gen._emit_driver(mode)
    return gen


@pipeline.implements("cpu", "memory", lambda gen: [
    f"{mode}: {len(buffers)} buffers, {sizes['float']:,} floats and {sizes['int']:,} ints "
    f"per sample" for mode, (buffers, sizes) in gen.plans.items()])
def plan_drivers(gen: CPUCodegen) -> CPUCodegen:
    for mode in gen.modes:
        gen._plan_driver(mode)
    return gen


@pipeline.implements("cpu", "source", lambda gen: [
    f"{len(gen.kernels_by_code)} kernels"] + [f"{m}: {len(d.splitlines())} lines"
                                             for m, d in gen.drivers.items()])
def write_source(gen: CPUCodegen) -> CPUCodegen:
    for mode in gen.modes:
        gen._enter(mode)
        gen.drivers[mode] = gen._driver_source(mode, gen.per_mode[mode].lines,
                                               gen.plans[mode][0])
    gen._rename(gen._shared_names())
    return gen
