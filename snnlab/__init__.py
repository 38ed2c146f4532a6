"""snnlab: a notebook-first teaching and replication kit for plasticity in spiking neural networks.

The notebooks under ``notebooks/`` import this package; the package never imports a notebook.
Importing ``snnlab`` does nothing but quiet one logger (see below): no seeding, no environment
variables, no heavy imports.
"""
import logging as _logging

__version__ = "0.1.0"

# spikingjelly's first multi-step forward logs "Triton not available" through this logger on stderr;
# nbval and papermill then show a red stderr block in every notebook. The message carries no information
# on CPU machines, so it is silenced here, once, rather than in every notebook.
_logging.getLogger("torch._library.triton").setLevel(_logging.ERROR)
