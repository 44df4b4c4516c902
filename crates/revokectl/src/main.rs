//! revokectl.
fn main() {}
