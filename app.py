"""VAE Explorer: `streamlit run app.py`. Navigation over pages/, and the shared sidebar."""
import streamlit as st
import torch

from ui import sidebar, state

st.set_page_config(page_title="VAE Explorer", page_icon=":material/explore:", layout="wide")
# Deliberate: training jobs and page work share two cores; one thread each keeps them from thrashing.
torch.set_num_threads(state.settings().torch_threads)

pages = [
    st.Page("pages/latent_space.py", title="Latent space", icon=":material/scatter_plot:", default=True),
    st.Page("pages/interpolate.py", title="Interpolate", icon=":material/swap_horiz:"),
    st.Page("pages/samples.py", title="Samples", icon=":material/grid_view:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
]
if not state.settings().read_only:  # a classroom server can hide training (VAE_READ_ONLY=1)
    pages.append(st.Page("pages/train.py", title="Train", icon=":material/model_training:"))

page = st.navigation(pages)
sidebar.render()
page.run()
