//! Python binding (pyo3): filled in by the binding work.
