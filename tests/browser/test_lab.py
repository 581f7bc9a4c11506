"""The teaching lab in a real browser: a run started from the Train page is paused, taken one minibatch and one
epoch at a time, given a new learning rate while paused, resumed and stopped; the change is in metrics.jsonl
and marked on the curves. And a class follows: a student on a read-only server, opening the teacher's link,
watches the teacher's run form live, with no controls of their own."""
from __future__ import annotations

import json
import re
import time

import pytest

from tests.browser.support import (
    LIVE_PROBE,
    PROGRESS,
    VIEWPORT,
    assert_no_errors,
    form_field,
    open_page,
    running_app,
    screenshot,
    url_of,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_NAME = "lab-run"
STEPS_PER_EPOCH = 160  # digits: 1,438 training images in minibatches of 9
NEW_LR = "0.0002"


def progress(page) -> str:
    return page.evaluate(PROGRESS) or ""


def until_progress(page, pattern: str, timeout_s: float = 60) -> str:
    """Wait for the progress line to match `pattern`; the line."""
    page.wait_for_function(f"() => {{ const t = ({PROGRESS})(); return t && new RegExp({json.dumps(pattern)})"
                           ".test(t); }", timeout=timeout_s * 1000)
    return progress(page)


def paused_step(text: str) -> int:
    return int(re.search(r"Paused at step ([\d,]+)", text).group(1).replace(",", ""))


def start_run(page, app, name: str, epochs: int, batch: int):
    main = open_page(page, app, "train")
    main.locator('[data-testid="stSelectbox"]').filter(has_text="Data set").click()
    page.get_by_role("option", name="digits", exact=True).click()
    form_field(main, "Hidden widths").fill("32")
    form_field(main, "Epochs").fill(str(epochs))
    form_field(main, "Batch size").fill(str(batch))
    form_field(main, "Run name").fill(name)
    main.get_by_role("button", name="Start training").click()
    return main


def records(app, name: str) -> list[dict]:
    path = app.runs / name / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_pause_one_step_one_epoch_a_change_while_paused_resume_and_stop(page, app):
    main = start_run(page, app, RUN_NAME, epochs=100, batch=9)
    until_progress(page, "^Training")
    deadline = time.monotonic() + 60
    while sum(r["kind"] == "epoch" for r in records(app, RUN_NAME)) < 4:  # a curve to pause on
        assert time.monotonic() < deadline, "no two epochs within 60 s"
        time.sleep(0.2)
    main.get_by_role("button", name="Pause").click()
    at = paused_step(until_progress(page, "^Paused at step"))
    assert "keeps its training slot" in progress(page)

    main.get_by_role("button", name="One minibatch").click()
    assert paused_step(until_progress(page, f"^Paused at step {at + 1:,} ")) == at + 1

    lr = main.get_by_role("spinbutton", name="Learning rate from here")
    lr.fill(NEW_LR)
    main.get_by_role("button", name="Change").click()
    deadline = time.monotonic() + 30
    while not [r for r in records(app, RUN_NAME) if r["kind"] == "change"]:
        assert time.monotonic() < deadline, "no change record in metrics.jsonl"
        time.sleep(0.2)
    change = next(r for r in records(app, RUN_NAME) if r["kind"] == "change")
    assert (change["step"], change["lr"], change["beta"]) == (at + 1, float(NEW_LR), 1.0)
    page.wait_for_function(  # the curve marks it: a labelled diamond on the ELBO panel
        """lr => [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')].some(gd =>
               (gd._fullData || []).some(t => t.name === 'lr / β changed'
                                              && (t.text || []).some(s => s.includes(lr))))""",
        arg=f"lr {float(NEW_LR):g}", timeout=30_000)
    assert main.locator("text.textpoint, .textpoint text").filter(has_text="lr 0.0002").count() >= 1
    screenshot(page, "lab-paused")

    main.get_by_role("button", name="One epoch").click()  # to the end of this epoch, then paused again
    end = -(-(at + 2) // STEPS_PER_EPOCH) * STEPS_PER_EPOCH
    assert paused_step(until_progress(page, f"^Paused at step {end:,} ")) == end

    main.get_by_role("button", name="Resume").click()
    until_progress(page, "^Training")
    main.get_by_role("button", name="Stop").click()
    until_progress(page, "^Stopped")
    steps = [r for r in records(app, RUN_NAME) if r["kind"] == "step"]
    assert steps[-1]["step"] > end  # it trained on after Resume
    assert_no_errors(page, app)


def test_a_student_on_a_read_only_server_watches_the_teachers_run_form(browser, repo, tmp_path):
    teacher_dir, class_dir = tmp_path / "teacher", tmp_path / "class"
    teacher_dir.mkdir()
    class_dir.mkdir()
    with running_app(repo, teacher_dir) as teacher_app, \
            running_app(repo, class_dir, env={"VAE_READ_ONLY": "1", "VAE_RUNS_DIR": str(teacher_app.runs)}) as room:
        teacher = browser.new_context(viewport=VIEWPORT).new_page()
        student = browser.new_context(viewport=VIEWPORT).new_page()
        try:
            student.goto(f"{url_of(room.url, 'train')}?run=class-run")  # the link, handed out before the run
            main = student.locator('[data-testid="stMain"]')
            main.get_by_role("heading", name="Watch training").wait_for(timeout=90_000)
            main.get_by_text("'class-run' has not started yet").wait_for(timeout=30_000)
            student.evaluate(LIVE_PROBE)

            start_run(teacher, teacher_app, "class-run", epochs=40, batch=2)  # 719 steps an epoch: a snapshot per 100
            until_progress(teacher, "^Training")
            # the student's page finds the run by itself (it follows the runs folder) and opens on it
            student.wait_for_function(
                """() => { const L = window.__livelog;
                           return new Set(L.filter(e => e.text && e.text.startsWith('Training (started in another')
                                                   && e.cap).map(e => e.cap)).size >= 5; }""", timeout=180_000)
            assert main.get_by_role("combobox", name="Watch run").input_value() == "class-run"
            assert not main.get_by_role("button", name="Start training").count()
            for name in ("Pause", "One minibatch", "Stop"):  # the teacher's controls are the teacher's
                assert not main.get_by_role("button", name=name).count(), f"a student sees {name!r}"
            screenshot(student, "lab-student")

            teacher.locator('[data-testid="stMain"]').get_by_role("button", name="Pause").click()
            at = paused_step(until_progress(teacher, "^Paused at step"))
            until_progress(student, f"^Paused at step {at:,} .*by the session that started it")
            student.locator('[data-testid="stCaptionContainer"]').filter(
                has_text=f"Latent map at step {at:,} ").wait_for(timeout=30_000)  # the paused run's own frame
            teacher.locator('[data-testid="stMain"]').get_by_role("button", name="Stop").click()
            until_progress(teacher, "^Stopped")
            log = student.evaluate("() => window.__livelog")
            frames = list(dict.fromkeys(e["cap"] for e in log if e["cap"]))
            maps = list(dict.fromkeys(e["pts"] for e in log if e["pts"]))
            print(f"the student saw {len(frames)} frames and {len(maps)} distinct maps")
            assert len(maps) >= 5, f"the student's map changed {len(maps)} times"
            assert_no_errors(student, room)
        finally:
            teacher.context.close()
            student.context.close()
