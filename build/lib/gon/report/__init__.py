"""Pictures, plots and the HTML report of a run.

gon.report.pictures   grids of a trained model (reconstructions, samples, interpolations,
                      super-resolution) as PIL images; the pictures ``gon fit`` writes
gon.report.plots      loss curves and the latent histogram (with gon.sampling's normality statistics)
gon.report.html       ``write_report(RUN)``: one self-contained HTML page of a run
"""

from gon.report.html import write_report
from gon.report.pictures import (
    final_pictures,
    interpolation_grid,
    interval_pictures,
    reconstruction_grid,
    render_grid,
    sample_grid,
    save_grid,
)
from gon.report.plots import plot_latent_histogram, plot_loss_curves

__all__ = [
    "final_pictures",
    "interpolation_grid",
    "interval_pictures",
    "plot_latent_histogram",
    "plot_loss_curves",
    "reconstruction_grid",
    "render_grid",
    "sample_grid",
    "save_grid",
    "write_report",
]
