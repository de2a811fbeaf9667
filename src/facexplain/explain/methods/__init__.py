"""Built-in explanation methods: one module each, registering itself (``explain.registry``).

Adding a method is one file here (a ``register_method(MethodInfo(...))`` call) and its tests;
the CLI choices, ``--method all``, the report and the faithfulness benchmark pick it up.
"""
