"""Flows that drive the simulator and the models together: verification campaigns with
their reports, the RTL-against-model validation, and the deep check of a design. They sit
above both `sim` and `models`, which never import each other."""
