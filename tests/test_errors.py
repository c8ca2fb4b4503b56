"""Every kind of bad spec gets a precise error: file, line, column, code and the substance."""
import json
import pathlib
import textwrap
import time
import tracemalloc

import pytest

import nngraph
from nngraph import SpecError
from nngraph.cli import main

HEAD = """\
nngraph: 1
name: t
inputs:
  image: {shape: [1, 8, 8]}
  label: {shape: [], dtype: int64}
"""

TAIL = """\
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
"""


def errors_of(text, name="spec.yaml", tmp_path=None):
    """Load `text` from a real file; return [(line, col, code, message)] of its errors."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    with pytest.raises(SpecError) as info:
        nngraph.load(str(path))
    for d in info.value.diagnostics:
        assert d.file == str(path)
        assert str(d).startswith(f"{path}:{d.line}:{d.col}: {d.severity}[{d.code}]: ")
    return [(d.line, d.col, d.code, d.message) for d in info.value.errors]


def only_error(text, tmp_path, name="spec.yaml"):
    errs = errors_of(text, name, tmp_path)
    assert len(errs) == 1, errs
    return errs[0]


def net(layers):
    return HEAD + "layers:\n" + textwrap.indent(textwrap.dedent(layers), "  ") + TAIL


# --------------------------------------------------------------------- syntax and safety

def test_yaml_syntax_error_has_position(tmp_path):
    line, col, code, msg = only_error("nngraph: 1\nname: [unclosed\ninputs: {}\n", tmp_path)
    assert code == "E001" and "YAML syntax error" in msg and line == 3


def test_json_syntax_error_has_position(tmp_path):
    text = '{\n  "nngraph": 1,\n  "name": "x",\n  "inputs": {"a": {"shape": [2]},}\n}\n'
    line, col, code, msg = only_error(text, tmp_path, "spec.json")
    assert (line, code) == (4, "E001") and "JSON syntax error" in msg
    assert col == text.splitlines()[3].index(",}") + 2


def test_json_errors_point_into_the_json_file(tmp_path):
    spec = {"nngraph": 1, "name": "j", "inputs": {"x": {"shape": [4]}},
            "layers": [{"op": "dense", "units": -2}]}
    text = json.dumps(spec, indent=2)
    line, col, code, msg = only_error(text, tmp_path, "spec.json")
    assert code == "E013" and "units" in msg and "-2" in msg
    assert text.splitlines()[line - 1].strip().startswith('"units": -2')
    assert text.splitlines()[line - 1][col - 1:].startswith("-2")


def test_object_tags_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    text = f"nngraph: 1\nname: !!python/object/apply:os.system ['touch {marker}']\n"
    errs = errors_of(text, tmp_path=tmp_path)
    assert any(code == "E002" and "python/object" in msg for _, _, code, msg in errs)
    assert not marker.exists()


def test_alias_bomb_is_refused_quickly_with_bounded_memory(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    bomb = "\n".join(lines) + "\nnngraph: 1\n"
    tracemalloc.start()
    t0 = time.perf_counter()
    errs = errors_of(bomb, tmp_path=tmp_path)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert any(code == "E003" for *_, code, _ in errs)
    assert elapsed < 5 and peak < 200 * 2**20


def test_deep_nesting_is_refused_where_it_gets_too_deep(tmp_path):
    """~500 levels: PyYAML's composer recursed into a RecursionError; now E003 at the 33rd."""
    text = "nngraph: 1\nname: t\ninputs: {x: {shape: " + "[" * 500 + "]" * 500 + "}}\n"
    line, col, code, msg = only_error(text, tmp_path)
    assert (line, col, code) == (3, 20 + 30, "E003") and "more than 32 levels" in msg
    json_text = '{"nngraph": 1,\n "a": ' + "[" * 500 + "]" * 500 + "}"
    line, col, code, msg = only_error(json_text, tmp_path, "spec.json")
    assert (line, col, code) == (2, 6 + 32, "E003") and "more than 32 levels" in msg
    aliases = "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 40))
    errs = errors_of("a0: &a0 [1]\n" + aliases, tmp_path=tmp_path)
    assert [e[2] for e in errs] == ["E003"] and "aliases expanded" in errs[0][3]


def test_python_data_that_is_not_plain_data(tmp_path):
    spec = {"nngraph": 1, "name": "t", "inputs": {7: {"shape": [2]}, "x": {"shape": (2,)}},
            "layers": [{"op": "dense", "units": 2, "weight_init": {1, 2}}]}
    with pytest.raises(SpecError) as info:
        nngraph.load(spec)
    assert [(d.code, d.message) for d in info.value.errors] == [
        ("E012", "inputs: mapping keys must be strings of text, got int 7"),
        ("E012", "layers[0].weight_init: a spec holds plain data (mappings, lists, strings, "
                 "numbers, booleans, null), not set")]
    del spec["inputs"][7]
    spec["layers"][0]["weight_init"] = "zeros"
    assert nngraph.load(spec).num_params == 6            # a tuple is a list
    with pytest.raises(SpecError, match="not int"):
        nngraph.load(3)


