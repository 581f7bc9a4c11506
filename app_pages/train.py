"""Train: start, watch, stop and resume runs; training happens in a background job, never in this script.
On a read-only server the page only watches ("Watch training"): a class follows the runs that the
teacher's server trains into the same runs folder, with no form and no controls."""
import streamlit as st

from ui import links, notes, state
from ui.train_view import (
    follow_runs,
    live_view,
    queue_line,
    resume_controls,
    run_checkpoint,
    run_names,
    settings_form,
    submit,
)
from ui.widgets import explain

read_only = state.settings().read_only
st.header("Watch training" if read_only else "Train")
notes_left, notes_mid, notes_right = st.columns(3)
with notes_left:
    notes.elbo_terms()
with notes_mid:
    notes.reparameterisation()
with notes_right:
    notes.beta()
spec = None if read_only else settings_form()
if spec is not None:
    submit(spec)

registry = state.registry()
jobs, elsewhere = registry.jobs(), registry.elsewhere()  # elsewhere: another replica's; the runs folder is shared
names = run_names()
linked = st.query_params.get("run")
if linked and linked not in names:  # a link handed out before its run started: kept, and the run awaited
    st.info(f"The run {linked!r} has not started yet: this page shows it as soon as it does.")
follow_runs(tuple(names))  # a run that starts (here or on another server) joins the list within seconds
if not names:
    st.info("No runs yet: the teacher's runs appear here as they start." if read_only else
            "No runs yet: choose settings above and press Start training.")
    st.stop()

if linked in names:
    links.adopt([links.Link("run", "tr_watch", links.one_of(*names))])  # ?run=NAME: the run a class is to watch
watch = st.selectbox("Watch run", names, key="tr_watch",
                     help="a link to this page with ?run=NAME opens on that run: hand it out to a class")
if not linked or linked in names:
    links.publish({"run": watch})
ck = run_checkpoint(watch) if read_only else resume_controls(watch)
live_view(watch, ck.model_config.n_pixels if ck else 784)

queue = queue_line(jobs, elsewhere)
if queue:
    st.caption(queue)

explain("What happens during training?", """
Each step takes a minibatch of M images, draws eps ~ N(0, I) and forms z = mu + sigma * eps (the
reparameterisation trick of section 2.4, which makes the sample differentiable in the encoder's
parameters), then follows the gradient of the SGVB estimate of the ELBO (eq. 7, estimator B, or eq. 6,
estimator A): reconstruction log-likelihood minus KL(q(z|x) || p(z)). **β** multiplies the KL term
(β = 1 is the paper's bound); **warm-up** raises β from 0 over the first epochs so the decoder learns
to use z before the KL term pulls posteriors to the prior.
""")
