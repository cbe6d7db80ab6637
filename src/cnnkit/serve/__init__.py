"""``cnnkit serve``: a web page and an HTTP API for trained runs, and a dashboard of run folders.

- :mod:`~cnnkit.serve.models`: run folders loaded as ``cnnkit predict`` loads them, chosen by name;
- :mod:`~cnnkit.serve.inputs`: request payloads (image files, nested lists, ``.npy``) to raw inputs;
- :mod:`~cnnkit.serve.batching`: requests that arrive together run as one batch;
- :mod:`~cnnkit.serve.dashboard`: the run folders under ``--runs DIR``: curves, config, mistakes;
- :mod:`~cnnkit.serve.app`: the Starlette application; :mod:`~cnnkit.serve.server`: ``serve()`` with uvicorn.

Starlette and uvicorn are the optional ``serve`` extra (``pip install -e ".[serve]"``); they are imported
only when an application is created or served.
"""

from .app import ServeSettings as ServeSettings
from .app import create_app as create_app
from .batching import Batcher as Batcher
from .dashboard import Dashboard as Dashboard
from .inputs import PayloadError as PayloadError
from .models import ServedModel as ServedModel
from .models import load_served_models as load_served_models
from .server import check_binding as check_binding
from .server import serve as serve

__all__ = [
    "Batcher", "Dashboard", "PayloadError", "ServeSettings", "ServedModel", "check_binding", "create_app",
    "load_served_models", "serve",
]
