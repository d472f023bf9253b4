//! Node.js binding (napi-rs): filled in by the binding work.
