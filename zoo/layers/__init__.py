"""Building blocks shared by the models (one concept per file, each with its paper equation
and a slow reference in ``tests/layers``).  Import from the defining module, e.g.
``from zoo.layers.gated_conv import GatedConv2d``."""
