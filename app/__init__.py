"""The app: video I/O, compositing, the pipeline, the CLI and the Streamlit page.

Importing it changes nothing in the process: the entry points (app.cli, the Streamlit page) call
`model.settings.tune_process()` first.
"""
