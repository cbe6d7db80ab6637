"""Model-test setup: import the 2-D image zoo modules so their builders are registered.

``cnnkit.models.__init__`` wires the zoo for users; importing the modules here keeps these tests independent
of that wiring. A module is imported once per process, so nothing registers twice.
"""

from __future__ import annotations

import cnnkit.models.alexnet  # noqa: F401
import cnnkit.models.googlenet  # noqa: F401
import cnnkit.models.lenet  # noqa: F401
import cnnkit.models.mobilenet  # noqa: F401
import cnnkit.models.nin  # noqa: F401
import cnnkit.models.resnet  # noqa: F401
import cnnkit.models.vgg  # noqa: F401
