"""The Train page's settings form (app_pages/train.py) through AppTest: it offers every setting of
`python -m vae train` that makes sense in the app, within the same bounds, its preset fills the fields as
the command line's does, and what the page's fields say reaches the job it submits."""

import pytest

from ui.pages import page
from vae.config import PRESETS, all_settings, preset_values, train_settings

TRAIN = page("train").path
# What the command line has and the page does not, each for the reason its `app` field gives.
LEFT_OUT = {"out", "data_dir", "threads", "resume"}


@pytest.fixture
def open_train(open_page):
    """The Train page, opened as a browser session opens it (tests/app/conftest.py)."""
    return lambda: open_page("train")


def widgets(at) -> dict:
    """Every input widget on the page by its label."""
    found = {}
    for kind in ("selectbox", "number_input", "text_input", "toggle", "checkbox"):
        for w in at.get(kind):
            found[w.label] = w
    return found


def by_label(at, label):
    return widgets(at)[label]


def test_the_page_offers_every_setting_of_the_command_lines_train_but_those_it_says_it_cannot(open_train):
    at = open_train()
    labels = set(widgets(at))
    offered = [s for s in train_settings() if not s.app]
    assert {s.name for s in train_settings() if s.app} == LEFT_OUT
    missing = [s.label for s in offered if s.label not in labels]
    assert not missing, f"the Train page lacks {missing}"
    assert {"Preset", "Activation", "Optimizer", "Samples per datapoint (L)", "Gaussian std", "Device"} <= labels
    assert at.selectbox(key="tr_device").options[:2] == ["cpu", "auto"]


def test_the_pages_number_fields_keep_the_configs_bounds_and_start_where_the_command_line_does(open_train):
    at = open_train()
    start = {**{s.name: s.default for s in train_settings()}, **preset_values("default")}
    for s in train_settings():
        if s.app or s.shown != "number":
            continue
        w = by_label(at, s.label)
        assert w.value == start[s.name], s.name
        b = s.bound
        if b is not None and b.high is not None:
            assert w.max == b.high, s.name
        if b is not None and b.low is not None and not b.above:
            assert w.min == b.low, s.name
    assert at.text_input(key="tr_hidden").value == "400"


def test_choosing_the_paper_preset_fills_its_values_into_the_fields(open_train):
    at = open_train()
    at.selectbox(key="tr_preset").set_value("paper").run()
    paper = PRESETS["paper"]
    assert at.text_input(key="tr_hidden").value == "500"
    assert at.selectbox(key="tr_activation").value == paper["model"]["activation"]
    assert at.selectbox(key="tr_optimizer").value == paper["train"]["optimizer"]
    assert at.number_input(key="tr_lr").value == paper["train"]["lr"]
    at.selectbox(key="tr_preset").set_value("default").run()  # and back
    assert at.selectbox(key="tr_optimizer").value == "adam" and at.text_input(key="tr_hidden").value == "400"


def test_a_value_past_a_bound_is_refused_on_the_page_in_one_sentence(open_train):
    at = open_train()
    at.number_input(key="tr_lr").set_value(0.0)
    at.button[0].click().run()  # the form's submit button
    assert [e.value for e in at.error] == ["learning rate must be a positive number, got 0.0."]
    from ui.state import registry
    assert not registry().jobs()


def test_what_the_page_says_reaches_the_job_it_submits(runs_dir, open_train):
    at = open_train()
    at.selectbox(key="tr_preset").set_value("paper").run()
    at.selectbox(key="tr_data").set_value("digits")
    at.text_input(key="tr_hidden").set_value("16")
    at.number_input(key="tr_epochs").set_value(1)
    at.selectbox(key="tr_activation").set_value("relu")
    at.selectbox(key="tr_optimizer").set_value("adam")
    at.number_input(key="tr_lr").set_value(0.005)
    at.number_input(key="tr_n_samples").set_value(2)
    at.selectbox(key="tr_likelihood").set_value("gaussian")
    at.number_input(key="tr_gaussian_std").set_value(0.25)
    at.number_input(key="tr_log_every").set_value(5)
    at.selectbox(key="tr_device").set_value("auto")
    at.text_input(key="tr_name").set_value("settings-reach-the-job")
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    from ui.state import registry
    job = registry().jobs()[-1]
    spec = job.spec
    assert spec.run_name == "settings-reach-the-job" and spec.dataset == "digits" and spec.device == "auto"
    assert (spec.model.hidden, spec.model.activation, spec.model.likelihood, spec.model.gaussian_std) == \
        ((16,), "relu", "gaussian", 0.25)
    assert spec.model.init_std == 0.01  # the paper preset's: no field, as no flag, sets it
    assert (spec.train.optimizer, spec.train.lr, spec.train.n_samples, spec.train.log_every, spec.train.epochs) == \
        ("adam", 0.005, 2, 5, 1)
    done = registry().wait(job.id, timeout=120)  # and the training process trains what it was sent
    assert done.state == "finished", done.message
    from vae.checkpoint import load_checkpoint
    ck = load_checkpoint(runs_dir / "settings-reach-the-job" / "model.safetensors")
    assert ck.model_config.settings == spec.model and ck.train_config["n_samples"] == 2


def test_every_setting_the_page_leaves_out_says_why():
    every = all_settings()
    assert all(every[name].app.strip() for name in LEFT_OUT | {"init_std"})
