"""hyplib: the library behind the hyperbolic vision-language companion.

Geometry (:mod:`hyplib.lorentz`, :mod:`hyplib.product`), the six methods
(:mod:`hyplib.methods`), models, data, training, evaluation and the papers' propositions.
"""
__version__ = "0.1.0"
