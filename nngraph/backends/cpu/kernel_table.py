"""The generated kernels of a module, one per distinct code: groups whose kernels come out
the same share one compiled kernel, named after what it computes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Label(NamedTuple):
    """What a group's kernel computes, to name a kernel that groups share (CPUCodegen._label)."""
    op: str                     # the group's anchor op
    epilogue: str | None        # the activation fused after it
    backward: bool
    tail: str                   # the kernel name's tail after the group's name ('_value')


@dataclass
class Entry:
    code: str                   # the source, `__KERNEL__` for its name, `__DOC__` for its doc
    docs: list = field(default_factory=list)      # one docstring per distinct group header
    asked: list = field(default_factory=list)     # the names its groups asked for
    labels: list = field(default_factory=list)    # a Label per ask, or None (a named helper)


class KernelTable(dict):
    """{kernel name: Entry}."""

    def add(self, name: str, src: str, suffix: str = "_2", label: Label | None = None) -> str:
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
        for have, entry in self.items():
            if entry.code == code:
                if doc not in entry.docs:
                    entry.docs.append(doc)
                entry.asked.append(name)
                entry.labels.append(label)
                return have
        final, count = name, 1
        while final in self:
            count += 1
            final = f"{name}{suffix}" if count == 2 else f"{name}{suffix}{count - 1}"
        self[final] = Entry(code, [doc], [name], [label])
        return final

    def sources(self) -> dict:
        """{kernel name: source}; a kernel several groups share lists them all in its
        docstring."""
        return {name: e.code.replace("__KERNEL__", name).replace("__DOC__", "\n    ".join(e.docs))
                for name, e in self.items()}

    def final_names(self) -> dict:
        """{kernel name: final name}: a kernel several groups share is named after what it
        computes, k_dense for the dense layers of a network whatever their activations (a
        flag), k_dense_relu where all are followed by relu, k_maxpool2d_backward,
        k_maxpool2d_value for a tail its groups' names had in common; other names stay."""
        out, taken = {}, set(self)
        for have, e in self.items():
            labels = e.labels
            if len(set(e.asked)) < 2 or None in labels or len({l.tail for l in labels}) > 1:
                out[have] = have
                continue
            ops = list(dict.fromkeys(l.op for l in labels))
            epis = {l.epilogue for l in labels}
            name = "k_" + "_".join(ops[:3] + (["more"] if len(ops) > 3 else [])) \
                + (f"_{epis.pop()}" if len(epis) == 1 and None not in epis else "") \
                + ("_backward" if all(l.backward for l in labels) else "") + labels[0].tail
            final, count = name, 1
            while final in taken:
                count += 1
                final = f"{name}_{count}"
            taken.add(final)
            out[have] = final
        return out

    def renamed(self, names: dict) -> KernelTable:
        return KernelTable({names[k]: v for k, v in self.items()})
