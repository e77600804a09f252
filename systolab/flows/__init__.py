"""Flows that drive the simulator and the models together: verification campaigns with
their reports, the RTL-against-model validation, the deep check of a design, and the
exploration that runs it as its deep stage. They sit above both `sim` and `models`, which
never import each other."""
