"""paperchat in the browser. Start it with ``paperchat ui``; it uses the same index and chain as the CLI.

Each page only renders: answering is ``paperchat.chain``, indexing ``paperchat.vectorstore``, safe rendering
and transcripts ``paperchat.conversation``, batch extraction ``paperchat.runner`` and ``paperchat.matrix``.
Models and clients load once per process (``ui/resources.py``).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

# an emoji icon: a Material icon as favicon is fetched from fonts.gstatic.com, a request to the outside
st.set_page_config(page_title="paperchat", page_icon="\U0001f4c4", layout="wide")
page = st.navigation([
    st.Page(HERE / "chat.py", title="Chat", icon="\U0001f4ac", default=True),
    st.Page(HERE / "extract.py", title="Extract", icon="\U0001f4ca", url_path="extract"),
])
page.run()
