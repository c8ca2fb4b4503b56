"""The README is true on a clone: its example is the spec file it names, and every file
and command it points at exists."""
import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..")


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def test_the_example_spec_is_specs_lenet5_yaml():
    readme, spec = read("README.md"), read("specs/lenet5.yaml")
    shown = re.search(r"This is `specs/lenet5.yaml`:\n\n```yaml\n(.*?)```", readme, re.S)
    assert shown, "the README no longer shows specs/lenet5.yaml"
    assert shown.group(1) == spec[spec.index("nngraph: 1"):]


def test_every_repository_path_the_readme_names_exists():
    readme = read("README.md")
    named = set(re.findall(r"`((?:docs|specs|tools|tests|kernels|nngraph)/[\w./-]+)`", readme))
    named |= set(re.findall(r"\b((?:docs|specs|tools)/[\w-]+\.(?:md|yaml|json|py|sh))\b", readme))
    assert "docs/spec.md" in named and "docs/data.md" in named
    missing = [p for p in sorted(named) if not os.path.exists(os.path.join(ROOT, p.rstrip(".")))]
    assert not missing, f"the README names files that do not exist: {missing}"
    assert "../shared" not in readme


def test_ci_runs_the_readme_s_second_command():
    first, second = re.search(r"```bash\n(.*?)```", read("README.md"), re.S).group(1) \
        .strip().splitlines()[:2]
    command = second.split("#")[0].strip()
    assert command in read(".ci/run")
    assert first.startswith("bash tools/install.sh && ")


def test_every_example_file_the_code_and_docs_name_exists():
    """Docstrings and docs name example files a reader will open: they must be there."""
    pattern = re.compile(r"\b((?:specs|docs|tools)/[\w./-]+\.(?:yaml|json|md|py|sh))\b")
    missing = set()
    for top in ("nngraph", "kernels", "tools", "docs"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith((".py", ".md", ".sh")):
                    text = open(os.path.join(folder, name), encoding="utf-8").read()
                    missing |= {(name, p) for p in pattern.findall(text)
                                if not os.path.exists(os.path.join(ROOT, p))}
    assert not missing, f"files named but missing: {sorted(missing)}"
