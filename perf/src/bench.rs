//! The benchmark harness behind `weir bench`.
