//! The catch-all under a Rust program (issue 4, item 5). Placeholder; the
//! driver follows.
#[test]
fn placeholder() {}
