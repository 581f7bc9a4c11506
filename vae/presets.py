"""Named starting points for a run: model and training settings that belong together.

`paper` follows section 5 of Kingma & Welling (2013): one hidden layer of 500
tanh units in encoder and decoder, every parameter drawn from N(0, 0.01^2) (we
read the paper's N(0, 0.01) as a standard deviation of 0.01, as the authors'
public Theano code does), Adagrad, minibatches of M = 100 with L = 1. The paper
picked Adagrad's step size from {0.01, 0.02, 0.1}; 0.02 is our default. The
paper's weight-decay prior on the parameters is left out.
"""
PRESETS: dict[str, dict] = {
    "default": {
        "model": {"arch": "mlp", "hidden": (400,), "activation": "relu", "init_std": None},
        "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 100},
    },
    "paper": {
        "model": {"arch": "mlp", "hidden": (500,), "activation": "tanh", "init_std": 0.01},
        "train": {"optimizer": "adagrad", "lr": 0.02, "batch_size": 100, "n_samples": 1, "estimator": "B"},
    },
}
