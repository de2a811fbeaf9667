"""Built-in explanation methods: one module each, registering itself (``methods.registry``).

Adding a method is one file here (a ``register_method(MethodInfo(...))`` call) and its tests;
the CLI choices, ``--method all``, the report and the faithfulness benchmark pick it up. Its
settings are ``MethodOption`` rows in ``MethodInfo.options`` (read with ``options.get(ROW)``):
``facexplain explain`` gets a flag for each, the web form and ``/api/v1`` a field for each one
marked ``web``. A plugin outside the package imports what it needs from here::

    from facexplain.methods import MapSpec, MethodInfo, MethodOption, register_method
"""

from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, MethodOption, RankedMap
from facexplain.methods._options import FILL, PATCH, SAMPLES, SEED, STRIDE, THRESHOLD
from facexplain.methods.registry import register_method, unregister_method

__all__ = ["FILL", "PATCH", "SAMPLES", "SEED", "STRIDE", "THRESHOLD", "ExplainOptions", "MapSpec",
           "MethodInfo", "MethodOption", "RankedMap", "register_method", "unregister_method"]
