"""Sphinx configuration: the user guide and the API reference, built from the docstrings.

``tox -e docs`` builds it into docs/build/html with warnings as errors.
"""

project = "nri-py"
author = "nri-py contributors"
extensions = ["sphinx.ext.autodoc"]
exclude_patterns = ["build"]
# Docstring ``::`` blocks are Python; pages that show other formats say so (.. highlight::).
highlight_language = "python3"
autodoc_default_options = {"members": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
html_theme = "alabaster"
html_static_path: list[str] = []
