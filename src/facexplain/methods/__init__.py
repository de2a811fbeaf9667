"""Built-in explanation methods: one module each, registering itself (``methods.registry``).

Adding a method is one file here (a ``register_method(MethodInfo(...))`` call) and its tests;
the CLI choices, ``--method all``, the report and the faithfulness benchmark pick it up. A
plugin outside the package imports what it needs from here::

    from facexplain.methods import MapSpec, MethodInfo, register_method
"""

from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, RankedMap
from facexplain.methods.registry import register_method, unregister_method

__all__ = ["ExplainOptions", "MapSpec", "MethodInfo", "RankedMap", "register_method",
           "unregister_method"]
