"""What the loss ops share: the label check and the reduction over the batch.

A loss is summed over the features of each sample, then reduced over the batch by its
`reduction` attribute (mean or sum). The runtime multiplies by `weight`; the ops do not.
"""
import math


from .base import ShapeError


def labels_like_prediction(op_name: str, labels: str):
    """A shape rule for losses whose labels have the prediction's shape. `labels` says what
    they hold, for the message: 'targets in [0, 1]'."""
    def shape(a, shapes):
        x, t = (tuple(s) for s in shapes)
        if t != x:
            raise ShapeError(f"labels of shape {list(t)} do not fit predictions of shape "
                             f"{list(x)}: {op_name} expects {labels} of the same shape, "
                             f"{list(x)}")
        return ()
    return shape


def split(xs):
    """Prediction and labels, the labels in the prediction's dtype (they may be integers)."""
    x, t = xs
    return x, t.astype(x.dtype, copy=False)


def reduce(a, per_element):
    """Sum over each sample's features, then mean or sum over the batch (axis 0)."""
    per_sample = per_element.reshape(len(per_element), -1).sum(axis=1)
    return per_sample.mean() if a.reduction == "mean" else per_sample.sum()


def per_sample(x):
    """How many elements each sample of prediction `x` has, in x's dtype (for the losses
    that average over them: mean_squared_error, mean_absolute_error)."""
    return x.dtype.type(math.prod(x.shape[1:]))


def input_grad(a, gy, g):
    """The prediction's gradient from the per-element derivative `g`: scaled by the output
    gradient and by 1/batch for a mean, kept in g's dtype."""
    scale = gy / len(g) if a.reduction == "mean" else gy
    return g * g.dtype.type(scale)


def per_element_flops(k: int):
    """A flops rule: k operations per element of the prediction."""
    return lambda a, shapes, out: k * math.prod(shapes[0])
