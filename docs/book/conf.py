"""Sphinx configuration of the course website (``make book`` / ``snnlab book``).

The one place to change how the site looks: title, theme options, extensions. ``snnlab book`` stages
the pages (executed notebooks, the course map as ``index.md``, the student downloads) into
``<out>/src`` and runs Sphinx with this folder as its configuration directory (``-c docs/book``), so
nothing generated lives here and nothing here is generated.

Everything must work offline from a folder: no CDN anywhere. ``snnlab book`` checks every built
.html/.js/.css file for network fetches after each build and fails the build if it finds one.
"""
project = "snnlab: plasticity in spiking neural networks"
author = "snnlab contributors"
copyright = "snnlab contributors"  # noqa: A001 (Sphinx's name)

extensions = [
    "myst_nb",                  # notebooks (.ipynb) and MyST markdown as pages
    "sphinx-mathjax-offline",   # MathJax 3 copied into _static/mathjax instead of loaded from a CDN
]

# snnlab book stages the student downloads in <src>/downloads: files to link, not pages to build
exclude_patterns = ["downloads/**"]

# --- notebooks: already executed by `snnlab run`; never execute here
nb_execution_mode = "off"
nb_ipywidgets_js = {}           # the default loads require.js and the widget manager from a CDN;
                                # the pages show the static default figure of each panel instead
nb_merge_streams = True         # one block per cell instead of one per print() flush
myst_enable_extensions = ["dollarmath", "amsmath"]  # $...$ and $$...$$ as in Jupyter
myst_heading_anchors = 3        # [text](page.ipynb#a-heading) links resolve
suppress_warnings = ["mystnb.unknown_mime_type"]  # text/plain fallbacks of widget views

# --- HTML
html_theme = "sphinx_book_theme"
html_title = "snnlab course"
html_static_path = ["_static"]
html_css_files = ["snnlab-book.css"]
html_copy_source = False        # the sources are the instructor notebooks; students download theirs
html_show_sourcelink = False
html_last_updated_fmt = None
html_context = {"default_mode": "auto"}  # light/dark as the reader's system; without it the theme logs an error
html_theme_options = {
    "use_download_button": False,     # it would offer the instructor notebook; see the box on each page
    "use_repository_button": False,
    "use_fullscreen_button": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navigation_with_keys": True,
}
# The theme's search box uses Sphinx's own index (searchindex.js): it works from a folder (file://).
