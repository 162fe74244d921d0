"""Forest plot with one panel per intervention technique (studies, pooled diamond, PI).

Writes figures/forest_by_technique-1.png, -2.png … (.svg too), one page of at most
PAGE_ROWS rows each, and every page in figures/forest_by_technique.pdf.
Run by ``make figures``; the step itself is ``metaally.allyship.pipeline.forest_by_technique``.
"""

from pathlib import Path

from metaally.allyship.pipeline import run

if __name__ == "__main__":
    run("forest_by_technique", Path(__file__).resolve().parents[1])
