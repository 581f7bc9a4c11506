"""The paper's recipe on the Train page: the paper preset turns on the step-size search (a switch) and the weight
decay, the algorithm is a choice beside the data set, and fields left as the preset filled them let it decide,
as the command line's flags not given do: a step size typed in turns the preset's search off."""
import pytest

from vae.checkpoint import load_checkpoint


@pytest.fixture
def open_train(open_page):
    return lambda: open_page("train")


def submitted(at):
    at.button[0].click().run()  # the form's submit button
    assert not at.exception and not at.error, [e.value for e in at.error]
    from ui.state import registry
    return registry().jobs()[-1]


def test_the_paper_preset_turns_on_the_search_switch_and_the_weight_decay(open_train):
    at = open_train()
    assert at.toggle(key="tr_lr_search").value is False and at.number_input(key="tr_weight_decay").value == 0.0
    assert at.selectbox(key="tr_algorithm").options == ["aevb", "wake-sleep"]
    at.selectbox(key="tr_preset").set_value("paper").run()
    assert at.toggle(key="tr_lr_search").value is True and at.number_input(key="tr_weight_decay").value == 1.0
    at.selectbox(key="tr_preset").set_value("default").run()
    assert at.toggle(key="tr_lr_search").value is False


def test_the_preset_decides_what_was_left_and_a_typed_step_size_turns_its_search_off(runs_dir, open_train):
    from ui.state import registry

    at = open_train()
    at.selectbox(key="tr_preset").set_value("paper").run()
    at.selectbox(key="tr_data").set_value("digits")
    at.text_input(key="tr_hidden").set_value("16")
    at.number_input(key="tr_epochs").set_value(1)
    at.selectbox(key="tr_algorithm").set_value("wake-sleep")
    at.text_input(key="tr_name").set_value("recipe-searched")
    job = submitted(at)
    train = job.spec.train
    assert (train.lr_search, train.weight_decay, train.algorithm, train.optimizer) == \
        (True, 1.0, "wake-sleep", "adagrad")
    done = registry().wait(job.id, timeout=120)
    assert done.state == "finished", done.message
    ck = load_checkpoint(runs_dir / "recipe-searched" / "model.safetensors")
    assert ck.train_config["algorithm"] == "wake-sleep" and ck.train_config["lr"] == ck.summary["lr_search"]["chosen"]

    at = open_train()
    at.selectbox(key="tr_preset").set_value("paper").run()
    at.selectbox(key="tr_data").set_value("digits")
    at.text_input(key="tr_hidden").set_value("16")
    at.number_input(key="tr_epochs").set_value(1)
    at.number_input(key="tr_lr").set_value(0.05)
    at.text_input(key="tr_name").set_value("recipe-given")
    job = submitted(at)
    assert (job.spec.train.lr, job.spec.train.lr_search, job.spec.train.algorithm) == (0.05, False, "aevb")
    assert registry().wait(job.id, timeout=120).state == "finished"
