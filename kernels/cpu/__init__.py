"""Hand-written Numba kernels that generated CPU code calls (see DESIGN.md).

    conv        conv2d forward/backward (im2col + BLAS), conv1d via height 1, conv2d_transpose
    pool        max/avg/global-avg pooling, nearest upsampling
    norm        batch normalization (train, eval, backward)
    embedding   gather and scatter-add with a bounds flag
    recurrent   rnn, lstm, gru over whole sequences, forward and BPTT
    softmax     fused softmax cross-entropy (loss + gradient), softmax, log_softmax
    optim       sgd, rmsprop, adagrad, adam over flat parameter arrays; l1/l2, max-norm

Every kernel writes into caller-provided arrays (C-contiguous, float32 or float64) and is
compiled lazily per dtype with cache=True; the modules are imported on demand.
"""
