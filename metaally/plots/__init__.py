"""Plots of meta-analytic results: forest and funnel plots.

Every function takes ``ax=None`` (draws into a new figure when not given), returns the
matplotlib Figure, imports pyplot only when called and never calls ``plt.show()``.
The public names are exported lazily from ``metaally`` (``ma.forest_plot`` …).
"""
