"""Figures: static matplotlib views (checked in CI) and interactive k3d / ipywidgets views."""

from facecourse.viz.mesh import k3d_mesh, plot_mesh, view_rotation

__all__ = ["k3d_mesh", "plot_mesh", "view_rotation"]
