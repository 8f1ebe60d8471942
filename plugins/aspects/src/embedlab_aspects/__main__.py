"""``python -m embedlab_aspects --output DIR``: every space on every aspect (:mod:`embedlab_aspects.matrix`)."""

from embedlab_aspects.matrix import main

main()
