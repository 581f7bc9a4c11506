"""VAE Explorer: `streamlit run app.py`. Navigation over app_pages/ (one file per page, listed in
ui/pages.py), and the shared sidebar."""
import streamlit as st
import torch

from ui import sidebar, state
from ui.pages import visible_pages

st.set_page_config(page_title="VAE Explorer", page_icon=":material/explore:", layout="wide")
# Deliberate: training jobs and page work share two cores; one thread each keeps them from thrashing.
torch.set_num_threads(state.settings().torch_threads)

page = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=p.default)
                      for p in visible_pages(state.settings().read_only)])
sidebar.render()
page.run()