def test_a_layer_with_nothing_to_read_is_one_error(tmp_path):
    """No inputs section: the first layer has no input; the layers after it are not run
    through their shape rules (once IndexError and 'not enough values to unpack')."""
    text = "nngraph: 1\nname: t\nlayers:\n  - {op: flatten}\n  - {op: conv2d, filters: 2, " \
           "kernel: 3}\n  - {op: maxpool2d, size: 2}\n"
    errs = errors_of(text, tmp_path=tmp_path)
    assert [code for *_, code, _ in errs] == ["E010", "E021"], errs
    assert errs[1][:2] == (4, 5)


def test_optimizer_type_of_the_wrong_type(tmp_path):
    text = net("- {op: flatten}\n- {op: dense, name: logits, units: 10}\n") + \
        "train: {optimizer: {type: [adam]}}\n"
    line, col, code, msg = only_error(text, tmp_path)
    assert (line, code) == (11, "E012") and "optimizer type must be a name" in msg


def test_empty_file_and_non_mapping(tmp_path):
    assert only_error("", tmp_path)[2] == "E001"
    assert only_error("- just\n- a list\n", tmp_path)[2] == "E012"


def test_yaml12_numbers_are_numbers(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(net("- {op: flatten}\n- {op: dense, name: logits, units: 10}\n")
                 + "train: {optimizer: {type: adam, lr: 1e-3}}\n")
    assert nngraph.load(str(p)).train["optimizer"]["lr"] == 0.001
    from nngraph.spec.source_yaml import _plain_scalar
    assert _plain_scalar("no") == "no" and _plain_scalar("on") == "on"


# --------------------------------------------------------------------- keys and values

def test_unknown_top_level_key_suggests(tmp_path):
    text = net("- {op: dense, name: logits, units: 10}\n").replace("layers:", "layer:")
    errs = errors_of(text, tmp_path=tmp_path)
    msgs = " ".join(m for *_, m in errs)
    assert "unknown top-level key 'layer' (did you mean 'layers'?)" in msgs
    assert "no 'layers'" in msgs


def test_unknown_op_suggests(tmp_path):
    line, col, code, msg = only_error(net("- {op: dnese, name: logits, units: 10}\n"), tmp_path)
    assert (line, code) == (7, "E020") and "did you mean 'dense'" in msg
    assert col == len("  - {op: ") + 1


def test_unknown_attribute_suggests(tmp_path):
    line, col, code, msg = only_error(net("- {op: conv2d, filters: 2, kernel: 3, strides: 2}\n"
                                          "- {op: flatten}\n- {op: dense, name: logits, units: 10}\n"), tmp_path)
    assert code == "E011" and "'strides'" in msg and "did you mean 'stride'" in msg


def test_missing_required_attribute(tmp_path):
    line, col, code, msg = only_error(net("- {op: dense, name: logits}\n"), tmp_path)
    assert code == "E010" and "needs 'units'" in msg and line == 7


@pytest.mark.parametrize("layer,code,needle", [
    ("{op: dense, name: logits, units: -3}", "E013", "units: must be >= 1, got -3"),
    ("{op: dense, name: logits, units: ten}", "E012", "expected an integer, got 'ten'"),
    ("{op: dense, name: logits, units: 2.5}", "E012", "expected an integer, got 2.5"),
    ("{op: conv2d, name: logits, filters: 2, kernel: 0}", "E013", "must be >= 1, got 0"),
    ("{op: conv2d, name: logits, filters: 2, kernel: 3, padding: sme}", "E013",
     "did you mean 'same'"),
    ("{op: dense, name: logits, units: 10, activation: rleu}", "E013",
     "did you mean 'relu'"),
    ("{op: dense, name: logits, units: 10, weight_init: glorot_unifrom}", "E013",
     "did you mean 'glorot_uniform'"),
])
def test_wrong_types_and_ranges(tmp_path, layer, code, needle):
    errs = errors_of(net(f"- {layer}\n"), tmp_path=tmp_path)
    hit = [e for e in errs if e[2] == code and needle in e[3]]
    assert hit, errs
    assert hit[0][0] == 7


def test_duplicate_layer_names(tmp_path):
    text = net("- {op: flatten, name: f}\n- {op: dense, name: f, units: 4}\n"
               "- {op: dense, name: logits, units: 10}\n")
    line, col, code, msg = only_error(text, tmp_path)
    assert (line, code) == (8, "E022") and "duplicate name 'f'" in msg and "line 7" in msg


def test_unknown_reference_suggests(tmp_path):
    text = net("- {op: flatten, name: flat}\n- {op: dense, name: logits, in: flta, units: 10}\n")
    line, col, code, msg = only_error(text, tmp_path)
    assert (line, code) == (8, "E021") and "did you mean 'flat'" in msg


def test_cycle_is_named(tmp_path):
    text = net("- {op: flatten, name: f}\n- {op: dense, name: a, in: b, units: 4}\n"
               "- {op: dense, name: b, in: a, units: 4}\n- {op: dense, name: logits, in: f, units: 10}\n")
    errs = errors_of(text, tmp_path=tmp_path)
    (line, col, code, msg), = [e for e in errs if e[2] == "E023"]
    assert "cycle" in msg and ("a -> b -> a" in msg or "b -> a -> b" in msg)


def test_unused_layer_is_a_warning_not_an_error(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(net("- {op: flatten, name: f}\n- {op: dense, name: spare, in: f, units: 3}\n"
                     "- {op: dense, name: logits, in: f, units: 10}\n") + "outputs: [logits]\n")
    n = nngraph.load(str(p))
    (w,) = n.warnings
    assert w.code == "W001" and "'spare'" in w.message and w.line == 8
    assert main(["check", str(p)]) == 0


# --------------------------------------------------------------------- shapes and sizes

def test_dense_on_an_image_shows_the_arithmetic(tmp_path):
    line, col, code, msg = only_error(net("- {op: dense, name: logits, units: 10}\n"), tmp_path)
    assert code == "E030" and "1x8x8 = 64 features" in msg and "flatten" in msg


def test_kernel_larger_than_input(tmp_path):
    text = net("- {op: conv2d, filters: 2, kernel: 9}\n- {op: flatten}\n"
               "- {op: dense, name: logits, units: 10}\n")
    line, col, code, msg = only_error(text, tmp_path)
    assert code == "E030" and "kernel 9 is larger than the input height 8" in msg
    assert line == 7 and col == text.splitlines()[6].index("kernel: 9") + len("kernel: ") + 1


def test_labels_that_do_not_fit_the_loss(tmp_path):
    text = HEAD.replace("label: {shape: [], dtype: int64}", "label: {shape: [3]}") + \
        "layers:\n  - {op: flatten}\n  - {op: dense, name: logits, units: 10}\n" + TAIL
    line, col, code, msg = only_error(text, tmp_path)
    assert code == "E030" and "labels" in msg and line == 10


def test_absurd_sizes_are_refused_before_allocation(tmp_path):
    text = net("- {op: flatten}\n- {op: dense, units: 2000000}\n"
               "- {op: dense, name: logits, units: 10000}\n")
    tracemalloc.start()
    errs = errors_of(text, tmp_path=tmp_path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert any(code == "E031" and "2000000x10000 = 20,000,000,000" in msg
               for *_, code, msg in errs), errs
    assert peak < 50 * 2**20


def test_one_mistake_one_error_downstream_is_skipped(tmp_path):
    text = net("- {op: conv2d, filters: 2, kernel: 9}\n- {op: flatten}\n"
               "- {op: dense, units: 5}\n- {op: dense, name: logits, units: 10}\n")
    assert len(errors_of(text, tmp_path=tmp_path)) == 1


def test_all_problems_reported_in_one_pass(tmp_path):
    text = net("- {op: conv2d, filters: -1, kernel: 3}\n- {op: flaten}\n"
               "- {op: dense, name: logits, units: 10, activaton: relu}\n")
    codes = sorted(code for *_, code, _ in errors_of(text, tmp_path=tmp_path))
    assert codes == ["E011", "E013", "E020"]


# --------------------------------------------------------------------- blocks

BLOCKS = HEAD + """\
blocks:
  pair:
    params: {width: 4}
    layers:
      - {op: dense, name: a, units: $width, activation: relu}
      - {op: dense, name: b, units: $width}
      - {op: add, in: [a, b]}
layers:
  - {op: flatten}
  - {op: pair, name: p, width: 6, repeat: 2}
  - {op: dense, name: logits, in: p, units: 10}
""" + TAIL


def test_blocks_expand_with_parameters_and_repeat(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text(BLOCKS)
    n = nngraph.load(str(p))
    assert n.node("p_1/a")["shape"] == (6,) and n.node("p_2/b")["shape"] == (6,)
    assert n.node("logits")["inputs"] == ["p_2/add_1"]
    assert n.node("p_2/a")["inputs"] == ["p_1/add_1"]
    assert n.node("p_2/a")["cluster"] == ("p_2",) and n.clusters["p_1"] == "pair"


def test_block_errors(tmp_path):
    text = BLOCKS.replace("width: 6, repeat: 2", "widht: 6, repeat: 0")
    errs = errors_of(text, tmp_path=tmp_path)
    msgs = " ".join(m for *_, m in errs)
    assert "block 'pair' has no parameter 'widht' (did you mean 'width'?)" in msgs
    assert "repeat must be an integer from 1 to 1000" in msgs
    text = BLOCKS.replace("units: $width}", "units: $wdth}")
    (line, col, code, msg), = errors_of(text, tmp_path=tmp_path)
    assert code == "E040" and "did you mean 'width'" in msg and line == 11


def test_block_parameter_errors_point_at_the_instantiation(tmp_path):
    text = BLOCKS.replace("width: 6,", "width: -6,")
    errs = errors_of(text, tmp_path=tmp_path)
    assert errs and all(line == 15 for line, *_ in errs), errs


# --------------------------------------------------------------------- the CLI

def test_cli_check_exit_codes_and_no_traceback(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(net("- {op: flatten}\n- {op: dense, name: logits, units: 10}\n"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(net("- {op: flatten}\n- {op: dense, name: logits, units: 0}\n"))
    assert main(["check", str(good)]) == 0
    assert main(["check", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:8:" in err and "error[E013]" in err and "Traceback" not in err
    assert main(["check", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read the spec" in capsys.readouterr().err


def test_cli_subprocess_exit_code(tmp_path):
    import subprocess
    import sys
    bad = tmp_path / "bad.yaml"
    bad.write_text("nngraph: 2\n")
    r = subprocess.run([sys.executable, "-m", "nngraph", "check", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "unsupported format version 2" in r.stderr


def test_a_misspelt_required_attribute_is_one_error(tmp_path):
    """kernel_size for kernel: the unknown attribute says what it was meant to be and that
    the op needs it; no second error for the missing one."""
    line, col, code, message = only_error(net("""
        - {op: conv2d, filters: 2, kernel_size: 3}
        - {op: flatten}
        - {op: dense, name: logits, units: 10}
        """), tmp_path)
    assert code == "E011"
    assert "unknown attribute 'kernel_size' (did you mean 'kernel'? conv2d needs it" in message


def test_suggestions_ignore_case(tmp_path):
    errs = errors_of(net("""
        - {op: flatten}
        - {op: ReLU}
        - {op: Dense, name: logits, units: 10}
        """), tmp_path=tmp_path)
    messages = [e[3] for e in errs]
    assert any("unknown op 'ReLU' (did you mean 'relu'?)" in m for m in messages), messages
    assert any("unknown op 'Dense' (did you mean 'dense'?)" in m for m in messages), messages


def test_check_counts_one_layer_as_one_layer(tmp_path, capsys):
    path = tmp_path / "one.yaml"
    path.write_text("nngraph: 1\nname: one\ninputs: {a: {shape: [3]}}\n"
                    "layers:\n  - {op: dense, units: 2}\n")
    assert main(["check", str(path)]) == 0
    assert "(one: 1 layer, 8 parameters)" in capsys.readouterr().out


def example_spec(name):
    """The text of specs/NAME."""
    return (pathlib.Path(__file__).parent.parent / "specs" / name).read_text()


def test_an_unknown_input_inside_a_block_suggests_dollar_input(tmp_path):
    spec = example_spec("inception.yaml")
    broken = spec.replace("in: $input, filters: $b1", "in: input, filters: $b1")
    assert broken != spec
    line, col, code, message = only_error(broken, tmp_path)
    assert code == "E021" and "unknown input 'input'" in message
    assert "the block's input is written $input" in message


def test_one_hot_labels_against_a_dataset_of_class_indices_fail_at_check(tmp_path):
    """The mismatch used to show only once train had loaded the data; check says it, at
    the input, with the fix. With one_hot: true the same spec is valid."""
    spec = example_spec("lenet5.yaml")
    one_hot = spec.replace("label: {shape: [], dtype: int64}", "label: {shape: [10]}")
    assert one_hot != spec
    line, col, code, message = only_error(one_hot, tmp_path)
    assert code == "E030" and "gives class indices (0 to 9)" in message
    assert "add one_hot: true to train.data" in message
    fixed = one_hot.replace("validation_split: 0.2}", "validation_split: 0.2, one_hot: true}")
    assert fixed != one_hot
    path = tmp_path / "fixed.yaml"
    path.write_text(fixed)
    nngraph.load(str(path))
