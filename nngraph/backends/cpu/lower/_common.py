"""What several lowerings read: convolution and pooling geometry, parameters or placeholders."""
from __future__ import annotations

from ....ops import _conv


def conv_geometry(site, n) -> tuple:
    """(sh, sw, pt, pb, pl, pr, dh, dw) of conv2d node n."""
    d = site.node(n)
    a = d.attrs
    _, h, w = site.shape(d.inputs[0])
    _, pt, pb = _conv.out_size(h, a.kernel[0], a.stride[0], a.padding, 0, dilation=a.dilation[0])
    _, pl, pr = _conv.out_size(w, a.kernel[1], a.stride[1], a.padding, 1, dilation=a.dilation[1])
    return (a.stride[0], a.stride[1], pt, pb, pl, pr, a.dilation[0], a.dilation[1])


def pool_geometry(site, n) -> tuple:
    """(kh, kw, sh, sw, pt, pb, pl, pr) of pooling node n."""
    d = site.node(n)
    a = d.attrs
    _, h, w = site.shape(d.inputs[0])
    stride = a.stride or a.size
    _, pt, pb = _conv.out_size(h, a.size[0], stride[0], a.padding, 0, what="window")
    _, pl, pr = _conv.out_size(w, a.size[1], stride[1], a.padding, 1, what="window")
    return (a.size[0], a.size[1], stride[0], stride[1], pt, pb, pl, pr)


def param_or(site, n, name, none):
    key = site.node(n).params.get(name)
    return site.param(key) if key else none
