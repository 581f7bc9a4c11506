"""VAE Explorer: `streamlit run app.py`. Navigation over views/ (one file per page), and the shared sidebar.

The page files live in views/, not pages/: a folder named pages/ beside app.py puts Streamlit
in its legacy multipage mode until the first st.navigation() call of the process, which breaks
a deep link opened first on a fresh server."""
import streamlit as st
import torch

from ui import sidebar, state

st.set_page_config(page_title="VAE Explorer", page_icon=":material/explore:", layout="wide")
# Deliberate: training jobs and page work share two cores; one thread each keeps them from thrashing.
torch.set_num_threads(state.settings().torch_threads)

pages = [
    st.Page("views/latent_space.py", title="Latent space", icon=":material/scatter_plot:", default=True),
    st.Page("views/interpolate.py", title="Interpolate", icon=":material/swap_horiz:"),
    st.Page("views/samples.py", title="Samples", icon=":material/grid_view:"),
    st.Page("views/replay.py", title="Replay training", icon=":material/replay:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("views/reproduce.py", title="Paper figures", icon=":material/history_edu:"),
    st.Page("views/your_input.py", title="Your input", icon=":material/draw:"),
    st.Page("views/estimator_lab.py", title="Estimator lab", icon=":material/science:"),
]
if not state.settings().read_only:  # a classroom server can hide training (VAE_READ_ONLY=1)
    pages.append(st.Page("views/train.py", title="Train", icon=":material/model_training:"))

page = st.navigation(pages)
sidebar.render()
page.run()
