"""A run's report: the tables every output shares, the figures, and the HTML page."""

from benchbias.foundation.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "tables": ["Rows", "text_table"],
        "figures": ["draw_figure2", "draw_figure3", "render_png"],
        "html": ["write_report"],
    },
)
