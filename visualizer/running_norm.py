"""Running statistics of log values that map a layer's numbers to 0..1 (0.5 typical): the
neural web, the sound and the architecture scene all read activations through one of these."""

import numpy as np

STATS_RATE = 0.08  # weight of the newest token in the running statistics


class RunningNorm:
    """Running statistics of log values, per layer and per node; maps values to 0..1.

    The layer part says how loud a node is among its layer (a few groups of the residual
    stream carry persistent "massive activations"); the node part says how this token differs
    from the node's own recent past, which is what makes the web flicker with meaning. The
    result is a fixed blend of the two, 0.5 being typical.
    """

    LAYER_SHARE = 0.4

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None  # [rows, 1] layer means
        self.var: np.ndarray | None = None
        self.node_mean: np.ndarray | None = None  # [rows, groups]
        self.node_var: np.ndarray | None = None

    def __call__(self, values: np.ndarray) -> np.ndarray:
        logs = np.log(values + 1e-6)  # [rows, groups]
        mean, var = logs.mean(axis=1, keepdims=True), logs.var(axis=1, keepdims=True) + 1e-4
        if self.node_mean is None or self.node_mean.shape != logs.shape:
            self.mean, self.var = mean, var
            self.node_mean, self.node_var = logs.copy(), np.broadcast_to(var, logs.shape).copy()
        else:
            self.mean += STATS_RATE * (mean - self.mean)
            self.var += STATS_RATE * (var - self.var)
            self.node_mean += STATS_RATE * (logs - self.node_mean)
            self.node_var += STATS_RATE * ((logs - self.node_mean) ** 2 - self.node_var)
        layer = np.tanh(0.6 * (logs - self.mean) / np.sqrt(self.var))
        node = np.tanh(0.8 * (logs - self.node_mean) / np.sqrt(self.node_var + 1e-4))
        blend = self.LAYER_SHARE * layer + (1 - self.LAYER_SHARE) * node
        return (0.5 + 0.5 * blend).astype(np.float32)
